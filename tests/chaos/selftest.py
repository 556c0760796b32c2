"""The checker checked: after a clean run, break the ledger and the history on purpose, one way
at a time, and see that the checker names each break. A checker that finds nothing in a
cluster it was never shown to catch anything in proves nothing.

Each break but the last is undone before the next, so each is seen alone. The run's own
cluster is used (it is thrown away afterwards).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.ledger_store import PlannedTransfer, post_journal
from regions.router import Router
from tests.chaos import checker
from tests.chaos.history import History
from tests.chaos.tenants import Tenant

Check = Callable[[], Awaitable[list[str]]]


async def run_self_test(router: Router, history: History, tenants: list[Tenant],
                        funded: dict[tuple[str, str], int]) -> dict[str, bool]:
    """Break name -> whether the checker reported it."""
    tenant = tenants[0]
    region = tenant.region
    source, target = tenant.accounts["EUR"]

    async def ledger() -> list[str]:
        return (await checker.totals_anomalies(router, region, funded)
                + await checker.verify_anomalies(router, region)
                + await checker.ledger_anomalies(router, history, tenants))

    async def sql(statement: str, **params: str) -> None:
        async def body(conn: AsyncConnection) -> None:
            await conn.execute(text(statement), params)

        await router.run(region, body)

    async def extra_transfer(conn: AsyncConnection) -> None:
        await post_journal(conn, region, tenant.tenant_id, "transfer",
                           [PlannedTransfer(source, target, 1, "EUR", "not acknowledged")])

    found = await _history_breaks(router, history, tenants, sql)
    # Money from nowhere: a balance moved without a journal.
    await sql("UPDATE accounts SET credits_posted = credits_posted + 1 "
              "WHERE region = :r AND id = :a", r=region, a=target)
    broken = " ".join(await ledger())
    found["money created"] = ("held" in broken and "do not balance" in broken
                              and "JOURNALS_UNBALANCED EUR" in broken
                              and f"BALANCE_DISAGREES_WITH_TRANSFERS {target}" in broken)
    await sql("UPDATE accounts SET credits_posted = credits_posted - 1 "
              "WHERE region = :r AND id = :a", r=region, a=target)
    # An effect no client was told about (a retry that ran twice would look so); last, as it
    # cannot be taken back without another.
    await router.run(region, extra_transfer)
    broken = " ".join(await ledger())
    found["unacknowledged transfer"] = ("belongs to no acknowledged operation" in broken
                                        and "the acknowledged operations make it" in broken)
    return found


async def _history_breaks(router: Router, history: History, tenants: list[Tenant],
                          sql: Callable[..., Awaitable[None]]) -> dict[str, bool]:
    found = {}
    region = tenants[0].region
    op = next(o for o in history.ops if o.acknowledged and o.kind == "transfer"
              and o.region == region)
    step = op.steps[-1]
    lied = copy.deepcopy(step.answer)
    assert lied.data is not None
    lied.data["id"] = _other_id(lied.data["id"])
    step.replays.append(lied)
    found["replay with another answer"] = "replay answered" in " ".join(
        checker.history_anomalies(history))
    step.replays.pop()
    # An acknowledged operation the database does not have.
    lost = copy.deepcopy(op)
    lost.n = len(history.ops)
    lost.steps[-1].key = f"{lost.steps[-1].key}-lost"
    assert lost.steps[-1].answer.data is not None
    lost.steps[-1].answer.data["id"] = _other_id(op.result["id"])
    history.ops.append(lost)
    gone = " ".join(await checker.ledger_anomalies(router, history, tenants))
    history.ops.pop()
    found["acknowledged operation lost"] = "was acknowledged but is not in" in gone
    payout = next(o for o in history.ops if o.acknowledged and o.kind == "payout"
                  and o.region == region)
    [row] = await checker.rows(router, region, "SELECT status FROM payouts "
                               "WHERE region = :r AND id = :p", r=region,
                               p=str(payout.result["id"]))
    await sql("UPDATE payouts SET status = 'PROCESSING' WHERE region = :r AND id = :p",
              r=region, p=str(payout.result["id"]))
    stuck = " ".join(await checker.ledger_anomalies(router, history, tenants))
    found["payout left in flight"] = "ended PROCESSING" in stuck
    await sql("UPDATE payouts SET status = :s WHERE region = :r AND id = :p", s=row.status,
              r=region, p=str(payout.result["id"]))
    return found


def _other_id(entity_id: str) -> str:
    """The same kind and region, another ULID."""
    return entity_id[:-1] + ("A" if entity_id[-1] != "A" else "B")
