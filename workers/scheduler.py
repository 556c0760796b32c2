"""Periodic jobs with a lease, so two schedulers never both fire the same job.

Each job has a row in ``scheduler_leases``. A scheduler fires a job only while it holds that
row's lease (taken when free or expired, renewed on every tick) and only when the job is due.
Sending happens between two transactions (no message is sent from inside a body that may be
retried); the lease outlives the gap, so no other scheduler can fire meanwhile.

A job for one region is sent only while that region's database answers: a message for a region
that is down would fail its retries and lie in the dead-letter queue. Its jobs stay due and
fire on the first tick after the region answers again; a region found down is asked again
after ``probe_again_s`` (10 s by default), not on every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.router import Router

lease_s = 15
tick_s = 1.0
probe_again_s_default = 10.0

_log = logging.getLogger(__name__)

_take_lease = text("""
    INSERT INTO scheduler_leases (name, holder, expires_at)
    VALUES (:name, :holder, now() + make_interval(secs => :lease_s))
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
        WHERE scheduler_leases.holder = EXCLUDED.holder OR scheduler_leases.expires_at < now()
    RETURNING last_fired_at, now() AS db_now
""")
_fired = text("""
    UPDATE scheduler_leases SET last_fired_at = :at WHERE name = :name AND holder = :holder
""")


async def take_lease(conn: AsyncConnection, name: str, holder: str,
                     seconds: int) -> Row[Any] | None:
    """Take or renew the named lease; the row (last fired, database time) if we hold it."""
    return (await conn.execute(_take_lease, {"name": name, "holder": holder,
                                             "lease_s": seconds})).first()


_release = text("""
    UPDATE scheduler_leases SET expires_at = now() WHERE name = :name AND holder = :holder
""")


async def release_lease(conn: AsyncConnection, name: str, holder: str) -> None:
    """Give a lease back at the end of a run, so the next run need not wait it out."""
    await conn.execute(_release, {"name": name, "holder": holder})


class LeaseKeeper:
    """Named leases one holder keeps: taken or renewed in the control plane a third of the way
    through, and trusted in between without a query (the relays' per-region leases)."""

    def __init__(self, router: Router, holder: str, seconds: int) -> None:
        self.router = router
        self.holder = holder
        self.seconds = seconds
        self._renew_at: dict[str, float] = {}

    async def holds(self, name: str) -> bool:
        if time.monotonic() < self._renew_at.get(name, 0.0):
            return True

        async def body(conn: AsyncConnection) -> bool:
            return await take_lease(conn, name, self.holder, self.seconds) is not None

        held = await self.router.run_control(body)
        self._renew_at[name] = time.monotonic() + self.seconds / 3 if held else 0.0
        return held


@dataclass(frozen=True, slots=True)
class Job:
    """``region``: the region whose database the job works on, if it works on one."""

    name: str
    interval_s: int
    send: Callable[[], object]
    region: str | None = None


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler:
    def __init__(self, router: Router, jobs: list[Job], holder: str | None = None,
                 probe_again_s: float = probe_again_s_default,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` times only when a region found down is asked again (due times are the
        database's)."""
        assert jobs
        self.router = router
        self.jobs = jobs
        self.holder = holder or holder_id()
        self.probe_again_s = probe_again_s
        self._clock = clock
        self._down_until: dict[str, float] = {}  # region -> monotonic time to ask again

    async def tick(self) -> list[str]:
        """Fire every job this scheduler holds and that is due; returns their names."""
        fired = []
        for job in self.jobs:
            try:
                if await self._fire_if_due(job):
                    fired.append(job.name)
            except Exception:  # noqa: BLE001 - one job's failure must not starve the others
                _log.exception("scheduler job %s failed; it fires again when due", job.name)
        return fired

    async def _fire_if_due(self, job: Job) -> bool:
        async def due(conn: AsyncConnection) -> datetime | None:
            return await self._due(conn, job)

        due_at = await self.router.run_control(due)
        if due_at is None:
            return False
        if job.region is not None and not await self._answers(job.region):
            return False  # still due: it fires once the region answers
        job.send()

        async def record(conn: AsyncConnection) -> None:
            await conn.execute(_fired, {"at": due_at, "name": job.name, "holder": self.holder})

        await self.router.run_control(record)
        # Debug: with webhook retries every 5 s per region, firing is too frequent for INFO.
        _log.debug("scheduler %s fired %s", self.holder, job.name)
        return True

    async def _answers(self, region: str) -> bool:
        """Whether ``region``'s database answers; a region found down is not asked again for
        ``probe_again_s``."""
        if self._clock() < self._down_until.get(region, float("-inf")):
            return False
        if await self.router.reachable(region):
            if self._down_until.pop(region, None) is not None:
                _log.info("region %s answers again; its scheduled jobs fire", region)
            return True
        if region not in self._down_until:
            _log.warning("region %s's database cannot be reached; its scheduled jobs wait until "
                         "it answers (asked every %s s)", region, self.probe_again_s)
        self._down_until[region] = self._clock() + self.probe_again_s
        return False

    async def _due(self, conn: AsyncConnection, job: Job) -> datetime | None:
        """The database time if we hold the job's lease and it is due, else None."""
        row = await take_lease(conn, job.name, self.holder, lease_s)
        if row is None:
            return None
        last, now = row.last_fired_at, row.db_now
        if last is not None and last + timedelta(seconds=job.interval_s) > now:
            return None
        return now  # type: ignore[no-any-return]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the loop outlives a database or broker outage
                _log.exception("scheduler tick failed; retrying next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
