"""Periodic jobs with a lease, so two schedulers never both fire the same job.

Each job has a row in ``scheduler_leases``. A scheduler fires a job only while it holds that
row's lease (taken when free or expired, renewed on every tick) and only when the job is due.
Sending happens between two transactions (no message is sent from inside a body that may be
retried); the lease outlives the gap, so no other scheduler can fire meanwhile.
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
    name: str
    interval_s: int
    send: Callable[[], object]


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler:
    def __init__(self, router: Router, jobs: list[Job], holder: str | None = None) -> None:
        assert jobs
        self.router = router
        self.jobs = jobs
        self.holder = holder or holder_id()

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
        job.send()

        async def record(conn: AsyncConnection) -> None:
            await conn.execute(_fired, {"at": due_at, "name": job.name, "holder": self.holder})

        await self.router.run_control(record)
        # Debug: with webhook retries every 5 s per region, firing is too frequent for INFO.
        _log.debug("scheduler %s fired %s", self.holder, job.name)
        return True

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
