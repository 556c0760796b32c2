"""Reconciliation of two regions' views of what they owe each other in a currency.

Each side is read on its own (``snapshot``, one read transaction in its region): its
obligations with the peer, its batches, its due-to and due-from balances, and where the two
message streams between them stand. ``compare`` is pure and lists every break with its cause:

- ``OBLIGATION_MISSING``: one side has an obligation the other lacks, while every message
  between them has been applied (otherwise it is in flight, counted, not a break);
- ``OBLIGATION_MISMATCH``: the same obligation with another amount, currency or a direction
  that is not the mirror of the other side's, or in different batches;
- ``BATCH_MISSING`` / ``BATCH_MISMATCH`` / ``BATCH_DISPUTED``: a batch one side has and the
  other not (past the stream), with other totals or status, or disputed by the peer;
- ``BALANCE_MISMATCH``: what one side owes (``due_to``) is not what the other is owed
  (``due_from``), posted, once nothing is in flight;
- ``STREAM_STUCK``: a message from the peer whose effect failed (it waits, with its error, in
  the inbox), or messages to the peer unacknowledged for longer than ``stuck_after_s``.

Zero breaks and matching totals to the minor unit is the state after every fault has healed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import xr
from regions.netting import mirror
from regions.router import Router
from regions.tables import settlement_batches, settlement_obligations


@dataclass(frozen=True, slots=True)
class Obligation:
    id: str
    direction: str
    currency: str
    amount_minor: int
    batch_id: str | None


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    status: str
    payable_minor: int
    receivable_minor: int
    obligations: int
    dispute: str | None


@dataclass(frozen=True, slots=True)
class Side:
    region: str
    peer: str
    currency: str
    obligations: dict[str, Obligation]
    batches: dict[str, Batch]
    due_to_minor: int
    """What this region owes the peer and has not yet settled (posted)."""
    due_from_minor: int
    """What the peer owes this region and has not yet settled (posted)."""
    stream: xr.Stream | None


@dataclass(frozen=True, slots=True)
class Break:
    kind: str
    detail: str
    obligation_id: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    region_a: str
    region_b: str
    currency: str
    breaks: list[Break]
    in_flight: int
    """Obligations or batches one side has and the other will have once its messages land."""
    payable_a_minor: int
    receivable_a_minor: int
    payable_b_minor: int
    receivable_b_minor: int
    due_to_a_minor: int
    due_from_a_minor: int
    due_to_b_minor: int
    due_from_b_minor: int
    quiet: bool
    """Every message between the two applied, nothing waiting: balances must then agree."""


_balances = text("""
    SELECT
      coalesce(sum(CASE WHEN purpose LIKE :due_to THEN credits_posted - debits_posted END), 0)
        AS due_to,
      coalesce(sum(CASE WHEN purpose LIKE :due_from THEN debits_posted - credits_posted END), 0)
        AS due_from
    FROM accounts
    WHERE region = :region AND kind = 'internal' AND currency = :currency
      AND (purpose LIKE :due_to OR purpose LIKE :due_from)""")


async def snapshot(conn: AsyncConnection, region: str, peer: str, currency: str) -> Side:
    o, b = settlement_obligations, settlement_batches
    obligations = {r.id: Obligation(r.id, r.direction, r.currency, r.amount_minor, r.batch_id)
                   for r in await conn.execute(o.select().where(
                       o.c.region == region, o.c.peer == peer, o.c.currency == currency))}
    batches = {r.id: Batch(r.id, r.status, r.payable_minor, r.receivable_minor, r.obligations,
                           r.dispute)
               for r in await conn.execute(b.select().where(
                   b.c.region == region, b.c.peer == peer, b.c.currency == currency))}
    bal = (await conn.execute(_balances, {
        "region": region, "currency": currency, "due_to": f"due_to:{peer}.%",
        "due_from": f"due_from:{peer}.%"})).one()
    stream = next((s for s in await xr.streams(conn, region) if s.peer == peer), None)
    return Side(region, peer, currency, obligations, batches, int(bal.due_to),
                int(bal.due_from), stream)


def _sent(side: Side) -> int:
    return side.stream.sent_seq if side.stream else 0


def _applied(side: Side) -> int:
    return side.stream.applied_seq if side.stream else 0


stuck_after_s = 300.0
"""Messages unacknowledged this long mean a peer, its broker or its consumers are down."""


def _waiting(side: Side) -> int:
    return side.stream.waiting if side.stream else 0


@dataclass(slots=True)
class _Tally:
    """Breaks found so far, and what is on its way rather than broken."""

    a: Side
    b: Side
    a_behind: bool
    b_behind: bool
    breaks: list[Break]
    in_flight: int = 0

    def one_sided(self, kind: str, a_lacks: bool, **ids: str) -> None:
        """Something only one side has: in flight while that side has not heard everything
        the other said, a break otherwise."""
        if self.a_behind if a_lacks else self.b_behind:
            self.in_flight += 1
        else:
            lacking = self.a if a_lacks else self.b
            self.breaks.append(Break(kind, f"{lacking.region} has no record of it", **ids))


def _streams(t: _Tally) -> None:
    for side in (t.a, t.b):
        if side.stream is not None and side.stream.failing:
            t.breaks.append(Break("STREAM_STUCK", f"{side.region} cannot apply a message from "
                                  f"{side.peer} (xr_inbox.last_error); the stream waits there"))
        if side.stream is not None and side.stream.unacked_s > stuck_after_s:
            t.breaks.append(Break("STREAM_STUCK", f"{side.peer} has not acknowledged messages "
                                  f"{side.region} sent {side.stream.unacked_s:.0f} s ago"))


def _obligations(t: _Tally) -> None:
    a, b = t.a, t.b
    for oid in sorted(a.obligations.keys() | b.obligations.keys()):
        x, y = a.obligations.get(oid), b.obligations.get(oid)
        if x is None or y is None:
            t.one_sided("OBLIGATION_MISSING", x is None, obligation_id=oid)
            continue
        problems = []
        if y.direction != mirror(x.direction):
            problems.append(f"{a.region} {x.direction}, {b.region} {y.direction}")
        if (x.amount_minor, x.currency) != (y.amount_minor, y.currency):
            problems.append(f"{a.region} {x.amount_minor} {x.currency}, "
                            f"{b.region} {y.amount_minor} {y.currency}")
        if x.batch_id != y.batch_id:
            if (x.batch_id is None and t.a_behind) or (y.batch_id is None and t.b_behind):
                t.in_flight += 1
            else:
                problems.append(f"batch {x.batch_id} in {a.region}, {y.batch_id} in "
                                f"{b.region}")
        if problems:
            t.breaks.append(Break("OBLIGATION_MISMATCH", "; ".join(problems),
                                  obligation_id=oid))


def _batches(t: _Tally) -> None:
    a, b = t.a, t.b
    for bid in sorted(a.batches.keys() | b.batches.keys()):
        x, y = a.batches.get(bid), b.batches.get(bid)
        disputed = [one for one in (x, y) if one is not None and one.status == "DISPUTED"]
        t.breaks += [Break("BATCH_DISPUTED", one.dispute or "disputed", batch_id=bid)
                     for one in disputed]
        if disputed:
            continue
        if x is None or y is None:
            t.one_sided("BATCH_MISSING", x is None, batch_id=bid)
            continue
        problems = []
        if (x.payable_minor, x.receivable_minor, x.obligations) != (
                y.receivable_minor, y.payable_minor, y.obligations):
            problems.append(f"{a.region} pays {x.payable_minor} receives "
                            f"{x.receivable_minor} of {x.obligations}; {b.region} pays "
                            f"{y.payable_minor} receives {y.receivable_minor} of "
                            f"{y.obligations}")
        if x.status != y.status and (t.a_behind or t.b_behind):
            t.in_flight += 1
        elif x.status != y.status:
            problems.append(f"{a.region} {x.status}, {b.region} {y.status}")
        if problems:
            t.breaks.append(Break("BATCH_MISMATCH", "; ".join(problems), batch_id=bid))


def _balance_breaks(t: _Tally) -> None:
    a, b = t.a, t.b
    if a.due_to_minor != b.due_from_minor:
        t.breaks.append(Break("BALANCE_MISMATCH", f"{a.region} owes {a.due_to_minor} "
                              f"(due_to), {b.region} is owed {b.due_from_minor} (due_from)"))
    if a.due_from_minor != b.due_to_minor:
        t.breaks.append(Break("BALANCE_MISMATCH", f"{a.region} is owed {a.due_from_minor} "
                              f"(due_from), {b.region} owes {b.due_to_minor} (due_to)"))


def _total(side: Side, direction: str) -> int:
    return sum(o.amount_minor for o in side.obligations.values() if o.direction == direction)


def compare(a: Side, b: Side) -> Report:
    """Every break between two sides read by ``snapshot`` (a's peer is b and the reverse)."""
    assert (a.peer, b.peer, a.currency) == (b.region, a.region, b.currency), (a, b)
    # A side has not heard everything the other said: what it lacks may be on its way.
    t = _Tally(a, b, _applied(a) < _sent(b), _applied(b) < _sent(a), [])
    quiet = not (t.a_behind or t.b_behind or _waiting(a) or _waiting(b))
    _streams(t)
    _obligations(t)
    _batches(t)
    if quiet:
        _balance_breaks(t)
    return Report(a.region, b.region, a.currency, t.breaks, t.in_flight,
                  _total(a, "PAYABLE"), _total(a, "RECEIVABLE"), _total(b, "PAYABLE"),
                  _total(b, "RECEIVABLE"), a.due_to_minor, a.due_from_minor, b.due_to_minor,
                  b.due_from_minor, quiet)


_currencies = text("""
    SELECT DISTINCT currency FROM settlement_obligations WHERE region = :region AND peer = :peer
    ORDER BY currency""")


async def currencies(conn: AsyncConnection, region: str, peer: str) -> list[str]:
    return [r.currency for r in await conn.execute(_currencies, {"region": region,
                                                                 "peer": peer})]


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """One row per break (or one row saying none), for ``corridor reconcile --export csv``."""
    base = {"region_a": report.region_a, "region_b": report.region_b,
            "currency": report.currency}
    if not report.breaks:
        return [{**base, "kind": "NONE", "obligation_id": "", "batch_id": "",
                 "detail": f"in flight {report.in_flight}"}]
    return [{**base, "kind": b.kind, "obligation_id": b.obligation_id or "",
             "batch_id": b.batch_id or "", "detail": b.detail} for b in report.breaks]


async def reconcile(router: Router, region_a: str, region_b: str, currency: str) -> Report:
    """Read both sides (each in its own region) and compare them."""
    async def side(conn: AsyncConnection, region: str, peer: str) -> Side:
        return await snapshot(conn, region, peer, currency)

    a = await router.read(region_a, partial(side, region=region_a, peer=region_b))
    b = await router.read(region_b, partial(side, region=region_b, peer=region_a))
    return compare(a, b)


async def pairs(router: Router) -> list[tuple[str, str, str]]:
    """Every (region, peer, currency) with obligations, each pair once (region < peer)."""
    found: set[tuple[str, str, str]] = set()
    codes = sorted(r.code for r in router.topology.regions)
    for region in codes:
        for peer in codes:
            if peer == region:
                continue

            async def body(conn: AsyncConnection, region: str = region, peer: str = peer
                           ) -> list[str]:
                return await currencies(conn, region, peer)

            for currency in await router.read(region, body):
                a, b = sorted((region, peer))
                found.add((a, b, currency))
    return sorted(found)
