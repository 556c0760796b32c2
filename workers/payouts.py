"""The payout worker's steps: take a payout to its rail and settle the outcome.

Three transactions around one rail call: begin (PENDING -> PROCESSING, read the instruction),
the rail (outside any transaction: it is I/O that must not be repeated by a database retry),
finish (COMPLETED or FAILED, the hold posted or voided). A crash anywhere leaves the payout
PENDING or PROCESSING; the redelivered message resumes it, and the rail is asked again with
the same reference.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import payout_chunks, payouts, xr_payouts
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.sealing import Sealer
from workers.rails import Rails, RailTimeout

returns_batch_max = 500
return_code = "MS03"
return_message = "the beneficiary's bank returned the payment"

_log = logging.getLogger(__name__)

ReturnTxn = Callable[[AsyncConnection, str, str, str, str], Awaitable[bool]]


Begin = Callable[[AsyncConnection], Awaitable[payouts.Instruction | None]]
Finish = Callable[[AsyncConnection, payouts.RailOutcome], Awaitable[bool]]


async def _to_rail(router: Router, rails: Rails, region: str, payout_id: str, begin: Begin,
                   finish: Finish, what: str) -> bool:
    """Begin (a transaction), the rail (no transaction: I/O a retry must not repeat), finish
    (a transaction); False when there was nothing to do."""
    instruction = await router.run(region, begin)
    if instruction is None:
        return False
    outcome = await rails[instruction.rail].submit(instruction)
    done = await router.run(region, lambda conn: finish(conn, outcome))
    _log.info("%s %s on %s: %s", what, payout_id, instruction.rail,
              "completed" if outcome.completed else f"failed {outcome.failure_code}")
    return done


async def process_payout(router: Router, sealer: Sealer, gate: PolicyGate, rails: Rails,
                         region: str, payout_id: str, message_id: str) -> bool:
    """Run one payout to a final rail outcome; False when there was nothing to do."""
    async def begin(conn: AsyncConnection) -> payouts.Instruction | None:
        return await payouts.begin_processing_txn(
            conn, sealer, gate, region, payout_id,
            lambda tenant_id: gate.jurisdiction_of(router, tenant_id))

    async def finish(conn: AsyncConnection, outcome: payouts.RailOutcome) -> bool:
        return await payouts.finish_txn(conn, region, payout_id, outcome, message_id)

    return await _to_rail(router, rails, region, payout_id, begin, finish, "payout")


async def process_xr_payout(router: Router, sealer: Sealer, rails: Rails, region: str,
                            payout_id: str) -> bool:
    """Pay on this region's rail a payout another region sent (``regions.xr_payouts``); the
    same three steps as ``process_payout``, and the answer goes back to the payout's region."""
    async def begin(conn: AsyncConnection) -> payouts.Instruction | None:
        return await xr_payouts.begin_txn(conn, sealer, region, payout_id)

    async def finish(conn: AsyncConnection, outcome: payouts.RailOutcome) -> bool:
        return await xr_payouts.finish_txn(conn, region, payout_id, outcome)

    return await _to_rail(router, rails, region, payout_id, begin, finish,
                          "payout for another region")


async def apply_due_returns(router: Router, region: str) -> int:
    """Return the region's completed payouts whose bank return has come due: its own, and
    those it paid for other regions (which then owes the amount back)."""
    async def due(conn: AsyncConnection) -> tuple[list[str], list[str]]:
        return (await payouts.due_returns(conn, region, returns_batch_max),
                await xr_payouts.due_returns(conn, region, returns_batch_max))

    own, theirs = await router.run(region, due)
    returned = 0
    for return_txn, ids in ((payouts.return_txn, own), (xr_payouts.return_txn, theirs)):
        for payout_id in ids:
            async def body(conn: AsyncConnection, payout_id: str = payout_id,
                           return_txn: ReturnTxn = return_txn) -> bool:
                return await return_txn(conn, region, payout_id, return_code, return_message)

            returned += await router.run(region, body)
    return returned


async def process_batch(router: Router, sealer: Sealer, gate: PolicyGate, rails: Rails,
                        region: str, batch_id: str) -> int:
    """Take a batch's open payouts to their rails a chunk at a time; returns how many settled.

    Payouts whose rail timed out are skipped for the rest of this run and ``RailTimeout`` is
    raised at the end, so the message is retried later and resumes them (still PROCESSING).
    Memory is bounded by the chunk, whatever the size of the batch.
    """
    timed_out: list[str] = []
    settled = 0
    while True:
        async def begin(conn: AsyncConnection) -> list[payouts.Instruction]:
            return await payout_chunks.begin_chunk_txn(
                conn, sealer, gate, region, batch_id, timed_out,
                lambda tenant_id: gate.jurisdiction_of(router, tenant_id))

        chunk = await router.run(region, begin)
        if not chunk:
            break
        outcomes: dict[str, payouts.RailOutcome] = {}
        for instruction in chunk:
            try:
                outcomes[instruction.payout_id] = await rails[instruction.rail].submit(
                    instruction)
            except RailTimeout:
                timed_out.append(instruction.payout_id)
        if outcomes:
            async def finish(conn: AsyncConnection,
                             outcomes: dict[str, payouts.RailOutcome] = outcomes) -> int:
                return await payout_chunks.finish_chunk_txn(conn, region, outcomes)

            settled += await router.run(region, finish)

    async def complete(conn: AsyncConnection) -> bool:
        return await payout_chunks.complete_if_done_txn(conn, region, batch_id)

    await router.run(region, complete)
    _log.info("payout batch %s: %d settled, %d timed out", batch_id, settled, len(timed_out))
    if timed_out:
        raise RailTimeout(f"{len(timed_out)} payouts of {batch_id} timed out; retrying later")
    return settled
