"""The bank test's clients: each picks an operation on a random tenant (a transfer between two
of its accounts, a transfer batch, an FX conversion, a payout or a payout batch on its own
region's rail or the other region's), sends it with a fresh idempotency key until the answer
is definitive, and sometimes sends an acknowledged operation again with the same key, as a
client that lost the answer would. Now and then a client reads its tenant's balances over
the API.

Amounts are small, so most operations succeed; a few are far over any balance, so the
definitive refusals (``InsufficientFunds``, ``TransferBatchRejected``,
``PayoutBatchRejected``, and items of a non-atomic batch refused) are exercised too.
Payout amounts ending in .91 fail on the sandbox rail and .94 time out once; with ``returns``,
some end in .93, which the bank returns soon after completing them (``workers.rails``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from payments.currency import currency as lookup_currency
from payments.money import format_amount
from tests.chaos import documents as doc
from tests.chaos.client import Api
from tests.chaos.history import History, Op, Step, minor_units, step_success
from tests.chaos.tenants import Tenant, currencies, payees

kind_weights = {"transfer": 35, "batch": 15, "fx": 20, "payout": 22, "payout_batch": 8}
batch_items_max = 5
overdraft_chance = 0.03
replay_chance = 0.15
read_chance = 0.1
quote_validity_s = 600
overdraft_minor = 100_000_000_00
payout_overdraft_minor = 14_000_00
"""Over any account's balance, under every review threshold (a payout that large would wait
for a compliance officer instead of being refused)."""
payout_failing_cents = 91
payout_timeout_once_cents = 94
payout_returned_cents = 93


def _amount(minor: int, cur: str) -> str:
    return format_amount(minor, lookup_currency(cur))


def _small_minor(rng: random.Random, low: int, high: int) -> int:
    if rng.random() < overdraft_chance:
        return overdraft_minor
    return rng.randint(low, high)


def _payout_minor(rng: random.Random, returns: bool) -> int:
    """1.00 to 9.99; now and then .91 (the rail refuses), .94 (the rail times out once) and,
    with ``returns``, .93 (the bank returns it after ``cluster.return_after_s``)."""
    units = rng.randint(1, 9) * 100
    roll = rng.random()
    if roll < 0.07:
        return units + payout_failing_cents
    if roll < 0.15:
        return units + payout_timeout_once_cents
    if roll < 0.15 + overdraft_chance:
        return payout_overdraft_minor
    if returns and roll < 0.25:
        return units + payout_returned_cents
    return units + rng.choice([c for c in range(100) if c not in range(91, 95)])


class Workload:
    def __init__(self, api: Api, tenants: list[Tenant], history: History, seed: int,
                 returns: bool = False) -> None:
        self.api, self.tenants, self.history, self.seed = api, tenants, history, seed
        self.returns = returns

    async def client(self, client: int, stop: asyncio.Event) -> None:
        """Operations one after another until ``stop``; the one in flight is finished."""
        rng = random.Random(f"{self.seed}/{client}")
        kinds, weights = zip(*kind_weights.items(), strict=True)
        while not stop.is_set():
            tenant = rng.choice(self.tenants)
            kind = rng.choices(kinds, weights)[0]
            op = self.history.new_op(client, kind, tenant.tenant_id, tenant.region,
                                     self.api.now_s())
            await getattr(self, f"_{kind}")(op, tenant, rng)
            op.ended_s = self.api.now_s()
            if op.acknowledged and rng.random() < replay_chance:
                await self.replay(op, tenant, rng)
            if rng.random() < read_chance:
                await self.read(tenant, rng)

    async def _step(self, op: Op, tenant: Tenant, mutation: str, document: str,
                    fields: dict[str, Any], rng: random.Random) -> Step:
        key = f"chaos-{op.n}-{mutation}-{rng.getrandbits(48):012x}"
        sent = {**fields, "idempotencyKey": key}
        step = Step(mutation, key, sent,
                    await self.api.call(tenant.key, document, {"i": sent}, rng))
        op.steps.append(step)
        return step

    async def _transfer(self, op: Op, tenant: Tenant, rng: random.Random) -> None:
        cur = rng.choice(currencies)
        source, target = rng.sample(tenant.accounts[cur], 2)
        await self._step(op, tenant, "createTransfer", doc.TRANSFER, {
            "fromAccountId": source, "toAccountId": target,
            "amount": _amount(_small_minor(rng, 1_00, 50_00), cur), "currency": cur,
            "reference": f"chaos {op.n}"}, rng)

    async def _batch(self, op: Op, tenant: Tenant, rng: random.Random) -> None:
        items = []
        for _ in range(rng.randint(2, batch_items_max)):
            cur = rng.choice(currencies)
            source, target = rng.sample(tenant.accounts[cur], 2)
            items.append({"fromAccountId": source, "toAccountId": target, "currency": cur,
                          "amount": _amount(_small_minor(rng, 50, 20_00), cur)})
        await self._step(op, tenant, "createTransferBatch", doc.BATCH,
                         {"transfers": items, "atomic": rng.random() < 0.5}, rng)

    async def _fx(self, op: Op, tenant: Tenant, rng: random.Random) -> None:
        sell, buy = rng.sample(currencies, 2)
        quote = await self._step(op, tenant, "createFxQuote", doc.QUOTE, {
            "sellCurrency": sell, "buyCurrency": buy,
            "sellAmount": _amount(_small_minor(rng, 1_00, 30_00), sell),
            "validForSeconds": quote_validity_s}, rng)
        if quote.answer.typename != "FxQuote":
            return
        assert quote.answer.data is not None
        await self._step(op, tenant, "executeFxQuote", doc.EXECUTE, {
            "quoteId": quote.answer.data["id"], "sellAccountId": rng.choice(tenant.accounts[sell]),
            "buyAccountId": rng.choice(tenant.accounts[buy])}, rng)

    async def _payout(self, op: Op, tenant: Tenant, rng: random.Random) -> None:
        cur = rng.choice(sorted(payees))
        await self._step(op, tenant, "createPayout", doc.PAYOUT, {
            "accountId": rng.choice(tenant.accounts[cur]),
            "beneficiaryId": tenant.beneficiaries[cur], "currency": cur,
            "amount": _amount(_payout_minor(rng, self.returns), cur),
            "reference": f"chaos {op.n}"}, rng)

    async def _payout_batch(self, op: Op, tenant: Tenant, rng: random.Random) -> None:
        cur = rng.choice(sorted(payees))
        items = [{"beneficiaryId": tenant.beneficiaries[cur], "currency": cur,
                  "amount": _amount(_payout_minor(rng, self.returns), cur),
                  "externalId": f"chaos-{op.n}-{n}"}
                 for n in range(rng.randint(2, batch_items_max))]
        await self._step(op, tenant, "createPayoutBatch", doc.PAYOUT_BATCH, {
            "accountId": rng.choice(tenant.accounts[cur]), "items": items,
            "atomic": rng.random() < 0.5}, rng)

    async def replay(self, op: Op, tenant: Tenant, rng: random.Random) -> None:
        """Send every successful step of ``op`` again, same key, same input."""
        documents = {"createTransfer": doc.TRANSFER, "createTransferBatch": doc.BATCH,
                     "createFxQuote": doc.QUOTE, "executeFxQuote": doc.EXECUTE,
                     "createPayout": doc.PAYOUT, "createPayoutBatch": doc.PAYOUT_BATCH}
        for step in op.steps:
            if step.answer.typename == step_success[step.mutation]:
                step.replays.append(await self.api.call(
                    tenant.key, documents[step.mutation], {"i": step.input}, rng))

    async def read(self, tenant: Tenant, rng: random.Random) -> None:
        """The tenant's balances over the API: no account may show a negative available."""
        answer = await self.api.call(tenant.key, doc.ACCOUNTS, {"after": None}, rng)
        if answer.data is None:
            self.history.reads["api_failed"] += 1
            return
        self.history.reads["api"] += 1
        for edge in answer.data["edges"]:
            node = edge["node"]
            available = {**node["balance"]["available"], "currency": node["currency"]}
            if minor_units(available) < 0:
                self.history.read_anomalies.append(
                    f"API read: account {node['id']} shows available {available}")
