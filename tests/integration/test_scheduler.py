"""The scheduler's lease on real PostgreSQL: one holder fires, at most once per interval.

Each test uses its own job names, so the tests share ``scheduler_leases`` without meeting.
Time is moved either for real (short intervals and leases) or by moving the lease row's
timestamps back in the database.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.integration.test_connection_loss import unreachable
from workers import scheduler as scheduler_module
from workers.scheduler import Job, Scheduler


def _name(what: str) -> str:
    return f"test.{what}.{uuid.uuid4().hex[:12]}"


class Recorder:
    """A job's ``send``: records each call (monotonic time), and can fail on demand."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.failures_left = 0
        self.called = asyncio.Event()

    async def wait_for_calls(self, count: int) -> None:
        while len(self.calls) < count:
            self.called.clear()
            await self.called.wait()

    def __call__(self) -> None:
        self.calls.append(time.monotonic())
        self.called.set()
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("broker unavailable")


async def _lease(router: Router, name: str) -> Any:
    async def body(conn: AsyncConnection) -> Any:
        return (await conn.execute(text(
            "SELECT holder, expires_at, last_fired_at, expires_at > now() AS live "
            "FROM scheduler_leases WHERE name = :n"), {"n": name})).first()

    return await router.run_control(body)


async def _execute(router: Router, sql: str, **params: Any) -> None:
    async def body(conn: AsyncConnection) -> None:
        await conn.execute(text(sql), params)

    await router.run_control(body)


async def _expire_lease(router: Router, name: str) -> None:
    await _execute(router, "UPDATE scheduler_leases SET expires_at = now() - interval '1 second' "
                           "WHERE name = :n", n=name)


async def _age_last_fired(router: Router, name: str, seconds: int) -> None:
    await _execute(router, "UPDATE scheduler_leases SET last_fired_at = last_fired_at "
                           "- make_interval(secs => :s) WHERE name = :n", n=name, s=seconds)


async def test_only_the_lease_holder_fires(router: Router) -> None:
    name = _name("one-holder")
    sends = {"a": Recorder(), "b": Recorder()}
    a = Scheduler(router, [Job(name, 3_600, sends["a"])], holder="holder-a")
    b = Scheduler(router, [Job(name, 3_600, sends["b"])], holder="holder-b")

    fired = [(await a.tick(), await b.tick()) for _ in range(5)]

    assert fired[0] == ([name], [])
    assert all(f == ([], []) for f in fired[1:]), fired  # not due again within the hour
    assert (len(sends["a"].calls), len(sends["b"].calls)) == (1, 0)
    lease = await _lease(router, name)
    assert lease.holder == "holder-a"
    assert lease.live
    assert lease.last_fired_at is not None


async def test_concurrent_ticks_fire_once(router: Router) -> None:
    name = _name("race")
    sends = [Recorder() for _ in range(6)]
    schedulers = [Scheduler(router, [Job(name, 3_600, s)], holder=f"holder-{i}")
                  for i, s in enumerate(sends)]

    results = await asyncio.gather(*(s.tick() for s in schedulers))

    assert sorted(map(len, results)) == [0, 0, 0, 0, 0, 1]
    assert sum(len(s.calls) for s in sends) == 1
    winner = next(i for i, r in enumerate(results) if r)
    assert (await _lease(router, name)).holder == f"holder-{winner}"


async def test_fires_at_most_once_per_interval_in_real_time(router: Router) -> None:
    name = _name("interval")
    sends = {"a": Recorder(), "b": Recorder()}
    interval_s = 1
    a = Scheduler(router, [Job(name, interval_s, sends["a"])], holder="holder-a")
    b = Scheduler(router, [Job(name, interval_s, sends["b"])], holder="holder-b")

    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        await a.tick()
        await b.tick()
        await asyncio.sleep(0.05)

    calls = sends["a"].calls
    assert sends["b"].calls == []
    assert 2 <= len(calls) <= 3, calls
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    # Due is decided on the database's clock, the gaps are measured here after each commit, so
    # a slow commit shortens the next gap; a double fire would be a gap of one tick (~0.05 s).
    assert all(gap >= interval_s / 2 for gap in gaps), gaps


async def test_other_scheduler_takes_over_an_expired_lease(router: Router) -> None:
    name = _name("takeover")
    sends = {"a": Recorder(), "b": Recorder()}
    a = Scheduler(router, [Job(name, 60, sends["a"])], holder="holder-a")
    b = Scheduler(router, [Job(name, 60, sends["b"])], holder="holder-b")
    assert await a.tick() == [name]
    assert await b.tick() == []  # a holds the lease

    # a stops ticking; its lease runs out.
    await _expire_lease(router, name)
    assert await b.tick() == []  # b takes the lease, but the job fired a moment ago
    lease = await _lease(router, name)
    assert (lease.holder, lease.live) == ("holder-b", True)
    assert await a.tick() == []  # a came back: b holds the lease now

    await _age_last_fired(router, name, 61)
    assert await b.tick() == [name]
    assert await a.tick() == []
    assert (len(sends["a"].calls), len(sends["b"].calls)) == (1, 1)
    assert (await _lease(router, name)).holder == "holder-b"


async def test_takeover_after_a_real_lease_expiry(router: Router,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "lease_s", 1)
    name = _name("expiry")
    sends = {"a": Recorder(), "b": Recorder()}
    a = Scheduler(router, [Job(name, 1, sends["a"])], holder="holder-a")
    b = Scheduler(router, [Job(name, 1, sends["b"])], holder="holder-b")
    assert await a.tick() == [name]
    assert await b.tick() == []

    await asyncio.sleep(1.3)  # a does not tick: its one-second lease expires
    # b's lease is the usual length, so a slow moment before a's next tick cannot expire it.
    monkeypatch.setattr(scheduler_module, "lease_s", 15)
    assert await b.tick() == [name]
    assert await a.tick() == []
    assert (len(sends["a"].calls), len(sends["b"].calls)) == (1, 1)
    assert (await _lease(router, name)).holder == "holder-b"


async def test_failed_send_is_retried_on_the_next_tick(router: Router) -> None:
    name = _name("send-fails")
    send = Recorder()
    send.failures_left = 1
    s = Scheduler(router, [Job(name, 3_600, send)], holder="holder-a")

    assert await s.tick() == []  # the failure is logged, not raised: other jobs still run
    lease = await _lease(router, name)
    assert lease.holder == "holder-a"
    assert lease.last_fired_at is None  # not recorded as fired

    assert await s.tick() == [name]
    assert len(send.calls) == 2
    fired_at = (await _lease(router, name)).last_fired_at
    assert fired_at is not None
    assert await s.tick() == []  # and now it waits for the interval
    assert len(send.calls) == 2


async def test_failed_send_after_a_fire_keeps_the_previous_fire_time(router: Router) -> None:
    name = _name("send-fails-later")
    send = Recorder()
    s = Scheduler(router, [Job(name, 60, send)], holder="holder-a")
    assert await s.tick() == [name]
    await _age_last_fired(router, name, 61)
    before = (await _lease(router, name)).last_fired_at

    send.failures_left = 1
    assert await s.tick() == []
    assert (await _lease(router, name)).last_fired_at == before

    assert await s.tick() == [name]
    assert (await _lease(router, name)).last_fired_at > before
    assert len(send.calls) == 3


async def test_run_loop_survives_a_failing_send_and_stops_on_request(
        router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "tick_s", 0.05)
    name = _name("run")
    send = Recorder()
    send.failures_left = 2
    stop = asyncio.Event()
    s = Scheduler(router, [Job(name, 3_600, send)], holder="holder-run")
    task = asyncio.create_task(s.run(stop))
    try:
        await asyncio.wait_for(send.wait_for_calls(3), timeout=10)
        assert len(send.calls) == 3, send.calls  # two failures, then the fire
        await asyncio.sleep(0.3)  # more ticks: not due again
        assert len(send.calls) == 3
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert (await _lease(router, name)).last_fired_at is not None


async def test_one_failing_job_does_not_stop_the_others(router: Router) -> None:
    broken, fine = _name("broken"), _name("fine")
    failing, working = Recorder(), Recorder()
    failing.failures_left = 10
    s = Scheduler(router, [Job(broken, 60, failing), Job(fine, 60, working)], holder="holder-a")
    assert await s.tick() == [fine]
    assert len(working.calls) == 1
    assert (await _lease(router, broken)).last_fired_at is None


async def test_a_region_that_is_down_has_its_jobs_wait_until_it_answers(
        router: Router, topo: Topology, db_urls: DatabaseUrls,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A job for a region whose database cannot be reached is not sent (its message would only
    fail into the dead-letter queue): it stays due, the region is not asked again on every
    tick, and the job fires on the first tick after the region answers. Jobs of other regions
    and jobs of no region fire meanwhile."""
    up = topo.region("eu-central")
    down = next(r for r in topo.regions if r.cluster != up.cluster)
    dead = DatabaseUrls(control=db_urls.control, clusters={
        **db_urls.clusters, down.cluster: unreachable})
    names = {"up": _name("up"), "down": _name("down"), "global": _name("global")}
    sends = {k: Recorder() for k in names}
    jobs = [Job(names["up"], 60, sends["up"], region=up.code),
            Job(names["down"], 60, sends["down"], region=down.code),
            Job(names["global"], 60, sends["global"])]
    half_down = Router(topo, dead, pool_size=1)
    asked: list[str] = []
    reachable = half_down.reachable

    async def counting(region: str) -> bool:
        asked.append(region)
        return await reachable(region)

    monkeypatch.setattr(half_down, "reachable", counting)
    now = [0.0]  # the scheduler's clock for asking a down region again
    s = Scheduler(half_down, jobs, holder="holder-a", probe_again_s=10.0, clock=lambda: now[0])
    try:
        with caplog.at_level(logging.INFO, logger=scheduler_module.__name__):
            assert await s.tick() == [names["up"], names["global"]]
            assert await s.tick() == []  # nothing else due; the down region is not asked again
            assert asked == [up.code, down.code]
            assert (await _lease(router, names["down"])).last_fired_at is None
            assert sends["down"].calls == []
            warned = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warned) == 1
            assert down.code in warned[0].getMessage()

            # The region answers again (the same scheduler, now reaching its database), and
            # is asked once probe_again_s has passed.
            s.router = router
            now[0] = 9.9
            assert await s.tick() == [], "not asked again before probe_again_s"
            now[0] = 10.0
            assert await s.tick() == [names["down"]]
            assert len(sends["down"].calls) == 1
            assert any(f"region {down.code} answers again" in r.getMessage()
                       for r in caplog.records)
    finally:
        await half_down.dispose()
