"""Group commit of createTransfer: a lone request runs at once in a group of its own, concurrent
ones share groups and each gets its own answer, a failing group is split so that every request
still gets the answer it would alone, and closing stops the runners."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from payments.errors import DomainError, InsufficientFunds
from regions import coalescer as coalescer_module
from regions import commands, events
from regions.coalescer import TransferCoalescer
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from regions.txn import DatabaseUnavailable
from tests.integration.test_connection_loss import unreachable
from tests.integration.test_transfer_group import World, _world

region = "eu-central"


def _cmd(w: World, tenant: int, src: int, dst: int, amount: int, key: str
         ) -> commands.CreateTransfer:
    return commands.CreateTransfer(commands.TransferItem(
        w.accounts[tenant][src], w.accounts[tenant][dst], amount, "EUR", None), key)


async def _gate(router: Router) -> PolicyGate:
    g = PolicyGate()
    await g.refresh(router, force=True)
    return g


async def _posted(router: Router, account: str) -> tuple[int, int]:
    async def body(conn: Any) -> tuple[int, int]:
        row = (await conn.execute(text("SELECT debits_posted, credits_posted FROM accounts "
                                       "WHERE region = :r AND id = :a"),
                                  {"r": region, "a": account})).one()
        return int(row.debits_posted), int(row.credits_posted)

    return await router.read(region, body)


async def test_a_lone_request_runs_at_once_in_its_own_group(router: Router,
                                                            topo: Topology) -> None:
    gate = await _gate(router)
    w = await _world(router, topo, [1_000] + [0] * 9)
    c = TransferCoalescer(router, lambda: gate)
    try:
        row = await c.submit(w.principals[0], _cmd(w, 0, 0, 1, 250, "lone"))
        assert (row.amount_minor, row.status) == (250, "POSTED")
        assert c.groups == 1
        again = await c.submit(w.principals[0], _cmd(w, 0, 0, 1, 250, "lone"))
        assert again.id == row.id, "the key replays"
        assert await _posted(router, w.accounts[0][0]) == (250, 1_000)
    finally:
        await c.close()


async def test_concurrent_requests_share_groups_and_keep_their_own_answers(
        router: Router, topo: Topology) -> None:
    gate = await _gate(router)
    w = await _world(router, topo, [1_000, 0, 0, 0, 0, 1_000, 0, 0, 0, 0])
    c = TransferCoalescer(router, lambda: gate, runners=1)
    try:
        cmds = [(t, _cmd(w, t, 0, 1 + i % 3, 30, f"c{i}")) for t in (0, 1) for i in range(40)]
        got = await asyncio.gather(*(c.submit(w.principals[t], cmd) for t, cmd in cmds),
                                   return_exceptions=True)
    finally:
        await c.close()
    moved = [g for g in got if not isinstance(g, BaseException)]
    refused = [g for g in got if isinstance(g, BaseException)]
    # Each tenant's 1,000.00 pays 33 transfers of 30; the other 7 are refused for funds.
    assert len(moved) == 66
    assert all(isinstance(r, InsufficientFunds) for r in refused)
    assert len(refused) == 14
    assert len({r.id for r in moved}) == 66
    assert c.groups < len(cmds), "requests shared groups"
    for t in (0, 1):
        assert await _posted(router, w.accounts[t][0]) == (990, 1_000)


async def test_a_failing_group_is_split_and_each_request_runs_alone(
        router: Router, topo: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = await _gate(router)
    w = await _world(router, topo, [100] + [0] * 9)

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a group cannot run")

    monkeypatch.setattr(coalescer_module, "create_transfers_txn", broken)
    c = TransferCoalescer(router, lambda: gate, runners=1)
    try:
        ok, poor = await asyncio.gather(
            c.submit(w.principals[0], _cmd(w, 0, 0, 1, 60, "split-1")),
            c.submit(w.principals[0], _cmd(w, 0, 0, 2, 60, "split-2")),
            return_exceptions=True)
    finally:
        await c.close()
    assert not isinstance(ok, BaseException)
    assert ok.amount_minor == 60
    assert isinstance(poor, DomainError)
    assert poor.code == "INSUFFICIENT_FUNDS"
    assert await _posted(router, w.accounts[0][0]) == (60, 100)


async def test_closing_answers_every_caller_and_takes_no_more(
        router: Router, topo: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group in flight and requests queued behind it when the process stops: every caller is
    answered ShuttingDown, nothing of theirs is written, and later requests are refused."""
    gate = await _gate(router)
    w = await _world(router, topo, [1_000] + [0] * 9)
    started = asyncio.Event()
    real = coalescer_module.create_transfers_txn

    async def slow(conn: Any, *args: Any, **kwargs: Any) -> Any:
        started.set()
        await conn.execute(text("SELECT pg_sleep(30)"))
        return await real(conn, *args, **kwargs)

    monkeypatch.setattr(coalescer_module, "create_transfers_txn", slow)
    c = TransferCoalescer(router, lambda: gate, runners=1)
    first = asyncio.create_task(c.submit(w.principals[0], _cmd(w, 0, 0, 1, 10, "shut-1")))
    await started.wait()
    queued = [asyncio.create_task(c.submit(w.principals[0], _cmd(w, 0, 0, 1, 10, f"shut-{i}")))
              for i in range(2, 5)]
    await asyncio.sleep(0)
    await c.close()
    for task in (first, *queued):
        with pytest.raises(coalescer_module.ShuttingDown):
            await task
    with pytest.raises(coalescer_module.ShuttingDown):
        await c.submit(w.principals[0], _cmd(w, 0, 0, 1, 10, "shut-late"))
    assert await _posted(router, w.accounts[0][0]) == (0, 1_000)


async def test_a_caller_that_gave_up_before_its_group_started_is_left_out(
        router: Router, topo: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = await _gate(router)
    w = await _world(router, topo, [1_000] + [0] * 9)
    gate_open = asyncio.Event()
    real = coalescer_module.create_transfers_txn

    async def waits(conn: Any, *args: Any, **kwargs: Any) -> Any:
        await gate_open.wait()
        return await real(conn, *args, **kwargs)

    monkeypatch.setattr(coalescer_module, "create_transfers_txn", waits)
    c = TransferCoalescer(router, lambda: gate, runners=1)
    try:
        busy = asyncio.create_task(c.submit(w.principals[0], _cmd(w, 0, 0, 1, 10, "gone-1")))
        await asyncio.sleep(0.05)
        quitter = asyncio.create_task(c.submit(w.principals[0],
                                               _cmd(w, 0, 0, 2, 20, "gone-2")))
        await asyncio.sleep(0.05)
        quitter.cancel()
        gate_open.set()
        assert (await busy).amount_minor == 10
        with pytest.raises(asyncio.CancelledError):
            await quitter
        await c.submit(w.principals[0], _cmd(w, 0, 0, 1, 5, "gone-3"))
    finally:
        await c.close()
    assert await _posted(router, w.accounts[0][0]) == (15, 1_000), "the quitter wrote nothing"


async def test_a_full_queue_refuses_at_once(router: Router, topo: Topology,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    gate = await _gate(router)
    w = await _world(router, topo, [1_000] + [0] * 9)
    release = asyncio.Event()
    real = coalescer_module.create_transfers_txn

    async def waits(conn: Any, *args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await real(conn, *args, **kwargs)

    monkeypatch.setattr(coalescer_module, "create_transfers_txn", waits)
    c = TransferCoalescer(router, lambda: gate, runners=1, group_max=1, queue_max=2)
    try:
        running = asyncio.create_task(c.submit(w.principals[0], _cmd(w, 0, 0, 1, 1, "q-0")))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(c.submit(w.principals[0],
                                                _cmd(w, 0, 0, 1, 1, f"q-{i}")))
                   for i in (1, 2)]
        await asyncio.sleep(0.05)
        with pytest.raises(coalescer_module.Overloaded, match="more than 2 transfers"):
            await c.submit(w.principals[0], _cmd(w, 0, 0, 1, 1, "q-3"))
        release.set()
        assert [r.amount_minor for r in await asyncio.gather(running, *waiting)] == [1, 1, 1]
    finally:
        await c.close()


async def test_rows_of_a_group_carry_each_callers_origin(router: Router,
                                                         topo: Topology) -> None:
    gate = await _gate(router)
    w = await _world(router, topo, [1_000, 0, 0, 0, 0, 1_000, 0, 0, 0, 0])
    c = TransferCoalescer(router, lambda: gate, runners=1)

    async def from_address(tenant: int, address: str) -> Any:
        events.origin.set(address)
        return await c.submit(w.principals[tenant], _cmd(w, tenant, 0, 1, 10, address))

    try:
        a, b = await asyncio.gather(from_address(0, "198.51.100.1"),
                                    from_address(1, "198.51.100.2"))
    finally:
        await c.close()

    async def origins(conn: Any) -> dict[str, str]:
        return {r.target: r.origin for r in await conn.execute(text(
            "SELECT target, origin FROM audit_events WHERE region = :r "
            "AND action = 'transfer.created' AND target = ANY(:ids)"),
            {"r": region, "ids": [a.id, b.id]})}

    assert await router.read(region, origins) == {a.id: "198.51.100.1",
                                                  b.id: "198.51.100.2"}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(AssertionError):
        TransferCoalescer(None, lambda: PolicyGate(), group_max=0)  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        TransferCoalescer(None, lambda: PolicyGate(), runners=0)  # type: ignore[arg-type]


async def test_a_group_past_its_earliest_deadline_rolls_back_and_the_rest_run_alone(
        router: Router, topo: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group hangs in the database after writing. At the first member's deadline it is
    cancelled and rolls back: that member (its caller told it timed out) wrote nothing, and
    the others run again as a group within their own deadlines."""
    gate = await _gate(router)
    w = await _world(router, topo, [1_000] + [0] * 9)
    real = coalescer_module.create_transfers_txn

    calls = []

    async def hangs(conn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[-1]))
        written = await real(conn, *args, **kwargs)
        if len(calls) == 1:
            await conn.execute(text("SELECT pg_sleep(30)"))
        return written

    monkeypatch.setattr(coalescer_module, "create_transfers_txn", hangs)
    c = TransferCoalescer(router, lambda: gate, runners=1)
    loop = asyncio.get_running_loop()

    async def with_deadline(seconds: float, cmd: commands.CreateTransfer) -> Any:
        coalescer_module.deadline.set(loop.time() + seconds)
        return await c.submit(w.principals[0], cmd)

    try:
        hasty, patient = await asyncio.gather(
            with_deadline(0.5, _cmd(w, 0, 0, 1, 100, "dl-hasty")),
            with_deadline(60, _cmd(w, 0, 0, 2, 200, "dl-patient")),
            return_exceptions=True)
    finally:
        await c.close()
    assert isinstance(hasty, TimeoutError), hasty
    assert calls == [2, 1], "the group, then the one whose deadline had not passed"
    assert not isinstance(patient, BaseException)
    assert patient.amount_minor == 200
    assert await _posted(router, w.accounts[0][0]) == (200, 1_000), "only the patient one"

    async def keys(conn: Any) -> list[str]:
        return [r.key for r in await conn.execute(text(
            "SELECT key FROM idempotency_keys WHERE region = :r AND tenant_id = :t"),
            {"r": region, "t": w.principals[0].tenant.id})]

    assert await router.read(region, keys) == ["dl-patient"]


class CountingRouter(Router):
    """Counts the transactions it is asked to run."""

    runs = 0

    async def run(self, region: str, body: Any) -> Any:
        type(self).runs += 1
        return await super().run(region, body)


async def test_a_group_whose_database_is_unreachable_answers_every_request_unavailable(
        router: Router, topo: Topology, db_urls: DatabaseUrls) -> None:
    """Nothing was written, so the group is not split into one-by-one runs against the same
    dead database (the late ones would wait into their deadlines): every request is answered
    UNAVAILABLE at once, and each succeeds when sent again with its key."""
    gate = await _gate(router)
    w = await _world(router, topo, [1_000] + [0] * 9)
    dead = DatabaseUrls(control=db_urls.control,
                        clusters=dict.fromkeys(db_urls.clusters, unreachable))
    down = CountingRouter(topo, dead, pool_size=1)
    c = TransferCoalescer(down, lambda: gate, runners=1)
    cmds = [_cmd(w, 0, 0, 1 + i % 3, 10, f"down-{i}") for i in range(12)]
    try:
        got = await asyncio.gather(*(c.submit(w.principals[0], cmd) for cmd in cmds),
                                   return_exceptions=True)
    finally:
        await c.close()
        await down.dispose()
    assert all(isinstance(g, DatabaseUnavailable) for g in got), got
    assert CountingRouter.runs < len(cmds), "the groups were answered, not split"
    assert await _posted(router, w.accounts[0][0]) == (0, 1_000)

    up = TransferCoalescer(router, lambda: gate, runners=1)
    try:
        again = await asyncio.gather(*(up.submit(w.principals[0], cmd) for cmd in cmds))
    finally:
        await up.close()
    assert len({r.id for r in again}) == len(cmds)
    assert await _posted(router, w.accounts[0][0]) == (120, 1_000)
