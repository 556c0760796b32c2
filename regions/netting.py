"""Netting: what two regions owe each other in a currency, cleared per window in one batch.

For each pair of regions the one whose code sorts first coordinates. Once a window (default an
hour, aligned to the epoch) has closed, the coordinator gathers its obligations with the peer in
the currency that are not yet in a batch and occurred before the window's end, and in one
transaction: records the batch (PENDING), assigns the obligations to it, clears them in its
ledger and sends the batch to the peer. Clearing debits ``due_to:<peer>`` by what it owes,
credits ``due_from:<peer>`` by what it is owed, and books the difference to
``settlement:<peer>``: the net that moves between the two regions' bank accounts.

The peer applies the batch in order after every message before it on the stream, so it already
holds every obligation the batch names: the peer's own and those the coordinator told it of
earlier. It checks each one (present, in the currency, the mirror of the coordinator's
direction, the same amount, in no other batch) and the totals, and either clears its side the
same way and confirms (both SETTLED), or records the batch DISPUTED with the reason and says
so: a dispute is a reconciliation break for operators, never silently absorbed.

Batch ids are ``stb_<a>_<b>_<currency>_<window end>_<part>``. The netting run of a pair holds
the lease ``settlement.net.<a>.<b>`` (``workers.settlement.net_region``); were a second run to
get past it, its batch for the same window would collide on the id and roll back. A window with
more than ``batch_obligations_max`` obligations is netted in parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import events, xr
from regions.ledger_store import PlannedTransfer, pick_shard, post_journal, sharded_account
from regions.tables import settlement_batches, settlement_obligations

window_s_default = 3_600
batch_obligations_max = 5_000
batch_kind = "settlement.batch"
confirmed_kind = "settlement.confirmed"
disputed_kind = "settlement.disputed"
netting_actor = "worker:netting"
dispute_length_max = 500


def mirror(direction: str) -> str:
    """How the other side records the same obligation."""
    return "RECEIVABLE" if direction == "PAYABLE" else "PAYABLE"


def coordinator(a: str, b: str) -> str:
    return min(a, b)


def window_end(now: datetime, window_s: int) -> datetime:
    """The end of the last closed window at ``now``."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, UTC)


def batch_id(region: str, peer: str, currency: str, end: datetime, part: int) -> str:
    a, b = sorted((region, peer))
    return f"stb_{a}_{b}_{currency}_{end.strftime('%Y%m%dT%H%M%SZ')}_{part}"


@dataclass(frozen=True, slots=True)
class Totals:
    payable_minor: int
    receivable_minor: int
    count: int


def totals(rows: Sequence[Row[Any]]) -> Totals:
    payable = sum(r.amount_minor for r in rows if r.direction == "PAYABLE")
    receivable = sum(r.amount_minor for r in rows if r.direction == "RECEIVABLE")
    return Totals(payable, receivable, len(rows))


async def clear(conn: AsyncConnection, region: str, peer: str, currency: str,
                t: Totals, reference: str) -> str:
    """Clear a batch's obligations in the region's ledger; the journal id."""
    shard = pick_shard()
    owed = await sharded_account(conn, region, f"due_to:{peer}", currency, shard)
    claim = await sharded_account(conn, region, f"due_from:{peer}", currency, shard)
    cash = await sharded_account(conn, region, f"settlement:{peer}", currency, shard)
    planned = []
    if t.payable_minor:
        planned.append(PlannedTransfer(owed, cash, t.payable_minor, currency, reference))
    if t.receivable_minor:
        planned.append(PlannedTransfer(cash, claim, t.receivable_minor, currency, reference))
    assert planned, "a batch clears something"
    outcome = await post_journal(conn, region, None, "settlement", planned,
                                 internal_ids=[owed, claim, cash])
    return outcome.journal_id


_open_currencies = text("""
    SELECT DISTINCT currency FROM settlement_obligations
    WHERE region = :region AND peer = :peer AND batch_id IS NULL AND occurred_at < :end
    ORDER BY currency""")


async def open_currencies(conn: AsyncConnection, region: str, peer: str, end: datetime
                          ) -> list[str]:
    return [r.currency for r in await conn.execute(
        _open_currencies, {"region": region, "peer": peer, "end": end})]


async def net_txn(conn: AsyncConnection, region: str, peer: str, currency: str, end: datetime,
                  window_s: int = window_s_default,
                  obligations_max: int = batch_obligations_max) -> str | None:
    """One batch of the pair's open obligations before ``end``, made, cleared and sent by the
    coordinator (``region``); None when nothing is open."""
    assert coordinator(region, peer) == region, (region, peer)
    rows = (await conn.execute(select(settlement_obligations).where(
        settlement_obligations.c.region == region, settlement_obligations.c.peer == peer,
        settlement_obligations.c.currency == currency,
        settlement_obligations.c.batch_id.is_(None),
        settlement_obligations.c.occurred_at < end).order_by(
        settlement_obligations.c.occurred_at, settlement_obligations.c.id).limit(
        obligations_max).with_for_update())).all()
    if not rows:
        return None
    parts = (await conn.execute(select(func.count()).select_from(settlement_batches).where(
        settlement_batches.c.region == region, settlement_batches.c.peer == peer,
        settlement_batches.c.currency == currency,
        settlement_batches.c.window_end == end))).scalar_one()
    bid = batch_id(region, peer, currency, end, int(parts) + 1)
    t = totals(rows)
    # Obligations recorded late (a region or its relay was down across a window's end) are
    # taken by the next window: the label starts at the earliest one, so it covers them all.
    start = min(end - timedelta(seconds=window_s), rows[0].occurred_at)
    await conn.execute(insert(settlement_batches).values(
        region=region, id=bid, peer=peer, currency=currency, coordinator=region,
        window_start=start, window_end=end, payable_minor=t.payable_minor,
        receivable_minor=t.receivable_minor, obligations=t.count, status="PENDING",
        journal_id=await clear(conn, region, peer, currency, t, f"settlement {bid}")))
    await conn.execute(update(settlement_obligations).where(
        settlement_obligations.c.region == region,
        settlement_obligations.c.id.in_([r.id for r in rows])).values(batch_id=bid))
    await xr.send(conn, region, peer, batch_kind, {
        "batch_id": bid, "currency": currency, "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "obligations": [[r.id, r.direction, r.amount_minor] for r in rows],
        "payable_minor": t.payable_minor, "receivable_minor": t.receivable_minor})
    await events.emit(conn, region, None, "settlement_batch.created", {
        "batch_id": bid, "peer": peer, "currency": currency, "obligations": t.count,
        "net_minor": t.payable_minor - t.receivable_minor}, actor=netting_actor, target=bid)
    return bid


async def apply_batch(conn: AsyncConnection, envelope: xr.Envelope) -> None:
    """The peer's side of a batch: check every obligation, then clear and confirm, or record
    the dispute and say so."""
    region, coord, p = envelope.destination, envelope.origin, envelope.payload
    bid, currency = str(p["batch_id"]), str(p["currency"])
    theirs = {str(oid): (str(direction), int(amount))
              for oid, direction, amount in p["obligations"]}
    ids = list(theirs)
    rows = (await conn.execute(select(settlement_obligations).where(
        settlement_obligations.c.region == region, settlement_obligations.c.peer == coord,
        settlement_obligations.c.id.in_(ids)).order_by(settlement_obligations.c.id)
        .with_for_update())).all()
    mine = totals(rows)
    problems = []
    if len(rows) != len(set(ids)):
        missing = sorted(set(ids) - {r.id for r in rows})
        problems.append(f"{len(missing)} obligation(s) unknown here, first {missing[0]}")
    taken = [r.id for r in rows if r.batch_id is not None]
    if taken:
        problems.append(f"{len(taken)} obligation(s) already batched, first {taken[0]}")
    wrong = [r.id for r in rows if r.currency != currency]
    if wrong:
        problems.append(f"{len(wrong)} obligation(s) not in {currency}, first {wrong[0]}")
    differ = [r.id for r in rows
              if (mirror(r.direction), r.amount_minor) != theirs[r.id]]
    if differ:
        problems.append(f"{len(differ)} obligation(s) differ in direction or amount, first "
                        f"{differ[0]}")
    if (mine.payable_minor, mine.receivable_minor) != (int(p["receivable_minor"]),
                                                      int(p["payable_minor"])):
        problems.append(f"totals differ: here payable {mine.payable_minor} receivable "
                        f"{mine.receivable_minor}, there payable {p['payable_minor']} "
                        f"receivable {p['receivable_minor']}")
    values: dict[str, Any] = {
        "region": region, "id": bid, "peer": coord, "currency": currency, "coordinator": coord,
        "window_start": datetime.fromisoformat(str(p["window_start"])),
        "window_end": datetime.fromisoformat(str(p["window_end"])),
        "payable_minor": int(p["receivable_minor"]), "receivable_minor": int(p["payable_minor"]),
        "obligations": len(ids)}
    if problems:
        reason = "; ".join(problems)[:dispute_length_max]
        await conn.execute(insert(settlement_batches).values(
            **values, status="DISPUTED", dispute=reason))
        await xr.send(conn, region, coord, disputed_kind, {"batch_id": bid, "reason": reason})
        await events.emit(conn, region, None, "settlement_batch.disputed",
                          {"batch_id": bid, "peer": coord, "reason": reason},
                          actor=netting_actor, target=bid)
        return
    journal = await clear(conn, region, coord, currency, mine, f"settlement {bid}")
    await conn.execute(insert(settlement_batches).values(
        **values, status="SETTLED", journal_id=journal, settled_at=func.now()))
    await conn.execute(update(settlement_obligations).where(
        settlement_obligations.c.region == region,
        settlement_obligations.c.id.in_(ids)).values(batch_id=bid))
    await xr.send(conn, region, coord, confirmed_kind, {"batch_id": bid})
    await events.emit(conn, region, None, "settlement_batch.settled",
                      {"batch_id": bid, "peer": coord, "currency": currency},
                      actor=netting_actor, target=bid)


async def apply_answer(conn: AsyncConnection, envelope: xr.Envelope) -> None:
    """The coordinator learns the peer's answer: SETTLED, or DISPUTED with the reason."""
    region, p = envelope.destination, envelope.payload
    confirmed = envelope.kind == confirmed_kind
    values: dict[str, Any] = ({"status": "SETTLED", "settled_at": func.now()} if confirmed
                              else {"status": "DISPUTED", "dispute": str(p["reason"])})
    await conn.execute(update(settlement_batches).where(
        settlement_batches.c.region == region, settlement_batches.c.id == str(p["batch_id"]),
        settlement_batches.c.status == "PENDING").values(**values))
    await events.emit(conn, region, None,
                      "settlement_batch.settled" if confirmed else "settlement_batch.disputed",
                      {"batch_id": p["batch_id"], "peer": envelope.origin},
                      actor=netting_actor, target=str(p["batch_id"]))


async def batch_page(conn: AsyncConnection, region: str, first: int, after: str | None
                     ) -> list[Row[Any]]:
    """The region's side of its batches, latest window first (``after``: the last batch id of
    the previous page)."""
    b = settlement_batches
    q = select(b).where(b.c.region == region)
    if after is not None:
        cursor = select(b.c.window_end, b.c.id).where(b.c.region == region, b.c.id == after)
        q = q.where(tuple_(b.c.window_end, b.c.id) < cursor.scalar_subquery())
    return list((await conn.execute(q.order_by(b.c.window_end.desc(), b.c.id.desc())
                                    .limit(first + 1))).all())
