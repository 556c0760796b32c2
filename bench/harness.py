"""The bench environment: a fresh set of databases, seeded tenants, and an API server process.

Everything runs on this machine: PostgreSQL (local on 127.0.0.1:5432 if it answers, else
embedded), the API as its own process (``corridor serve``), and the load from a third process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.ext.asyncio import AsyncConnection

from api.settings import rate_limit_burst_max, rate_limit_per_s_max
from payments.principal import Environment, Role
from regions import commands, fx_store, migrate, tenants
from regions.databases import drop_databases, ensure_databases, local_urls
from regions.ledger_store import insert_account
from regions.local_pg import server_url
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology, load

databases_prefix = "corridor_bench"
pepper = "corridor-bench-pepper-0123456789abcdef"
keyring_file = Path(tempfile.gettempdir()) / f"corridor_bench_keyring_{os.getpid()}.json"
atexit.register(keyring_file.unlink, missing_ok=True)  # shared by nested environments
server_start_s_max = 60
funding_minor = 10**14
rss_sample_s = 0.2
fx_rates = {"USD": "1.0532", "GBP": "0.83215", "JPY": "162.17", "SGD": "1.4155"}


@dataclass
class Tenant:
    key: str
    region: str
    accounts: dict[str, list[str]]


@dataclass
class Env:
    topo: Topology
    server_url: str
    urls: DatabaseUrls
    port: int
    api: psutil.Process
    tenant: Tenant
    rss_peak_mb: float = 0.0
    _stop_sampling: threading.Event = field(default_factory=threading.Event)

    def api_processes(self) -> list[psutil.Process]:
        """The server and, with ``--workers N``, its worker processes."""
        try:
            return [self.api, *self.api.children(recursive=True)]
        except psutil.NoSuchProcess:
            return [self.api]

    def api_cpu_s(self) -> float:
        total = 0.0
        for p in self.api_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def db_cpu(self) -> dict[int, float]:
        """CPU seconds of every PostgreSQL server process on this machine, by pid."""
        out = {}
        for p in psutil.process_iter(["name", "cpu_times"]):
            if p.info["name"] == "postgres" and p.info["cpu_times"] is not None:
                out[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
        return out

    def db_cpu_since(self, before: dict[int, float]) -> float:
        """CPU the PostgreSQL processes used since ``before`` (backends that exited meanwhile
        are not counted, so this is a lower bound)."""
        return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in self.db_cpu().items())

    def rss_mb(self) -> float:
        total = 0
        for p in self.api_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(topo: Topology, urls: DatabaseUrls, accounts_per_currency: int) -> Tenant:
    router = Router(topo, urls, pool_size=4)
    try:
        async def control(conn: AsyncConnection) -> tuple[str, str, str]:
            t = await tenants.create_tenant(conn, topo, "Bench GmbH", "EU", None,
                                            Environment.TEST, gate=PolicyGate())
            k = await tenants.create_api_key(conn, pepper.encode(), t.id, Role.PARTNER_ADMIN)
            return t.id, t.home_region, k.key

        tenant_id, region, key = await router.run_control(control)
        accounts: dict[str, list[str]] = {}
        for cur in ("EUR", "USD"):
            async def open_some(conn: AsyncConnection, cur: str = cur) -> list[str]:
                out = []
                for _ in range(accounts_per_currency):
                    acc = await insert_account(conn, region, tenant_id, cur, "bench")
                    await commands.fund_account_txn(conn, region, tenant_id, acc,
                                                    funding_minor, cur, "bench")
                    out.append(acc)
                return out

            accounts[cur] = await router.run(region, open_some)
        snap = fx_store.Snapshot("EUR", fx_rates, datetime.now(UTC), "bench")
        await router.run_control(lambda c: fx_store.write_snapshot(c, snap, "bench-seed", 10**6))
        return Tenant(key, region, accounts)
    finally:
        await router.dispose()


class _OtlpSink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them: the API pays for making and sending its
    telemetry, as in production, without a collector to run."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def telemetry_vars(sink_port: int | None) -> dict[str, str]:
    """``CORRIDOR_BENCH_TELEMETRY=off`` measures the API without OpenTelemetry (the SDK's own
    switch); by default it exports traces and metrics over OTLP to a local sink."""
    if os.environ.get("CORRIDOR_BENCH_TELEMETRY", "on") == "off" or sink_port is None:
        return {"OTEL_SDK_DISABLED": "true"}
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}


def env_vars(topo: Topology, urls: DatabaseUrls, sink_port: int | None = None
             ) -> dict[str, str]:
    """The API's settings. Every load generator client shares the bench tenant's one key, so
    its rate limit is raised to the settings' maximum: the bench measures throughput, not the
    limiter (whose own cost is a few microseconds a request, measured in its unit tests)."""
    env = {**os.environ, **telemetry_vars(sink_port), "CORRIDOR_ENV": "production",
           "CORRIDOR_API_KEY_PEPPER": pepper,
           "CORRIDOR_KEYRING_FILE": str(keyring_file), topo.control_database_url_env: urls.control,
           "CORRIDOR_RATE_LIMIT_PER_S": str(int(rate_limit_per_s_max)),
           "CORRIDOR_RATE_LIMIT_BURST": str(rate_limit_burst_max)}
    for c in topo.clusters:
        env[c.database_url_env] = urls.clusters[c.name]
    return env


@contextmanager
def environment(accounts_per_currency: int = 128, api_workers: int = 1) -> Iterator[Env]:
    """Fresh databases, the seeded tenant, and ``corridor serve --workers api_workers``. An
    environment may open inside another (a scenario comparing servers): each server count
    has databases of its own."""
    topo = load()
    prefix = databases_prefix if api_workers == 1 else f"{databases_prefix}_w{api_workers}"
    with server_url(os.environ.get("CORRIDOR_BENCH_DATABASE_URL")) as pg:
        ensure_databases(pg, topo, prefix, fresh=True)
        urls, by_target = local_urls(pg, topo, prefix)
        migrate.apply(topo, by_target)
        tenant = asyncio.run(_seed(topo, urls, accounts_per_currency))
        port = _free_port()
        sink = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpSink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--no-access-log",
             "--workers", str(api_workers)],
            env=env_vars(topo, urls, sink.server_port), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            _wait_ready(port, proc)
            env = Env(topo, pg, urls, port, psutil.Process(proc.pid), tenant)
            sampler = threading.Thread(target=_sample_rss, args=(env,), daemon=True)
            sampler.start()
            yield env
            env._stop_sampling.set()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            sink.shutdown()
            drop_databases(pg, topo, prefix)


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + server_start_s_max
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("API server did not become ready")


def _sample_rss(env: Env) -> None:
    while not env._stop_sampling.is_set():
        try:
            env.rss_peak_mb = max(env.rss_peak_mb, env.rss_mb())
        except psutil.Error:
            return
        time.sleep(rss_sample_s)


def run_load(env: Env, scripts: list[list[dict[str, Any]]], clients: int, duration_s: float,
             warmup_s: float = 1.0, rate_per_s: float | None = None) -> dict[str, Any]:
    """Run the load generator process; returns its stats plus API and DB CPU used."""
    cfg = {"host": "127.0.0.1", "port": env.port, "path": "/graphql", "clients": clients,
           "duration_s": duration_s, "warmup_s": warmup_s, "rate_per_s": rate_per_s,
           "scripts": scripts,
           "headers": {"Authorization": f"Bearer {env.tenant.key}",
                       "Content-Type": "application/json"}}
    api0, db0 = env.api_cpu_s(), env.db_cpu()
    out = subprocess.run([sys.executable, "-m", "bench.loadgen"], input=json.dumps(cfg),
                         capture_output=True, text=True, check=True,
                         timeout=duration_s + warmup_s + 120)
    stats: dict[str, Any] = json.loads(out.stdout)
    stats["api_cpu_s"] = env.api_cpu_s() - api0
    stats["db_cpu_s"] = env.db_cpu_since(db0)
    return stats
