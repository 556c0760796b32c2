"""The payout worker's steps for a batch, a chunk of payouts at a time, set-based.

The same state machine as single payouts (``regions.payouts``), applied to up to
``chunk_payouts_max`` payouts per transaction: begin moves PENDING -> PROCESSING and reads the
instructions; finish settles the holds of the chunk with two ``settle`` calls (post the
completed, void the failed), writes every status in one statement and one event per payout.
A payout already PROCESSING (a crash or a time-out before) is resumed; one in any other status
is left alone, so a redelivered batch message does nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Row,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.ledger import TransferStatus
from payments.payouts import PayoutStatus
from regions import beneficiaries, events
from regions.events import Event
from regions.holds import settle
from regions.payouts import (
    Instruction,
    JurisdictionOf,
    RailOutcome,
    instruction,
    payout_payload,
    recheck,
    send_across,
    worker_actor,
)
from regions.policy_gate import PolicyGate
from regions.sealing import Sealer
from regions.tables import payout_batches, payouts

chunk_payouts_max = 500

_open = (
    select(payouts)
    .where(payouts.c.region == bindparam("region"), payouts.c.batch_id == bindparam("batch"),
           or_(payouts.c.status == PayoutStatus.PENDING.value,
               and_(payouts.c.status == PayoutStatus.PROCESSING.value,
                    payouts.c.rail_region == payouts.c.region)),
           payouts.c.id != all_(bindparam("skip", type_=ARRAY(Text))))
    .order_by(payouts.c.id).limit(chunk_payouts_max).with_for_update()
)


async def begin_chunk_txn(conn: AsyncConnection, sealer: Sealer, gate: PolicyGate, region: str,
                          batch_id: str, skip: Sequence[str],
                          jurisdiction_of: JurisdictionOf) -> list[Instruction]:
    """The next chunk of the batch's open payouts, moved to PROCESSING, as instructions;
    the policies are asked again about each one starting (a payout they now hold or refuse
    leaves the chunk). A payout another region's rail pays leaves as a message to that region
    instead of an instruction, and waits in PROCESSING for its answer (``regions.xr_payouts``)."""
    rows = (await conn.execute(_open, {"region": region, "batch": batch_id,
                                       "skip": list(skip)})).all()
    if not rows:
        return []
    bens = await beneficiaries.rows_by_id(conn, region, rows[0].tenant_id,
                                          [r.beneficiary_id for r in rows])
    keys = await beneficiaries.keys_of(conn, sealer, region, list(bens.values()))
    found = {r.id: instruction(sealer, r, bens[r.beneficiary_id],
                               keys[bens[r.beneficiary_id].data_key_id]) for r in rows}
    starting = [r for r in rows if r.status == PayoutStatus.PENDING.value]
    stopped: list[Event] = []
    across: list[Row[Any]] = []
    if starting:
        jurisdiction = await jurisdiction_of(rows[0].tenant_id)
        for r in starting:
            stop = await recheck(conn, gate, r, bens[r.beneficiary_id],
                                 found[r.id].payee_name, jurisdiction)
            if not stop and r.rail_region != region:
                stop = await send_across(conn, sealer, gate, r, found[r.id], jurisdiction)
                if not stop:
                    across.append(r)
                    del found[r.id]
                    continue
            if stop:
                stopped.extend(stop)
                del found[r.id]
        starting = [r for r in starting if r.id in found or r in across]
        if stopped:
            await events.record(conn, region, rows[0].tenant_id, worker_actor, stopped)
    if starting:
        await conn.execute(update(payouts).where(
            payouts.c.region == region, payouts.c.id == any_(bindparam("ids", type_=ARRAY(Text)))
        ).values(status=PayoutStatus.PROCESSING.value, updated_at=func.now()),
            {"ids": [r.id for r in starting]})
        await events.record(conn, region, rows[0].tenant_id, worker_actor, [
            Event("payout.processing", payout_payload(
                r.id, PayoutStatus.PROCESSING, r.amount_minor, r.currency, rail=r.rail,
                batch_id=batch_id), r.id, audited=False) for r in starting])
    return list(found.values())


_finish = text("""
    UPDATE payouts AS p SET status = v.status, rail_reference = v.ref, failure_code = v.code,
        failure_message = v.msg, updated_at = now(),
        return_due_at = CASE WHEN v.return_s IS NULL THEN NULL
                             ELSE now() + make_interval(secs => v.return_s) END
    FROM unnest(CAST(:ids AS TEXT[]), CAST(:statuses AS TEXT[]), CAST(:refs AS TEXT[]),
                CAST(:codes AS TEXT[]), CAST(:msgs AS TEXT[]), CAST(:returns AS INT[]))
         AS v(id, status, ref, code, msg, return_s)
    WHERE p.region = :region AND p.id = v.id AND p.status = 'PROCESSING'
""")


async def finish_chunk_txn(conn: AsyncConnection, region: str,
                           outcomes: Mapping[str, RailOutcome]) -> int:
    """Settle the rail outcomes of PROCESSING payouts; returns how many it settled."""
    rows = (await conn.execute(select(payouts).where(
        payouts.c.region == region, payouts.c.id.in_(list(outcomes)),
        payouts.c.status == PayoutStatus.PROCESSING.value).order_by(payouts.c.id)
        .with_for_update())).all()
    if not rows:
        return 0
    for completed, outcome in ((True, TransferStatus.POSTED), (False, TransferStatus.VOIDED)):
        held = [t for r in rows if outcomes[r.id].completed is completed
                for t in (r.hold_transfer_id, r.fee_transfer_id) if t]
        if held:
            await settle(conn, region, held, outcome)
    results = [outcomes[r.id] for r in rows]
    statuses = [PayoutStatus.COMPLETED if o.completed else PayoutStatus.FAILED for o in results]
    await conn.execute(_finish, {
        "region": region, "ids": [r.id for r in rows],
        "statuses": [s.value for s in statuses], "refs": [o.rail_reference for o in results],
        "codes": [o.failure_code for o in results],
        "msgs": [o.failure_message for o in results],
        "returns": [o.return_after_s for o in results]})
    await events.record(conn, region, rows[0].tenant_id, worker_actor, [
        Event(f"payout.{s.value.lower()}", payout_payload(
            r.id, s, r.amount_minor, r.currency, batch_id=r.batch_id,
            failure_code=o.failure_code), r.id, audited=False)
        for r, s, o in zip(rows, statuses, results, strict=True)])
    return len(rows)


_unfinished = (PayoutStatus.PENDING.value, PayoutStatus.PROCESSING.value,
               PayoutStatus.HELD_FOR_REVIEW.value)


async def complete_if_done_txn(conn: AsyncConnection, region: str, batch_id: str) -> bool:
    """Mark the batch COMPLETED once none of its payouts is waiting for the rail or review."""
    still = select(payouts.c.id).where(payouts.c.region == region,
                                       payouts.c.batch_id == batch_id,
                                       payouts.c.status.in_(_unfinished)).exists()
    row = (await conn.execute(update(payout_batches).where(and_(
        payout_batches.c.region == region, payout_batches.c.id == batch_id,
        payout_batches.c.status == "PROCESSING", ~still)).values(
        status="COMPLETED", completed_at=func.now()).returning(
        payout_batches.c.tenant_id, payout_batches.c.item_count))).first()
    if row is None:
        return False
    payload: dict[str, Any] = {"batch_id": batch_id, "item_count": row.item_count}
    await events.emit(conn, region, row.tenant_id, "payout_batch.completed", payload,
                      actor=worker_actor, target=batch_id)
    return True
