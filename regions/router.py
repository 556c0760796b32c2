"""Tenant -> home region -> engine. The only place that chooses a database.

Engines are created per cluster (several regions may share one), on both engines at READ
COMMITTED, the level production runs at. The ledger's correctness rests on explicit row locks
taken in sorted order (``SELECT ... FOR UPDATE``), unique keys and CHECK constraints, not on
serializable snapshots: under SERIALIZABLE PostgreSQL aborts every transaction that waited on a
row lock once the holder commits, so a hot account turns into a storm of retries. CockroachDB
runs the same transactions at READ COMMITTED (cluster setting
``sql.txn.read_committed_isolation.enabled``); both still raise 40001/40P01 at times, which the
retry wrapper absorbs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from psycopg.types.array import ListBinaryDumper
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from payments.errors import PolicyDenied
from regions import audit_chain, events, telemetry
from regions.topology import Topology
from regions.txn import Body, DatabaseUnavailable, T, run_txn

pool_size_default = 10
pool_overflow_max = 10
pool_timeout_s = 5.0
reachable_timeout_s = 2.0
# How long a new connection may take, unless the URL sets ``connect_timeout`` itself. psycopg's
# own default is 130 s: a server that accepts nothing, or answers nothing, would hold a worker
# or a relay that long before the retry wrapper could try again. libpq's minimum is 2 s.
connect_timeout_s_default = 5
isolation_level = "READ COMMITTED"


@dataclass(frozen=True, slots=True)
class DatabaseUrls:
    """SQLAlchemy URLs: the control plane and one per cluster name."""

    control: str
    clusters: Mapping[str, str]


class Router:
    def __init__(self, topo: Topology, urls: DatabaseUrls, pool_size: int = pool_size_default,
                 pool_overflow: int = pool_overflow_max):
        """Each of the four kinds of engine (control and cluster, each for transactions and
        for reads) keeps ``pool_size`` connections and opens up to ``pool_overflow`` more
        under load: a process holds at most ``(pool_size + pool_overflow) * 2 * (1 +
        clusters)`` connections."""
        missing = [c.name for c in topo.clusters if c.name not in urls.clusters]
        if missing:
            raise ValueError(f"no database URL for cluster(s) {missing}")
        self.topology = topo
        pool = _Pool(pool_size, pool_overflow)
        self._control = _engine(urls.control, pool)
        self._clusters = {c.name: _engine(urls.clusters[c.name], pool) for c in topo.clusters}
        # Reads get their own always-autocommit pools: switching a pooled connection's
        # isolation per checkout costs a round trip to set it back on return.
        self._control_reads = _engine(urls.control, pool, "AUTOCOMMIT")
        self._cluster_reads = {c.name: _engine(urls.clusters[c.name], pool, "AUTOCOMMIT")
                               for c in topo.clusters}

    @property
    def control(self) -> AsyncEngine:
        return self._control

    def engine_for(self, region: str) -> AsyncEngine:
        return self._clusters[self.topology.region(region).cluster]

    async def run(self, region: str, body: Body[T]) -> T:
        """Run a transaction body on the cluster holding ``region``.

        An operation a policy refused leaves its decision in the audit log all the same.
        """
        try:
            return await run_txn(self.engine_for(region), body)
        except PolicyDenied as exc:
            if isinstance(exc.trail, events.Trail):
                await self._record_trail(exc.trail)
            raise

    async def _record_trail(self, trail: events.Trail) -> None:
        async def body(conn: AsyncConnection) -> None:
            await events.record(conn, trail.region, trail.tenant_id, trail.actor, [trail.event])

        await run_txn(self.engine_for(trail.region), body)

    async def read(self, region: str, body: Body[T]) -> T:
        """A single-statement read on the cluster holding ``region``, without a transaction."""
        return await run_txn(self._cluster_reads[self.topology.region(region).cluster], body,
                             autocommit=True)

    async def reachable(self, region: str, timeout_s: float = reachable_timeout_s) -> bool:
        """Whether ``region``'s rows can be read within ``timeout_s``. The query reads the
        region's own partition, not just any node of its cluster: on a CockroachDB cluster
        shared by several regions, a gateway answers ``SELECT 1`` while the region's
        leaseholders are down. The limit covers a server that accepts connections and never
        answers. Two tries: the first may meet a pooled connection the server dropped, which
        invalidates the pool. Any database error counts as not reachable."""
        try:
            async with asyncio.timeout(timeout_s):
                await run_txn(self._cluster_reads[self.topology.region(region).cluster],
                              partial(_read_a_row, region=region), tries=2, autocommit=True)
        except (DatabaseUnavailable, DBAPIError, TimeoutError):
            return False
        return True

    async def run_control(self, body: Body[T]) -> T:
        return await run_txn(self._control, body)

    async def read_control(self, body: Body[T]) -> T:
        return await run_txn(self._control_reads, body, autocommit=True)

    async def run_trail(self, where: str, body: Body[T]) -> T:
        """A transaction where an audit trail lives: a region, or ``control``."""
        if where == audit_chain.control:
            return await self.run_control(body)
        return await self.run(where, body)

    async def read_trail(self, where: str, body: Body[T]) -> T:
        if where == audit_chain.control:
            return await self.read_control(body)
        return await self.read(where, body)

    async def dispose(self) -> None:
        for engine in (self._control, self._control_reads, *self._clusters.values(),
                       *self._cluster_reads.values()):
            await engine.dispose()


async def _read_a_row(conn: AsyncConnection, region: str) -> None:
    await conn.execute(text("SELECT 1 FROM accounts WHERE region = :r LIMIT 1"), {"r": region})


class Recheck:
    """When a process cache looks at the database again: at most once per ``every_s``. A look
    that fails does not count, so the next caller looks again rather than trusting the cache
    for another interval (a revoked key must not outlive a failed check)."""

    def __init__(self, every_s: float):
        self._every_s = every_s
        self._looked_s = float("-inf")

    def due(self) -> bool:
        return time.monotonic() - self._looked_s >= self._every_s

    @contextlib.contextmanager
    def looking(self) -> Iterator[None]:
        """Around the look: callers arriving meanwhile take it as done."""
        before_s, self._looked_s = self._looked_s, time.monotonic()
        try:
            yield
        except BaseException:
            self._looked_s = before_s
            raise


@dataclass(frozen=True, slots=True)
class _Pool:
    size: int
    overflow: int


def connect_args(url: str) -> dict[str, Any]:
    """psycopg's connection arguments for ``url``: the default connect timeout, unless the
    URL names one or libpq's ``PGCONNECT_TIMEOUT`` is set."""
    if "connect_timeout" in make_url(url).query or os.environ.get("PGCONNECT_TIMEOUT"):
        return {}
    return {"connect_timeout": connect_timeout_s_default}


def _engine(url: str, pool: _Pool, isolation: str = isolation_level) -> AsyncEngine:
    engine = create_async_engine(
        url,
        isolation_level=isolation,
        pool_size=pool.size,
        max_overflow=pool.overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=False,
        connect_args=connect_args(url),
    )
    event.listen(engine.sync_engine, "connect", _binary_arrays)
    telemetry.instrument_engine(engine)
    return engine


def _binary_arrays(dbapi_connection: Any, _: Any) -> None:
    """Python lists go to the server as binary arrays. The set-based statements pass a group's
    rows as arrays (``unnest``); in text form psycopg quotes and escapes every element in
    Python (17 us for a JSON payload, 2 us for an id), in binary it packs them (0.3 us).
    Every array parameter is cast in its statement (``CAST(:ids AS TEXT[])``), so the element
    type psycopg picks (``smallint[]`` for small integers) never decides a column's type.
    CockroachDB's wire protocol decodes binary arrays of the types used here (text, bytea,
    int2/4/8)."""
    dbapi_connection.driver_connection.adapters.register_dumper(list, ListBinaryDumper)
