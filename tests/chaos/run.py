"""One bank test run: set the cluster up, run the clients under faults, let it settle, check.

Phases: setup (databases, processes, tenants funded over the API, FX rates from the
scheduler's first refresh); run (clients, the fault injector and the reader, for
``duration_s``, and at least one full cycle of faults); quiesce (faults stop, every process is
up, each client finishes the operation it has in flight, payouts and settlement messages
drain); a replay of every acknowledged operation; the checks (``tests.chaos.checker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from regions.router import Router
from tests import pg
from tests.chaos import checker
from tests.chaos import documents as doc
from tests.chaos.client import Api
from tests.chaos.cluster import Cluster, api_count, home, paying
from tests.chaos.faults import Injector, kinds
from tests.chaos.history import History
from tests.chaos.selftest import run_self_test
from tests.chaos.tenants import Tenant, make_tenant, open_tenant
from tests.chaos.workload import Workload
from tests.cluster_helpers import streams_quiet

jurisdictions = {home: "EU", paying: "SG"}
cycle_wait_s_max = 120.0
"""After ``duration_s``, how long the run goes on for the injector to finish its first cycle."""
ops_settle_s_max = 120.0
"""How long clients keep retrying their last operation once the faults stopped."""
drain_s_max = 240.0
"""How long payouts and settlement messages have to drain after the clients stopped."""
rates_s_max = 90.0
read_interval_s = 1.0
read_timeout_s = 5.0
poll_s = 0.5
http_connections_max = 64
replay_final_max = 5_000


@dataclass(frozen=True, slots=True)
class Options:
    duration_s: float = 60.0
    clients: int = 8
    seed: int = 1
    tenants_per_region: int = 1
    payments_per_account: int = 3
    report: Path | None = None
    returns: bool = False
    """Some payouts end in .93, returned by the bank (in both regions) after completing."""
    self_test: bool = False
    """After the checks, break the ledger and the history on purpose and see the checker
    report each break (``tests.chaos.selftest``)."""
    workdir: Path | None = None
    """Where the processes' logs go (kept); default a temporary directory, removed at the end
    when the run found no anomaly."""


async def run(options: Options) -> dict[str, Any]:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="corridor-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"anomalies": ["the run did not finish"]}
    with pg.server_url() as main_url:
        cluster = Cluster(workdir, main_url)
        try:
            report = await _run(cluster, options)
        finally:
            report["logs"] = str(workdir)
            await asyncio.to_thread(cluster.destroy)
            if options.report is not None:
                options.report.write_text(json.dumps(report, indent=2, default=str),
                                          encoding="utf-8")
            if options.workdir is None and not report["anomalies"]:
                shutil.rmtree(workdir, ignore_errors=True)
    return report


async def _run(cluster: Cluster, options: Options) -> dict[str, Any]:
    began = time.monotonic()
    await asyncio.to_thread(cluster.create)
    created_s = time.monotonic() - began
    await cluster.start_all()
    started_s = time.monotonic() - began - created_s
    assert cluster.topo is not None
    assert cluster.urls is not None
    router = Router(cluster.topo, cluster.urls, pool_size=2)
    limits = httpx.Limits(max_connections=http_connections_max)
    try:
        async with httpx.AsyncClient(limits=limits) as http:
            api = Api(cluster.api_bases, http, began)
            tenants = await _tenants(router, cluster, api, options)
            setup_s = time.monotonic() - began
            history = History()
            report = await _phases(cluster, router, api, tenants, history, options)
            return {"seed": options.seed, "clients": options.clients, "tenants": len(tenants),
                    "setup_s": round(setup_s, 1), "databases_s": round(created_s, 1),
                    "processes_s": round(started_s, 1), **report}
    finally:
        await router.dispose()


async def _tenants(router: Router, cluster: Cluster, api: Api, options: Options
                   ) -> list[Tenant]:
    assert cluster.topo is not None
    made = [await make_tenant(router, cluster.topo, f"Chaos {jurisdiction} {n}", jurisdiction)
            for jurisdiction in jurisdictions.values() for n in range(options.tenants_per_region)]
    # Incoming payments are weighed in the tenant's limit currency: rates first.
    await _wait_rates(api, made[0])
    await asyncio.gather(*(open_tenant(api, t, options.payments_per_account,
                                       random.Random(f"{options.seed}/setup/{t.name}"))
                           for t in made))
    return made


async def _wait_rates(api: Api, tenant: Tenant) -> None:
    """Until the scheduler's first FX refresh reached the workers and fresh rates are served."""
    deadline = time.monotonic() + rates_s_max
    rng = random.Random(0)
    while time.monotonic() < deadline:
        got = await api.call(tenant.key, doc.FX_RATES, {}, rng)
        quotes = {r["quote"] for r in got.data or [] if not r["stale"]}
        if {"USD", "SGD"} <= quotes:
            return
        await asyncio.sleep(poll_s)
    raise RuntimeError(f"no fresh FX rates after {rates_s_max} s")


async def _phases(cluster: Cluster, router: Router, api: Api, tenants: list[Tenant],
                  history: History, options: Options) -> dict[str, Any]:
    funded = checker.funded_totals(tenants)
    workload = Workload(api, tenants, history, options.seed, options.returns)
    injector = Injector(cluster, api, history, options.seed)
    stop_clients, stop_faults, stop_reads = asyncio.Event(), asyncio.Event(), asyncio.Event()
    run_began = time.monotonic()
    clients = [asyncio.create_task(workload.client(c, stop_clients))
               for c in range(options.clients)]
    faults = asyncio.create_task(injector.run(stop_faults))
    reader = asyncio.create_task(_reader(router, funded, history, api, stop_reads))
    await asyncio.sleep(options.duration_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(injector.cycled.wait(), cycle_wait_s_max)
    stop_faults.set()
    await faults
    run_s = time.monotonic() - run_began
    stop_clients.set()
    api.give_up_at_s = time.monotonic() + ops_settle_s_max
    await asyncio.gather(*clients)
    revived = cluster.revive()
    for n in range(api_count):
        await cluster.wait_api(n)
    drained = await _drain(router, tenants)
    stop_reads.set()
    await reader
    quiesce_s = time.monotonic() - run_began - run_s
    api.give_up_at_s = time.monotonic() + ops_settle_s_max
    replayed = await _replay_all(workload, tenants, options.seed)
    anomalies = list(history.read_anomalies)
    anomalies += [f"the API failed {n} time(s) with {what}"
                  for what, n in history.internal_errors().most_common()]
    if revived:
        anomalies.append(f"processes found dead after the faults: {revived}")
    if not drained:
        anomalies.append(f"payouts or settlement messages still moving after {drain_s_max} s")
    anomalies += await _check(router, history, tenants, funded)
    report = _report(history, tenants, run_s, quiesce_s, replayed,
                     {r: await checker.holders(router, r) for r in (home, paying)}, anomalies)
    report["payouts"] = await checker.payout_statuses(router, tenants)
    if options.self_test:
        report["self_test"] = await run_self_test(router, history, tenants, funded)
    return report


async def _reader(router: Router, funded: dict[tuple[str, str], int], history: History,
                  api: Api, stop: asyncio.Event) -> None:
    """Reads every region's totals once a second while the run lasts."""
    while not stop.is_set():
        for region in (home, paying):
            try:
                found = await asyncio.wait_for(
                    checker.totals_anomalies(router, region, funded), read_timeout_s)
            except Exception:  # noqa: BLE001 - the region's database is down or restarting
                history.reads["db_failed"] += 1
                continue
            history.reads["db"] += 1
            history.read_anomalies += [f"read at {api.now_s():.1f} s: {a}" for a in found]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), read_interval_s)


async def _drain(router: Router, tenants: list[Tenant]) -> bool:
    """Until every payout is final on both sides (and every return due applied), the outboxes
    published and the settlement streams quiet."""
    ids = [t.tenant_id for t in tenants]
    deadline = time.monotonic() + drain_s_max
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            open_ = 0
            for region in (home, paying):
                [row] = await checker.rows(router, region, """
                    SELECT (SELECT count(*) FROM payouts WHERE region = :r
                              AND tenant_id = ANY(:t) AND status <> ALL(:final))
                         + (SELECT count(*) FROM xr_payouts WHERE region = :r
                              AND status <> ALL(:final))
                         + (SELECT count(*) FROM outbox WHERE region = :r
                              AND published_at IS NULL)
                         + (SELECT count(*) FROM payouts WHERE region = :r
                              AND tenant_id = ANY(:t) AND return_due_at IS NOT NULL)
                         + (SELECT count(*) FROM xr_payouts WHERE region = :r
                              AND return_due_at IS NOT NULL)
                         + (SELECT count(*) FROM payout_batches WHERE region = :r
                              AND tenant_id = ANY(:t) AND status <> 'COMPLETED') AS n""",
                                           r=region, t=ids, final=sorted(checker.final_statuses))
                open_ += int(row.n)
            if open_ == 0 and await streams_quiet(router, home, paying):
                return True
        await asyncio.sleep(poll_s)
    return False


async def _replay_all(workload: Workload, tenants: list[Tenant], seed: int) -> int:
    """Every acknowledged operation sent again (at most ``replay_final_max``)."""
    by_id = {t.tenant_id: t for t in tenants}
    rng = random.Random(f"{seed}/replay")
    acked = [op for op in workload.history.ops if op.acknowledged]
    chosen = rng.sample(acked, min(len(acked), replay_final_max))
    for op in chosen:
        await workload.replay(op, by_id[op.tenant_id], rng)
    return len(chosen)


async def _check(router: Router, history: History, tenants: list[Tenant],
                 funded: dict[tuple[str, str], int]) -> list[str]:
    found = checker.history_anomalies(history)
    for region in (home, paying):
        found += await checker.totals_anomalies(router, region, funded)
        found += await checker.verify_anomalies(router, region)
    found += await checker.settlement_anomalies(router, home, paying)
    return found + await checker.ledger_anomalies(router, history, tenants)


def _report(history: History, tenants: list[Tenant], run_s: float, quiesce_s: float,
            replayed: int, holders: dict[str, Any], anomalies: list[str]) -> dict[str, Any]:
    acked = Counter(op.kind for op in history.ops if op.acknowledged)
    faults = Counter(f.kind for f in history.faults)
    return {
        "run_s": round(run_s, 1), "quiesce_s": round(quiesce_s, 1),
        "operations": history.outcomes(), "acknowledged": {k: acked[k] for k in sorted(acked)},
        "attempts": sum(len(s.answer.attempts) for op in history.ops for s in op.steps),
        "retries": dict(history.retries().most_common()),
        "internal_errors": dict(history.internal_errors().most_common()),
        "replays": sum(len(s.replays) for op in history.ops for s in op.steps),
        "replayed_at_end": replayed,
        "reads": dict(history.reads),
        "faults": {k: faults[k] for k in kinds},
        "fault_log": [asdict(f) for f in history.faults],
        "holders": holders,
        "anomalies": anomalies,
    }

