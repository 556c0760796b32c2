"""Bank statement against recorded incoming payments: the two passes, every break kind, and
properties over random statements (each entry and payment accounted for exactly once; a
statement of the recorded payments with other bank references and shifted dates matches)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.statement_matching import Recorded, match, normalised, period
from payments.statements import StatementEntry

day = date(2026, 11, 30)


def entry(ref: str, minor: int, reference: str | None = None, on: date = day,
          currency: str = "EUR") -> StatementEntry:
    return StatementEntry(ref, "DE89370400440532013000", None, minor, currency, "Payer", None,
                          reference, on, None)


def recorded(pid: str, ref: str, minor: int, reference: str | None = None, on: date = day,
             currency: str = "EUR") -> Recorded:
    return Recorded(pid, ref, minor, currency, reference, on)


def test_the_same_bank_reference_matches() -> None:
    out = match([entry("B1", 100)], [recorded("inc1", "B1", 100)])
    assert [(m.bank_reference, m.payment_id, m.how) for m in out.matches] == [
        ("B1", "inc1", "BANK_REFERENCE")]
    assert out.breaks == []


def test_the_same_bank_reference_with_another_amount_is_a_mismatch() -> None:
    out = match([entry("B1", 100)], [recorded("inc1", "B1", 101)])
    assert out.matches == []
    assert [(b.kind, b.bank_reference, b.payment_id) for b in out.breaks] == [
        ("AMOUNT_MISMATCH", "B1", "inc1")]
    assert "101" in out.breaks[0].detail


def test_reference_amount_and_date_within_tolerance_match() -> None:
    out = match([entry("B1", 100, "Invoice 7", day)],
                [recorded("inc1", "SIM-1", 100, "INVOICE7", day - timedelta(days=2))],
                tolerance_days=2)
    assert [(m.payment_id, m.how) for m in out.matches] == [("inc1", "REFERENCE_AMOUNT_DATE")]


@pytest.mark.parametrize(("payment", "why"), [
    (recorded("inc1", "SIM-1", 100, "Invoice 7", day - timedelta(days=3)), "date too far"),
    (recorded("inc1", "SIM-1", 101, "Invoice 7"), "amount"),
    (recorded("inc1", "SIM-1", 100, "Invoice 8"), "reference"),
    (recorded("inc1", "SIM-1", 100, None), "no reference"),
])
def test_what_does_not_match_is_a_break_on_each_side(payment: Recorded, why: str) -> None:
    out = match([entry("B1", 100, "Invoice 7")], [payment], tolerance_days=2)
    assert out.matches == [], why
    kinds = sorted(b.kind for b in out.breaks)
    in_period = period([entry("B1", 100)], 2)
    assert in_period is not None
    expected = ["NOT_RECORDED"] + (
        ["NOT_ON_STATEMENT"] if in_period[0] <= payment.value_date <= in_period[1] else [])
    assert kinds == sorted(expected), why


def test_empty_references_never_match_each_other() -> None:
    out = match([entry("B1", 100, "  ")], [recorded("inc1", "SIM-1", 100, "")])
    assert {b.kind for b in out.breaks} == {"NOT_RECORDED", "NOT_ON_STATEMENT"}


def test_the_closest_date_then_the_lowest_id_wins() -> None:
    payments = [recorded("inc3", "S3", 100, "R", day + timedelta(days=1)),
                recorded("inc2", "S2", 100, "R", day - timedelta(days=1)),
                recorded("inc1", "S1", 100, "R", day + timedelta(days=2))]
    out = match([entry("B1", 100, "R")], payments, tolerance_days=2)
    assert [m.payment_id for m in out.matches] == ["inc2"]
    assert sorted(b.payment_id for b in out.breaks) == ["inc1", "inc3"]


def test_payments_outside_the_period_or_currencies_are_not_this_statements() -> None:
    out = match([entry("B1", 100, on=day)],
                [recorded("old", "S1", 5, on=day - timedelta(days=30)),
                 recorded("usd", "S2", 5, currency="USD"),
                 recorded("near", "S3", 5, on=day + timedelta(days=1))], tolerance_days=1)
    assert [(b.kind, b.payment_id) for b in out.breaks] == [
        ("NOT_RECORDED", None), ("NOT_ON_STATEMENT", "near")]


def test_an_empty_statement_expects_nothing() -> None:
    assert match([], [recorded("inc1", "S1", 1)]).breaks == []


@pytest.mark.parametrize("tolerance", [-1, 32])
def test_tolerance_is_bounded(tolerance: int) -> None:
    with pytest.raises(ValueError, match="tolerance_days"):
        match([], [], tolerance_days=tolerance)


def test_normalised_ignores_case_and_spaces() -> None:
    assert normalised(" Inv 7 ") == normalised("INV7") == "inv7"
    assert normalised(None) == ""


payments = st.lists(st.tuples(st.integers(1, 5_000), st.sampled_from(["A", "B", "c d", None]),
                              st.integers(-3, 3), st.sampled_from(["EUR", "GBP"])),
                    max_size=12)


@given(payments, st.integers(0, 3), st.data())
def test_every_entry_and_payment_is_accounted_for_exactly_once(
        rows: list[tuple[int, str | None, int, str]], tolerance: int, data: st.DataObject) -> None:
    recorded_ = [recorded(f"inc{i:02d}", f"S{i}", m, ref, day + timedelta(days=d), cur)
                 for i, (m, ref, d, cur) in enumerate(rows)]
    chosen = data.draw(st.lists(st.sampled_from(recorded_), unique=True) if recorded_
                       else st.just([]))
    entries = [entry(f"B{i}", r.amount_minor + data.draw(st.sampled_from([0, 0, 1])),
                     r.reference, r.value_date + timedelta(days=data.draw(st.integers(-2, 2))),
                     r.currency) for i, r in enumerate(chosen)]
    out = match(entries, recorded_, tolerance)
    seen_entries = [m.bank_reference for m in out.matches] + [
        b.bank_reference for b in out.breaks if b.bank_reference]
    assert sorted(seen_entries) == sorted(e.bank_reference for e in entries)
    seen_payments = [m.payment_id for m in out.matches] + [
        b.payment_id for b in out.breaks if b.payment_id]
    assert len(seen_payments) == len(set(seen_payments))
    span = period(entries, tolerance)
    in_scope = {r.id for r in recorded_ if span and r.currency in {e.currency for e in entries}
                and span[0] <= r.value_date <= span[1]}
    assert set(seen_payments) == in_scope
    # Money is conserved: what the statement shows is matched or not recorded.
    by_ref = {e.bank_reference: e for e in entries}
    shown = sum(e.amount_minor for e in entries)
    assert shown == sum(by_ref[m.bank_reference].amount_minor for m in out.matches) + sum(
        b.amount_minor for b in out.breaks if b.kind == "NOT_RECORDED")


@given(payments, st.integers(0, 3), st.data())
def test_a_statement_of_the_recorded_payments_matches_them_all(
        rows: list[tuple[int, str | None, int, str]], tolerance: int, data: st.DataObject) -> None:
    """The bank's own references differ, dates move within the tolerance: every payment with a
    reference is matched by it, and every one at all when the bank quotes our references."""
    recorded_ = [recorded(f"inc{i:02d}", f"S{i}", m, ref or f"ref {i}", day + timedelta(days=d),
                          cur) for i, (m, ref, d, cur) in enumerate(rows)]
    shifted = [entry(f"B{i}", r.amount_minor, r.reference,
                     r.value_date + timedelta(days=data.draw(st.integers(-tolerance, tolerance))),
                     r.currency) for i, r in enumerate(recorded_)]
    out = match(shifted, recorded_, tolerance)
    assert out.breaks == []
    assert len(out.matches) == len(recorded_)
    quoted = [entry(r.bank_reference, r.amount_minor, None, r.value_date, r.currency)
              for r in recorded_]
    assert {m.how for m in match(quoted, recorded_, tolerance).matches} <= {"BANK_REFERENCE"}
