"""A group of createTransfer requests run as one set-based transaction gives every request the
outcome it has when the requests run one at a time, in order: compared on random mixes (some
failing for funds, currency, an account not found or another tenant's, a policy refusal; keys
repeated with the same and with other requests), on every answer, every balance, every stored
key and every event. And with forced serialization failures, the retried group leaves each
effect once."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import DomainError
from payments.principal import Environment, Principal, Role
from policies.model import PolicyVersion
from regions import commands, tenants
from regions.ledger_store import insert_account
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.topology import Topology
from regions.transfer_group import Request, create_transfers_txn
from tests.conftest import test_pepper

region = "eu-central"
world_ids = itertools.count()


class EuroOnlyGate(PolicyGate):
    """EU's policy as if only EUR were allowed: a USD transfer is refused by the policies (the
    version is what ``decide`` reads)."""

    def version(self, jurisdiction: str, now: Any) -> PolicyVersion:
        found = super().version(jurisdiction, now)
        if jurisdiction != "EU":
            return found
        return replace(found, values={**found.values, "currencies": frozenset({"EUR"})})


@dataclass
class World:
    principals: list[Principal]
    accounts: list[list[str]]
    """Per tenant: four EUR accounts, then a USD one."""


async def _world(router: Router, topo: Topology, funding: list[int]) -> World:
    principals, accounts = [], []
    n = next(world_ids)
    for t in range(2):
        async def control(conn: AsyncConnection, t: int = t) -> Principal:
            tenant = await tenants.create_tenant(conn, topo, f"Group {n}.{t}", "EU", region,
                                                 Environment.TEST, gate=PolicyGate())
            key = await tenants.create_api_key(conn, test_pepper, tenant.id,
                                               Role.PARTNER_ADMIN, [])
            who = await tenants.authenticate(conn, test_pepper, key.key)
            assert who is not None
            return who

        who = await router.run_control(control)

        async def open_(conn: AsyncConnection, who: Principal = who, t: int = t) -> list[str]:
            made = []
            for i, cur in enumerate(["EUR", "EUR", "EUR", "EUR", "USD"]):
                acc = await insert_account(conn, region, who.tenant.id, cur, f"a{i}")
                if funding[t * 5 + i]:
                    await commands.fund_account_txn(conn, region, who.tenant.id, acc,
                                                    funding[t * 5 + i], cur, "test")
                made.append(acc)
            return made

        principals.append(who)
        accounts.append(await router.run(region, open_))
    return World(principals, accounts)


Op = tuple[int, int, int, int, str, int]
"""(tenant, from, to, amount, currency, key): account positions 0-4 are the tenant's own, 5 is
the other tenant's first account, 6 an id that exists nowhere."""

# Mostly the tenant's own EUR accounts and few keys, so that successes, replays and conflicts
# are common; the rest exercise every refusal.
positions = st.sampled_from([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6])
ops = st.tuples(st.integers(0, 1), positions, positions, st.integers(1, 700),
                st.sampled_from(["EUR", "EUR", "EUR", "EUR", "USD"]), st.integers(0, 3))


def _request(w: World, op: Op, salt: str) -> Request:
    tenant, src, dst, amount, currency, key = op
    other = w.accounts[1 - tenant][0]

    def account(pos: int) -> str:
        return (w.accounts[tenant][pos] if pos < 5 else other if pos == 5
                else f"acc_{region}_01NOSUCHACCOUNT{pos}")

    return Request(w.principals[tenant], commands.CreateTransfer(
        commands.TransferItem(account(src), account(dst), amount, currency, None),
        f"k-{salt}-{key}"))


def _normal(w: World, outcome: Any, created: dict[str, int], index: int) -> Any:
    """An outcome without the generated ids: an error's code and message with the world's ids
    named by position, or the index of the request whose transfer it is."""
    if isinstance(outcome, DomainError):
        message = outcome.message
        for t, accs in enumerate(w.accounts):
            for p, a in enumerate(accs):
                message = message.replace(a, f"<{t}.{p}>")
        return ("error", outcome.code, message)
    transfer_id = outcome["id"] if isinstance(outcome, dict) else outcome.id
    return ("transfer", created.setdefault(transfer_id, index))


async def _serially(router: Router, gate: PolicyGate, requests: list[Request]) -> list[Any]:
    out: list[Any] = []
    for r in requests:
        try:
            out.append(await router.run(region, lambda c, r=r: commands.create_transfer_txn(
                c, r.who, gate, r.cmd)))
        except DomainError as exc:
            out.append(exc)
    return out


async def _grouped(router: Router, gate: PolicyGate, requests: list[Request],
                   cuts: list[int]) -> list[Any]:
    out: list[Any] = []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(requests))), len(requests)]
    for a, b in itertools.pairwise(bounds):
        out += await router.run(region, lambda c, a=a, b=b: create_transfers_txn(
            c, region, gate, requests[a:b]))
    return out


async def _state(router: Router, w: World) -> dict[str, Any]:
    """Balances by position, the tenants' stored keys, and their events and audit rows."""
    tenant_ids = [p.tenant.id for p in w.principals]

    async def body(conn: AsyncConnection) -> dict[str, Any]:
        balances = []
        for accs in w.accounts:
            for a in accs:
                row = (await conn.execute(text(
                    "SELECT debits_posted, credits_posted, debits_pending, credits_pending, "
                    "entry_seq FROM accounts WHERE region = :r AND id = :a"),
                    {"r": region, "a": a})).one()
                balances.append(tuple(row))
        keys = sorted((tenant_ids.index(r.tenant_id), r.key, r.response.get("type"))
                      for r in await conn.execute(text(
                          "SELECT tenant_id, key, response FROM idempotency_keys "
                          "WHERE region = :r AND tenant_id = ANY(:t)"),
                          {"r": region, "t": tenant_ids}))
        outbox = Counter((tenant_ids.index(r.tenant_id), r.topic) for r in await conn.execute(
            text("SELECT tenant_id, topic FROM outbox WHERE region = :r AND "
                 "tenant_id = ANY(:t)"), {"r": region, "t": tenant_ids}))
        audit = Counter((tenant_ids.index(r.tenant_id), r.action) for r in await conn.execute(
            text("SELECT tenant_id, action FROM audit_events WHERE region = :r AND "
                 "tenant_id = ANY(:t)"), {"r": region, "t": tenant_ids}))
        return {"balances": balances, "keys": keys, "outbox": outbox, "audit": audit}

    return await router.read(region, body)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(funding=st.lists(st.sampled_from([0, 500, 2_000, 5_000]), min_size=10, max_size=10),
       mix=st.lists(ops, min_size=1, max_size=14),
       cuts=st.lists(st.integers(0, 14), max_size=3))
async def test_a_group_answers_as_the_requests_would_one_at_a_time(
        router: Router, topo: Topology, funding: list[int], mix: list[Op],
        cuts: list[int]) -> None:
    gate = EuroOnlyGate()
    await gate.refresh(router, force=True)
    alone, grouped = await _world(router, topo, funding), await _world(router, topo, funding)
    one = await _serially(router, gate, [_request(alone, op, "s") for op in mix])
    many = await _grouped(router, gate, [_request(grouped, op, "s") for op in mix], cuts)
    created_one: dict[str, int] = {}
    created_many: dict[str, int] = {}
    assert [_normal(alone, o, created_one, i) for i, o in enumerate(one)] == [
        _normal(grouped, o, created_many, i) for i, o in enumerate(many)]
    assert await _state(router, alone) == await _state(router, grouped)


async def test_keys_repeated_in_one_group_have_one_effect(router: Router,
                                                          topo: Topology) -> None:
    gate = PolicyGate()
    await gate.refresh(router, force=True)
    w = await _world(router, topo, [1_000, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    same = _request(w, (0, 0, 1, 100, "EUR", 1), "rep")
    other = _request(w, (0, 0, 2, 100, "EUR", 1), "rep")
    out = await router.run(region, lambda c: create_transfers_txn(
        c, region, gate, [same, same, other, same]))
    assert out[0].id == out[1].id == out[3].id
    assert isinstance(out[2], DomainError)
    assert out[2].code == "IDEMPOTENCY_CONFLICT"
    state = await _state(router, w)
    assert state["balances"][0][0] == 100, "moved once"
    assert state["outbox"][(0, "transfer.created")] == 1
    # A later group replays it from the stored key.
    again = await router.run(region, lambda c: create_transfers_txn(c, region, gate, [same]))
    assert again[0].id == out[0].id


async def test_a_failed_first_use_leaves_the_key_to_the_next(router: Router,
                                                           topo: Topology) -> None:
    """Serially, a request that fails rolls back with its key, so the next with that key runs
    as new, even with another body: the group does the same."""
    gate = PolicyGate()
    await gate.refresh(router, force=True)
    w = await _world(router, topo, [50, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    broke = _request(w, (0, 0, 1, 100, "EUR", 3), "free")
    fits = _request(w, (0, 0, 1, 40, "EUR", 3), "free")
    out = await router.run(region, lambda c: create_transfers_txn(c, region, gate,
                                                                  [broke, fits]))
    assert isinstance(out[0], DomainError)
    assert out[0].code == "INSUFFICIENT_FUNDS"
    assert out[1].amount_minor == 40
    state = await _state(router, w)
    assert state["keys"] == [(0, "k-free-3", "Transfer")]


async def test_forced_serialization_failures_rerun_the_group_without_a_second_effect(
        router: Router, topo: Topology, monkeypatch: Any) -> None:
    """The group's write fails with SQLSTATE 40001 twice; the retry wrapper runs the whole
    group again, and every transfer exists once."""
    gate = PolicyGate()
    await gate.refresh(router, force=True)
    w = await _world(router, topo, [1_000, 0, 0, 0, 0, 1_000, 0, 0, 0, 0])
    requests = [_request(w, (t, 0, 1 + i % 3, 10 + i, "EUR", i), "retry")
                for t in range(2) for i in range(5)]
    failures = {"left": 2}
    real = AsyncConnection.execute

    async def flaky(self: AsyncConnection, statement: Any, *args: Any, **kw: Any) -> Any:
        if "INSERT INTO journals" in str(statement) and failures["left"]:
            failures["left"] -= 1
            raise DBAPIError("INSERT", {}, _Serialization())
        return await real(self, statement, *args, **kw)

    monkeypatch.setattr(AsyncConnection, "execute", flaky)
    out = await router.run(region, lambda c: create_transfers_txn(c, region, gate, requests))
    monkeypatch.undo()
    assert failures["left"] == 0
    assert len({o.id for o in out}) == 10
    state = await _state(router, w)
    assert state["balances"][0][0] == sum(10 + i for i in range(5))
    assert state["outbox"][(0, "transfer.created")] == 5
    assert state["outbox"][(1, "transfer.created")] == 5
    assert len(state["keys"]) == 10


class _Serialization(Exception):
    sqlstate = "40001"


async def test_a_policy_refusal_in_a_group_is_audited_with_its_origin(
        router: Router, topo: Topology) -> None:
    gate = EuroOnlyGate()
    await gate.refresh(router, force=True)
    w = await _world(router, topo, [0, 0, 0, 0, 500, 0, 0, 0, 0, 0])
    usd = Request(w.principals[0], commands.CreateTransfer(commands.TransferItem(
        w.accounts[0][4], w.accounts[0][4], 100, "USD", None), "refused"), origin="203.0.113.9")
    [out] = await router.run(region, lambda c: create_transfers_txn(c, region, gate, [usd]))
    assert isinstance(out, DomainError)
    assert out.code == "POLICY_DENIED"

    async def audited(conn: AsyncConnection) -> list[Any]:
        return list(await conn.execute(text(
            "SELECT action, origin, detail FROM audit_events WHERE region = :r "
            "AND tenant_id = :t AND action = 'policy.decided'"),
            {"r": region, "t": w.principals[0].tenant.id}))

    [row] = await router.read(region, audited)
    assert (row.action, row.origin) == ("policy.decided", "203.0.113.9")
    assert row.detail["outcome"] == "DENY"
    assert (await _state(router, w))["keys"] == [], "a refused request leaves no key"


async def test_naming_another_tenants_account_neither_locks_it_nor_waits_for_it(
        router: Router, topo: Topology) -> None:
    """The other tenant's account is held by a transaction that does not end: a request naming
    it is not found without waiting, and the rest of the group goes through."""
    gate = PolicyGate()
    await gate.refresh(router, force=True)
    w = await _world(router, topo, [500, 0, 0, 0, 0, 500, 0, 0, 0, 0])
    theirs = w.accounts[1][0]
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold(conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT id FROM accounts WHERE region = :r AND id = :a "
                                "FOR UPDATE"), {"r": region, "a": theirs})
        held.set()
        await release.wait()

    holder = asyncio.create_task(router.run(region, hold))
    await held.wait()
    try:
        poke = _request(w, (0, 0, 5, 100, "EUR", 0), "iso")
        fine = _request(w, (0, 0, 1, 100, "EUR", 1), "iso")
        out = await asyncio.wait_for(router.run(region, lambda c: create_transfers_txn(
            c, region, gate, [poke, fine])), timeout=60)
    finally:
        release.set()
        await holder
    assert isinstance(out[0], DomainError)
    assert out[0].code == "NOT_FOUND"
    assert out[1].amount_minor == 100
