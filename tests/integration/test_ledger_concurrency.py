"""The ledger under concurrency: 50 clients x 200 random transfers among 20 accounts.

Every transfer, batch or failure races with the others on real PostgreSQL at the production
isolation level (READ COMMITTED with row locks).
Afterwards money is conserved per currency, no customer account is below zero available, and
every account's entries add up to its balances with a dense sequence.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import DomainError
from payments.principal import Principal
from regions import commands
from regions.policy_gate import PolicyGate
from regions.router import Router
from tests.integration.helpers import open_accounts, rows

gate = PolicyGate()
"""Policies at their defaults (no approved change in these tests)."""

clients = 50
operations_per_client = 200
accounts_per_currency = 10
funding_minor = 50_000
batch_share = 0.1
batch_size = 5


async def _client(router: Router, who: Principal, by_currency: dict[str, list[str]],
                  seed: int, tally: dict[str, int]) -> None:
    rng = random.Random(seed)
    for op in range(operations_per_client):
        currency = rng.choice(sorted(by_currency))
        items = []
        for _ in range(batch_size if rng.random() < batch_share else 1):
            src, dst = rng.sample(by_currency[currency], 2)
            items.append(commands.TransferItem(src, dst, rng.randint(1, 20_000), currency, None))
        key = f"c{seed}-{op}"
        try:
            if len(items) == 1:
                cmd = commands.CreateTransfer(items[0], key)
                await router.run(who.region,
                                 lambda c, cmd=cmd: commands.create_transfer_txn(c, who, gate, cmd))
            else:
                batch = commands.CreateTransferBatch(tuple(items), rng.random() < 0.5, key)
                await router.run(
                    who.region,
                    lambda c, b=batch: commands.create_transfer_batch_txn(c, who, gate, b))
            tally["ok"] += 1
        except DomainError:
            tally["declined"] += 1


async def test_concurrent_random_transfers_keep_the_books(router: Router,
                                                          make_principal) -> None:
    who = await make_principal("EU")
    by_currency = {}
    for currency in ("EUR", "USD"):
        accs = []
        for _ in range(accounts_per_currency):
            accs += await open_accounts(router, who, currency, 1, funding_minor=funding_minor)
        by_currency[currency] = accs
    tally: dict[str, int] = defaultdict(int)
    await asyncio.gather(*[_client(router, who, by_currency, seed, tally)
                           for seed in range(clients)])
    assert tally["ok"] + tally["declined"] == clients * operations_per_client
    assert tally["ok"] > clients * operations_per_client // 2, dict(tally)
    assert tally["declined"] > 0, "the amounts should sometimes overdraw"

    balances = await rows(router, who.region, """
        SELECT id, currency, debits_posted, credits_posted, debits_pending, credits_pending,
               entry_seq FROM accounts WHERE tenant_id = :t""", t=who.tenant.id)
    for currency in by_currency:
        total = sum(r.credits_posted - r.debits_posted for r in balances if r.currency == currency)
        assert total == accounts_per_currency * funding_minor, currency
    for r in balances:
        assert r.credits_posted - r.debits_posted - r.debits_pending >= 0, r
    await _entries_match_balances(router, who.region, [r.id for r in balances], balances)


async def _entries_match_balances(router: Router, region: str, ids: list[str],
                                  balances: list) -> None:
    async def body(conn: AsyncConnection) -> list:
        return list(await conn.execute(text("""
            SELECT account_id,
                   coalesce(sum(amount_minor) FILTER (WHERE side = 'DEBIT'), 0) AS debits,
                   coalesce(sum(amount_minor) FILTER (WHERE side = 'CREDIT'), 0) AS credits,
                   count(*) AS n, min(seq) AS lo, max(seq) AS hi
            FROM entries WHERE region = :r AND account_id = ANY(:ids) AND phase = 'POSTED'
            GROUP BY account_id"""), {"r": region, "ids": ids}))

    sums = {r.account_id: r for r in await router.run(region, body)}
    for b in balances:
        s = sums[b.id]
        assert (s.debits, s.credits) == (b.debits_posted, b.credits_posted), b.id
        assert (s.n, s.lo, s.hi) == (b.entry_seq, 1, b.entry_seq), b.id
