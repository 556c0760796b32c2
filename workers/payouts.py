"""The payout worker's steps: take a payout to its rail and settle the outcome.

Three transactions around one rail call: begin (PENDING -> PROCESSING, read the instruction),
the rail (outside any transaction: it is I/O that must not be repeated by a database retry),
finish (COMPLETED or FAILED, the hold posted or voided). A crash anywhere leaves the payout
PENDING or PROCESSING; the redelivered message resumes it, and the rail is asked again with
the same reference.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import payouts
from regions.router import Router
from regions.sealing import Sealer
from workers.rails import Rails

returns_batch_max = 500
return_code = "MS03"
return_message = "the beneficiary's bank returned the payment"

_log = logging.getLogger(__name__)


async def process_payout(router: Router, sealer: Sealer, rails: Rails, region: str,
                         payout_id: str, message_id: str) -> bool:
    """Run one payout to a final rail outcome; False when there was nothing to do."""
    async def begin(conn: AsyncConnection) -> payouts.Instruction | None:
        return await payouts.begin_processing_txn(conn, sealer, region, payout_id)

    instruction = await router.run(region, begin)
    if instruction is None:
        return False
    outcome = await rails[instruction.rail].submit(instruction)

    async def finish(conn: AsyncConnection) -> bool:
        return await payouts.finish_txn(conn, region, payout_id, outcome, message_id)

    done = await router.run(region, finish)
    _log.info("payout %s on %s: %s", payout_id, instruction.rail,
              "completed" if outcome.completed else f"failed {outcome.failure_code}")
    return done


async def apply_due_returns(router: Router, region: str) -> int:
    """Return the region's completed payouts whose bank return has come due."""
    async def due(conn: AsyncConnection) -> list[str]:
        return await payouts.due_returns(conn, region, returns_batch_max)

    returned = 0
    for payout_id in await router.run(region, due):
        async def body(conn: AsyncConnection, payout_id: str = payout_id) -> bool:
            return await payouts.return_txn(conn, region, payout_id, return_code,
                                            return_message)

        returned += await router.run(region, body)
    return returned
