"""Small helpers for integration tests that drive the transaction bodies directly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.principal import Principal
from regions import commands
from regions.ledger_store import insert_account
from regions.policy_gate import PolicyGate
from regions.router import Router

gate = PolicyGate()
"""Policies at their defaults (no approved change in these tests)."""


async def open_accounts(router: Router, who: Principal, currency: str, count: int,
                        funding_minor: int = 0) -> list[str]:
    """Open ``count`` accounts for the tenant; the first is funded with ``funding_minor``."""
    async def body(conn: AsyncConnection) -> list[str]:
        out = []
        for i in range(count):
            acc = await insert_account(conn, who.region, who.tenant.id, currency, f"acc {i}")
            if funding_minor and i == 0:
                await commands.fund_account_txn(conn, who.region, who.tenant.id, acc,
                                                funding_minor, currency, "test")
            out.append(acc)
        return out

    return await router.run(who.region, body)


async def transfer(router: Router, who: Principal, src: str, dst: str, minor: int,
                   currency: str, key: str) -> dict[str, Any]:
    cmd = commands.CreateTransfer(commands.TransferItem(src, dst, minor, currency, None), key)
    return await router.run(who.region, lambda c: commands.create_transfer_txn(c, who, gate, cmd))


async def scalar(router: Router, region: str, sql: str, **params: Any) -> Any:
    async def body(conn: AsyncConnection) -> Any:
        return (await conn.execute(text(sql), params)).scalar()

    return await router.run(region, body)


async def rows(router: Router, region: str, sql: str, **params: Any) -> list[Any]:
    async def body(conn: AsyncConnection) -> list[Any]:
        return list(await conn.execute(text(sql), params))

    return await router.run(region, body)
