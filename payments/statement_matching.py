"""Reconciling a bank statement with the incoming payments Corridor recorded: pure matching.

A statement says what the bank booked; Corridor recorded incoming payments as they were
announced (a real-time notification, or the sandbox's ``simulateIncomingPayment``) or
imported. Each statement entry is matched to at most one recorded payment, in two passes:

1. by bank reference: the same ``bank_reference`` is the same payment; if its amount or
   currency differs, that is an ``AMOUNT_MISMATCH`` break (both are used up);
2. by what the payer wrote: same currency and amount, the same remittance reference (compared
   without case or spaces, never empty), and value dates at most ``tolerance_days`` apart; the
   closest date wins, then the lowest payment id, so the result does not depend on order.

What is left is a break: an entry Corridor has no record of (``NOT_RECORDED``: money at the bank
no one was credited for), or a recorded payment dated within the statement's period (widened
by the tolerance) and in one of its currencies that the statement does not show
(``NOT_ON_STATEMENT``: credited, but not at the bank). Every entry and every payment in scope
ends up in exactly one match or break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from payments.statements import StatementEntry

tolerance_days_default = 2
tolerance_days_max = 31


@dataclass(frozen=True, slots=True)
class Recorded:
    """An incoming payment as Corridor recorded it."""

    id: str
    bank_reference: str
    amount_minor: int
    currency: str
    reference: str | None
    value_date: date


@dataclass(frozen=True, slots=True)
class Match:
    bank_reference: str
    payment_id: str
    how: str
    """``BANK_REFERENCE`` or ``REFERENCE_AMOUNT_DATE``."""


@dataclass(frozen=True, slots=True)
class StatementBreak:
    kind: str
    """``NOT_RECORDED``, ``NOT_ON_STATEMENT`` or ``AMOUNT_MISMATCH``."""
    bank_reference: str | None
    payment_id: str | None
    amount_minor: int
    currency: str
    detail: str


@dataclass(frozen=True, slots=True)
class Outcome:
    matches: list[Match]
    breaks: list[StatementBreak]


def normalised(reference: str | None) -> str:
    return "".join((reference or "").split()).casefold()


def period(entries: Sequence[StatementEntry], tolerance_days: int) -> tuple[date, date] | None:
    """The dates a recorded payment must fall in to be expected on this statement."""
    if not entries:
        return None
    slack = timedelta(days=tolerance_days)
    return (min(e.value_date for e in entries) - slack,
            max(e.value_date for e in entries) + slack)


def match(entries: Sequence[StatementEntry], recorded: Sequence[Recorded],
          tolerance_days: int = tolerance_days_default) -> Outcome:
    """Every entry and every payment in scope in exactly one match or break."""
    if not 0 <= tolerance_days <= tolerance_days_max:
        raise ValueError(f"tolerance_days must be 0..{tolerance_days_max}")
    currencies = {e.currency for e in entries}
    span = period(entries, tolerance_days)
    in_scope = [r for r in recorded if span is not None and r.currency in currencies
                and span[0] <= r.value_date <= span[1]]
    left = {r.id: r for r in in_scope}
    by_bank_reference = {r.bank_reference: r for r in in_scope}
    matches: list[Match] = []
    breaks: list[StatementBreak] = []
    waiting: list[StatementEntry] = []
    for e in entries:
        found = by_bank_reference.get(e.bank_reference)
        if found is None or found.id not in left:
            waiting.append(e)
            continue
        del left[found.id]
        if (found.amount_minor, found.currency) == (e.amount_minor, e.currency):
            matches.append(Match(e.bank_reference, found.id, "BANK_REFERENCE"))
        else:
            breaks.append(StatementBreak(
                "AMOUNT_MISMATCH", e.bank_reference, found.id, e.amount_minor, e.currency,
                f"the bank booked {e.amount_minor} {e.currency}, Corridor recorded "
                f"{found.amount_minor} {found.currency}"))
    for e in waiting:
        key = normalised(e.reference)
        candidates = [r for r in left.values()
                      if key and normalised(r.reference) == key
                      and (r.amount_minor, r.currency) == (e.amount_minor, e.currency)
                      and abs((r.value_date - e.value_date).days) <= tolerance_days]
        if not candidates:
            breaks.append(StatementBreak("NOT_RECORDED", e.bank_reference, None,
                                         e.amount_minor, e.currency,
                                         "on the statement, but Corridor has no record of it"))
            continue
        best = min(candidates, key=lambda r: (abs((r.value_date - e.value_date).days), r.id))
        del left[best.id]
        matches.append(Match(e.bank_reference, best.id, "REFERENCE_AMOUNT_DATE"))
    for r in sorted(left.values(), key=lambda r: r.id):
        breaks.append(StatementBreak("NOT_ON_STATEMENT", None, r.id, r.amount_minor, r.currency,
                                     f"recorded with value date {r.value_date.isoformat()}, "
                                     "not on the statement"))
    return Outcome(matches, breaks)
