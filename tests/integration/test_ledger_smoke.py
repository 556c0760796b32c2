from __future__ import annotations

from payments.principal import Principal
from regions import commands
from regions.policy_gate import PolicyGate
from regions.router import Router

gate = PolicyGate()
"""Policies at their defaults (no approved change in these tests)."""


async def test_create_fund_and_transfer(router: Router, make_principal) -> None:
    who: Principal = await make_principal("EU")

    async def open_two(conn):
        a = await commands.create_account_txn(conn, who, commands.CreateAccount("EUR", "a", "k1"))
        b = await commands.create_account_txn(conn, who, commands.CreateAccount("EUR", "b", "k2"))
        return a["id"], b["id"]

    a, b = await router.run(who.region, open_two)

    async def fund(conn):
        return await commands.fund_account_txn(conn, who.region, who.tenant.id, a, 10_000,
                                               "EUR", "test")

    await router.run(who.region, fund)
    item = commands.TransferItem(a, b, 2_500, "EUR", "rent")

    async def move(conn):
        return await commands.create_transfer_txn(conn, who, gate,
                                                  commands.CreateTransfer(item, "t1"))

    first = await router.run(who.region, move)
    again = await router.run(who.region, move)
    assert first == again
    assert first["type"] == "Transfer"
