"""``uv run python -m bench.audit_chain [--seconds N] [--writers W] [--smoke]``: does chaining
the audit log slow its writers down?

On a scratch set of databases (migrated as the tests do, dropped at the end), for one region:

1. W writer tasks commit small transactions, each recording a transfer's two audit events
   (``transfer.created`` and its ``policy.decided``) with ``events.record``, as
   ``createTransfer`` does; the chainer is not running;
2. the same with the chainer running: the maintenance job (``chain_region``, a ``chain_txn``
   transaction a run) in a process of its own as in production, back to back (the worst case
   of its 5 s schedule) or every ``--chain-interval-s``; then its lag when the writers stop,
   and how long it takes to catch up once the last rows are ``lag_s`` old;
3. chaining a backlog of rows recorded beforehand (in a second region: its own partition and
   chain);
4. ``verify`` over every chain; a break makes the bench exit non-zero.

The bench refreshes the planner's statistics of the audit tables (``ANALYZE``) before each
phase, as autovacuum does for a live database: the scratch tables are minutes old, and
autovacuum may be off (the test server runs without it). With no statistics, or those of an
empty chain, the planner answers ``chain_txn``'s query for unchained rows with a nested loop
that reads the region's whole chain for every audit row: catching up 40,000 rows, each run
takes seconds more than the one before, and the seventh outlasts the 60 s statement timeout.
``--no-analyze`` shows it.

While writers run, a monitor samples ``pg_stat_activity`` for backends waiting on a lock: the
direct evidence for (or against) writers queueing on one row. It reports figures; nothing
here passes or fails on speed. Every phase has a timeout, the whole run a wall-clock cap, and
a watchdog dumps every thread's stack and exits if even the cleanup hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bench.stats import percentile
from payments import ids
from regions import audit_chain, events, migrate
from regions.databases import drop_databases, ensure_databases, local_urls
from regions.local_pg import server_url
from regions.router import DatabaseUrls, Router, isolation_level
from regions.topology import Topology
from regions.topology import load as load_topology
from regions.txn import T, run_txn
from workers.maintenance import chain_region

results_dir = Path(__file__).resolve().parent / "results"
region_writes = "eu-central"
region_backlog = "uk-south"
"""Both on the ``global`` cluster; each region has its own partition and chain."""
writers_max = 20
pool_spare = 2
"""Connections beyond the writers': the lock monitor, and catch-up and verify after them."""
connect_timeout_s = 5
statement_timeout_ms = 60_000
lock_timeout_ms = 10_000
pool_timeout_s = 10.0
txn_s_max = 30.0
monitor_interval_s = 0.05
lag_margin_s = 0.5
backlog_batch_rows = 1_000
chainer_join_s_max = 30.0
cleanup_s_max = 120
chain_interval_s_max = 60.0
chain_job_runs_max = 20
"""As the scheduled job runs it (``workers.actors.audit_chain_runs_max``)."""
idle_runs = 3
setup_s_max = 120


@dataclass(frozen=True, slots=True)
class Plan:
    seconds: float
    warmup_s: float
    writers: int
    backlog_rows: int
    phase_s_max: float
    """Cap on each phase after the writers' (catch-up, backlog, verify)."""
    analyze: bool = True
    chain_interval_s: float = 0.0
    """Pause between the chainer's runs while writers write: 0 (the worst case) or 5 (the
    maintenance schedule)."""

    @property
    def writers_s_max(self) -> float:
        return self.warmup_s + self.seconds + txn_s_max + chainer_join_s_max

    @property
    def wall_s_max(self) -> float:
        return 2 * self.writers_s_max + 5 * self.phase_s_max


def plan_for(smoke: bool, seconds: float | None = None, writers: int | None = None,
             analyze: bool = True, chain_interval_s: float = 0.0) -> Plan:
    if smoke:
        return Plan(seconds or 4.0, 0.3, writers or 4, 2_000, 30.0, analyze, chain_interval_s)
    return Plan(seconds or 20.0, 2.0, writers or 16, 100_000, 300.0, analyze,
                chain_interval_s)


@dataclass
class Load:
    """What writers did after the warm-up."""

    txns: int = 0
    rows: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lock_samples: int = 0
    lock_samples_waiting: int = 0
    lock_waiters_max: int = 0


def with_limits(url: str) -> str:
    """The URL with a connect timeout, a statement timeout and a lock timeout, so that no
    statement of the bench (nor of the code it measures) can wait forever."""
    options = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={lock_timeout_ms}"
    return make_url(url).update_query_dict({
        "connect_timeout": str(connect_timeout_s), "options": options}).render_as_string(
        hide_password=False)


def engine(url: str, pool_size: int) -> AsyncEngine:
    assert pool_size < 25, pool_size  # the server's 100 connections are shared
    return create_async_engine(url, isolation_level=isolation_level, pool_size=pool_size,
                               max_overflow=0, pool_timeout=pool_timeout_s)


async def bounded(what: str, s_max: float, awaitable: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(awaitable, s_max)
    except TimeoutError:
        raise TimeoutError(f"{what} took longer than {s_max:.0f} s") from None


def transfer_events(region: str) -> list[events.Event]:
    """A transfer's audit trail: its event (also published) and its policy decision."""
    transfer_id = ids.new_id("trf", region)
    return [events.Event("transfer.created", {"transfer_id": transfer_id, "amount_minor": 100,
                                              "currency": "EUR"}, transfer_id),
            events.Event("policy.decided", {"decision_id": ids.new_id("pdc", region),
                                            "kind": "transfer", "subject_id": transfer_id,
                                            "outcome": "allow", "versions": {"EU": 1},
                                            "reasons": [], "amount_minor": 100,
                                            "currency": "EUR"}, transfer_id, published=False)]


def recording(region: str, batch: list[events.Event]
              ) -> Callable[[AsyncConnection], Awaitable[list[str]]]:
    """The body of a mutation's audit write: one ``events.record`` of ``batch``."""
    async def body(conn: AsyncConnection) -> list[str]:
        return await events.record(conn, region, None, "apikey:bench", batch)

    return body


async def writer(db: AsyncEngine, region: str, warm_until: float, stop_at: float,
                 load: Load) -> None:
    while time.perf_counter() < stop_at:
        batch = transfer_events(region)
        sent = time.perf_counter()
        await bounded("a writer's transaction", txn_s_max, run_txn(db, recording(region, batch)))
        done = time.perf_counter()
        if warm_until <= sent and done <= stop_at:
            load.txns += 1
            load.rows += len(batch)
            load.latencies_ms.append((done - sent) * 1000)


async def lock_monitor(db: AsyncEngine, warm_until: float, stop_at: float, load: Load) -> None:
    """Sample how many of this database's backends wait on a heavyweight (row, table) lock."""
    query = text("""SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()""")
    await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
    while time.perf_counter() < stop_at:
        async def sample(conn: AsyncConnection) -> int:
            return int((await conn.execute(query)).scalar_one())

        waiting = await bounded("a lock sample", txn_s_max, run_txn(db, sample))
        load.lock_samples += 1
        load.lock_samples_waiting += waiting > 0
        load.lock_waiters_max = max(load.lock_waiters_max, waiting)
        await asyncio.sleep(monitor_interval_s)


async def write_load(db: AsyncEngine, region: str, plan: Plan) -> Load:
    load = Load()
    start = time.perf_counter()
    warm_until, stop_at = start + plan.warmup_s, start + plan.warmup_s + plan.seconds
    async with asyncio.TaskGroup() as group:
        for _ in range(plan.writers):
            group.create_task(writer(db, region, warm_until, stop_at, load))
        group.create_task(lock_monitor(db, warm_until, stop_at, load))
    return load


def load_figures(load: Load, plan: Plan) -> dict[str, Any]:
    lat = sorted(load.latencies_ms)
    assert load.txns > 0, "no writer transaction finished in the measured window"
    assert load.lock_samples > 0, "the lock monitor took no sample"
    return {"txns_per_s": load.txns / plan.seconds, "rows_per_s": load.rows / plan.seconds,
            "latency_ms_p50": percentile(lat, 50), "latency_ms_p99": percentile(lat, 99),
            "lock_waiters_max": load.lock_waiters_max,
            "lock_samples_waiting_pct": 100 * load.lock_samples_waiting / load.lock_samples}


async def chain_loop(urls: DatabaseUrls, region: str, plan: Plan, ready: MpEvent,
                     stop: MpEvent) -> dict[str, Any]:
    """The maintenance job (``chain_region``: runs until one chains less than a full run),
    job after job, until told to stop."""
    router = Router(load_topology(), urls, pool_size=1)
    jobs_ms: list[float] = []
    chained, start, cpu0 = 0, time.perf_counter(), time.process_time()
    ready.set()
    try:
        while not stop.is_set() and time.perf_counter() - start < plan.writers_s_max:
            t = time.perf_counter()
            chained += await bounded("a chaining job", chainer_join_s_max, chain_region(
                router, region, chain_job_runs_max))
            jobs_ms.append((time.perf_counter() - t) * 1000)
            if plan.chain_interval_s:
                await asyncio.to_thread(stop.wait, plan.chain_interval_s)
    finally:
        await router.dispose()
    return {"chained": chained, "elapsed_s": time.perf_counter() - start,
            "jobs": len(jobs_ms), "job_ms_p50": percentile(sorted(jobs_ms), 50),
            "job_ms_max": max(jobs_ms), "cpu_s": time.process_time() - cpu0}


def chainer_process(urls: DatabaseUrls, region: str, plan: Plan, ready: MpEvent,
                    stop: MpEvent, out: Connection) -> None:
    """The maintenance worker's chaining, in a process of its own as in production."""
    out.send(asyncio.run(chain_loop(urls, region, plan, ready, stop)))


async def with_chainer(db: AsyncEngine, urls: DatabaseUrls, region: str, plan: Plan
                       ) -> tuple[Load, dict[str, Any], dict[str, Any]]:
    """Writers with the chainer running; its figures, and what it left unchained at the end."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    results, sink = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=chainer_process, daemon=True,
                       args=(urls, region, plan, ready, stop, sink))
    proc.start()
    try:
        # Writers start once the process has imported its modules: starting up is not chaining.
        if not await asyncio.to_thread(ready.wait, chainer_join_s_max):
            raise RuntimeError("the chainer process did not start")
        load = await write_load(db, region, plan)
        lag = await unchained(db, region)
        stop.set()
        await asyncio.to_thread(proc.join, chainer_join_s_max)
        if proc.exitcode != 0 or not results.poll(0):
            raise RuntimeError(f"the chainer process failed (exit code {proc.exitcode})")
        return load, results.recv(), lag
    finally:
        stop.set()
        if proc.is_alive():
            proc.kill()
            proc.join(5)


async def unchained(db: AsyncEngine, region: str) -> dict[str, Any]:
    async def body(conn: AsyncConnection) -> dict[str, Any]:
        row = (await conn.execute(text("""
            SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(a.created_at)) AS oldest_s
            FROM audit_events AS a WHERE a.region = :r AND NOT EXISTS (
                SELECT 1 FROM audit_chain AS c WHERE c.region = a.region AND c.event_id = a.id)
            """), {"r": region})).one()
        return {"rows": int(row.n), "oldest_s": float(row.oldest_s or 0.0)}

    return dict(await bounded("counting unchained rows", txn_s_max, run_txn(db, body)))


async def refresh_statistics(db: AsyncEngine, plan: Plan) -> None:
    """What autovacuum does for a live database: the planner's statistics of the trail."""
    async def body(conn: AsyncConnection) -> None:
        await conn.execute(text("ANALYZE audit_events, audit_chain"))

    if plan.analyze:
        await bounded("ANALYZE", txn_s_max, run_txn(db, body))


async def catch_up(db: AsyncEngine, region: str, plan: Plan) -> dict[str, Any]:
    """Wait until the newest rows are ``lag_s`` old, then chain run after run (each in its own
    transaction, as ``chain_region`` does) until caught up. Only the runs are timed: not the
    wait, nor the statistics refreshed before each run (the chain grows by up to
    ``chain_rows_per_run_max`` a run, and statistics of an emptier chain are what turn the
    planner to its quadratic plan)."""
    await asyncio.sleep(audit_chain.lag_s + lag_margin_s)
    runs_ms: list[float] = []
    chained, deadline = 0, time.perf_counter() + plan.phase_s_max
    while True:
        await refresh_statistics(db, plan)
        t = time.perf_counter()
        n = await bounded("catching up", deadline - t, run_txn(
            db, lambda c: audit_chain.chain_txn(c, region)))
        runs_ms.append((time.perf_counter() - t) * 1000)
        chained += n
        if n < audit_chain.chain_rows_per_run_max:
            break
    took_s = sum(runs_ms) / 1000
    left = await unchained(db, region)
    assert left["rows"] == 0, f"{left['rows']} rows still unchained in {region} after catch-up"
    return {"chained": chained, "seconds": took_s, "rows_per_s": chained / took_s,
            "runs": len(runs_ms), "run_ms_first": runs_ms[0], "run_ms_last": runs_ms[-1],
            "run_ms_max": max(runs_ms)}


async def idle_run_ms(db: AsyncEngine, region: str) -> float:
    """A run with nothing to chain still reads the rows of the grace window: its floor."""
    took_ms = []
    for _ in range(idle_runs):
        t = time.perf_counter()
        n = await bounded("an idle chain run", txn_s_max, run_txn(
            db, lambda c: audit_chain.chain_txn(c, region)))
        took_ms.append((time.perf_counter() - t) * 1000)
        assert n == 0, f"an idle run chained {n} rows"
    return percentile(sorted(took_ms), 50)


async def record_backlog(db: AsyncEngine, region: str, rows: int) -> None:
    for done in range(0, rows, backlog_batch_rows):
        count = min(backlog_batch_rows, rows - done)
        batch = [e for _ in range(count // 2 + 1) for e in transfer_events(region)][:count]
        await run_txn(db, recording(region, batch))


async def verify_all(db: AsyncEngine, regions: list[str]) -> dict[str, Any]:
    chained, start, breaks = 0, time.perf_counter(), []
    for region in regions:
        async def body(conn: AsyncConnection, region: str = region) -> audit_chain.Report:
            return await audit_chain.verify(conn, region)

        report = await run_txn(db, body)
        chained += report.chained
        breaks += [b.as_json() for b in report.breaks]
    took_s = time.perf_counter() - start
    return {"entries": chained, "seconds": took_s, "rows_per_s": chained / took_s,
            "intact": not breaks, "breaks": breaks[:20]}


async def measure(urls: DatabaseUrls, plan: Plan) -> dict[str, Any]:
    cluster = load_topology().region(region_writes).cluster
    db = engine(urls.clusters[cluster], plan.writers + pool_spare)
    try:
        out: dict[str, Any] = {}
        await refresh_statistics(db, plan)
        alone = await bounded("writers alone", plan.writers_s_max,
                              write_load(db, region_writes, plan))
        out["writers_alone"] = load_figures(alone, plan)
        out["catch_up_after_alone"] = await catch_up(db, region_writes, plan)
        await refresh_statistics(db, plan)
        load, chainer, lag = await bounded("writers with the chainer", plan.writers_s_max,
                                           with_chainer(db, urls, region_writes, plan))
        out["writers_with_chainer"] = load_figures(load, plan)
        out["chainer"] = {**chainer, "rows_per_s": chainer["chained"] / chainer["elapsed_s"],
                          "lag_rows_at_end": lag["rows"], "lag_oldest_s_at_end": lag["oldest_s"]}
        out["catch_up_after_chainer"] = await catch_up(db, region_writes, plan)
        await bounded("recording the backlog", plan.phase_s_max,
                      record_backlog(db, region_backlog, plan.backlog_rows))
        out["backlog"] = await catch_up(db, region_backlog, plan)
        assert out["backlog"]["chained"] == plan.backlog_rows, out["backlog"]
        out["backlog"]["idle_run_ms"] = await idle_run_ms(db, region_backlog)
        out["verify"] = await bounded("verify", plan.phase_s_max,
                                      verify_all(db, [region_writes, region_backlog]))
        return out
    finally:
        await db.dispose()


def scratch_run(pg: str, topo: Topology, plan: Plan) -> dict[str, Any]:
    """Create, migrate and measure the scratch databases; drop them whatever happens."""
    prefix = f"corridor_bench_audit_{os.getpid()}"
    try:
        ensure_databases(pg, topo, prefix, fresh=True)
        urls, by_target = local_urls(pg, topo, prefix)
        migrate.apply(topo, by_target)
        assert topo.region(region_backlog).cluster == topo.region(region_writes).cluster
        limited = DatabaseUrls(with_limits(urls.control),
                               {k: with_limits(v) for k, v in urls.clusters.items()})
        return asyncio.run(bounded("the whole run", plan.wall_s_max, measure(limited, plan)))
    finally:
        drop_databases(pg, topo, prefix)


def figure(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def markdown(doc: dict[str, Any]) -> str:
    r, p = doc["results"], doc["plan"]
    a, w, c = r["writers_alone"], r["writers_with_chainer"], r["chainer"]
    b, v, k = r["backlog"], r["verify"], r["catch_up_after_chainer"]
    lines = [
        f"Audit chain, {p['writers']} writers, {figure(p['seconds'])} s, {doc['machine']['cpus']} "
        f"cores, statistics {'refreshed' if p['analyze'] else 'left to autovacuum'} "
        "(a writer transaction records a transfer's 2 audit rows)", "",
        "| measurement | audit rows/s | p50 ms | p99 ms | notes |", "|---|---:|---:|---:|---|"]
    every = f"every {p['chain_interval_s']:g} s" if p["chain_interval_s"] else "back to back"
    for label, x in (("writers, chainer off", a), (f"writers, chainer {every}", w)):
        lines.append(f"| {label} | {figure(x['rows_per_s'])} | {x['latency_ms_p50']:.2f} | "
                     f"{x['latency_ms_p99']:.2f} | {figure(x['txns_per_s'])} txn/s; lock waits: "
                     f"{x['lock_samples_waiting_pct']:.0f}% of samples, "
                     f"max {x['lock_waiters_max']} |")
    lines += [
        f"| chainer, {every} during writes | {figure(c['rows_per_s'])} | "
        f"{c['job_ms_p50']:.1f} (job) | {c['job_ms_max']:.1f} (max job) | {c['jobs']} jobs, "
        f"{c['cpu_s']:.1f} s CPU; lag at end {c['lag_rows_at_end']:,} rows, oldest "
        f"{c['lag_oldest_s_at_end']:.1f} s; then caught up in {k['seconds']:.2f} s |",
        f"| chaining a backlog of {b['chained']:,} | {figure(b['rows_per_s'])} | | | {b['runs']} "
        f"runs, first {b['run_ms_first']:.0f} ms, last {b['run_ms_last']:.0f} ms; a run with "
        f"nothing to chain over these rows: {b['idle_run_ms']:.0f} ms |",
        f"| verify | {figure(v['rows_per_s'])} | | | {v['entries']:,} entries, "
        f"{'intact' if v['intact'] else 'BROKEN'} |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.audit_chain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=os.environ.get("CORRIDOR_BENCH_DATABASE_URL"),
                   help="a PostgreSQL server (default: local 127.0.0.1:5432, else embedded)")
    p.add_argument("--seconds", type=float, help="measured seconds per writer phase")
    p.add_argument("--writers", type=int, help=f"concurrent writers, 1 to {writers_max}")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to keep the bench working")
    p.add_argument("--no-analyze", action="store_true",
                   help="leave the planner's statistics to the server's autovacuum")
    p.add_argument("--chain-interval-s", type=float, default=0.0,
                   help="pause between chain runs while writers write (default 0: back to "
                        "back, the worst case; the maintenance job runs every 5 s)")
    p.add_argument("--out", type=Path, default=results_dir)
    args = p.parse_args(argv)
    plan = plan_for(args.smoke, args.seconds, args.writers, not args.no_analyze,
                    args.chain_interval_s)
    if not 1 <= plan.writers <= writers_max or plan.seconds <= 0:
        p.error(f"--writers must be 1 to {writers_max} and --seconds positive")
    if not 0 <= plan.chain_interval_s <= chain_interval_s_max:
        p.error(f"--chain-interval-s must be 0 to {chain_interval_s_max}")
    faulthandler.dump_traceback_later(setup_s_max + plan.wall_s_max + cleanup_s_max, exit=True)
    try:
        with server_url(args.database_url) as pg:
            results = scratch_run(pg, load_topology(), plan)
    finally:
        faulthandler.cancel_dump_traceback_later()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    doc = {"when": stamp, "smoke": args.smoke, "plan": asdict(plan),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}-audit-chain{'-smoke' if args.smoke else ''}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(markdown(doc))
    print(f"wrote {path}", file=sys.stderr)
    if not results["verify"]["intact"]:
        print(f"the audit chain is broken: {results['verify']['breaks']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
