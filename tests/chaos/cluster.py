"""The bank test's cluster: two regions on two PostgreSQL servers and Corridor's processes.

eu-central's cluster and the control plane are a fresh set of databases on the main test
server (a unique prefix, dropped at the end); ap-southeast's cluster is a PostgreSQL server of
the test's own, which the fault injector stops and starts. RabbitMQ is the test's broker, on
vhosts of the run's own: one per region for settlement messages and one for the dramatiq jobs.

Processes: ``api_count`` ``corridor serve`` API processes, one ``corridor worker`` (dramatiq:
payouts, events, FX refresh, maintenance), ``corridor relay`` (outbox to RabbitMQ),
``corridor scheduler`` (FX refresh, netting, returns) and ``corridor settlement run --region R``
for each region.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from regions import migrate
from regions.databases import drop_databases, ensure_databases, local_urls, sqlalchemy_url
from regions.router import DatabaseUrls
from regions.topology import Topology, load
from tests import rabbit
from tests.cluster_helpers import CorridorProcess, SecondServer, two_region_topology
from tests.conftest import corridor_env
from tests.serve import free_port

home, paying = "eu-central", "ap-southeast"
url_envs = {"control": "CORRIDOR_CHAOS_CONTROL_URL", "global": "CORRIDOR_CHAOS_GLOBAL_URL",
            "apac": "CORRIDOR_CHAOS_APAC_URL"}
api_count = 2
worker_threads = 4
ready_s_max = 90.0
ready_poll_s = 0.2
health_timeout_s = 2.0
settlement_window_s = 60
"""The shortest netting window the settings allow, so netting runs during a long run."""
return_after_s = 15
"""A sandbox payout ending in .93 comes back this long after completing; the scheduler applies
due returns every minute."""
workers = ("worker", "relay", "scheduler", f"settlement-{home}", f"settlement-{paying}")


class Cluster:
    def __init__(self, workdir: Path, main_url: str) -> None:
        self.tag = f"chaos{uuid.uuid4().hex[:8]}"
        self.prefix = f"corridor_{self.tag}"
        self.dir = workdir
        self.main_url = main_url
        # The second server's Unix socket lives in its data directory: keep the path short.
        self.pgdata = Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
        os.chmod(self.pgdata, 0o777)  # noqa: S103 - the test's own throwaway directory
        self.second = SecondServer(self.pgdata)
        self.topo: Topology | None = None
        self.urls: DatabaseUrls | None = None
        self.jobs_vhost = f"corridor-{self.tag}-jobs"
        self.processes: dict[str, CorridorProcess] = {}
        self.api_bases: list[str] = []

    def create(self) -> None:
        """Databases (migrated), vhosts, and the processes (not started yet)."""
        regions_file = two_region_topology(self.dir, self.tag, home, paying, url_envs)
        topo = self.topo = load(regions_file)
        second_url = self.second.start()
        ensure_databases(self.main_url, topo, self.prefix, fresh=True)
        urls, by_target = local_urls(self.main_url, topo, self.prefix)
        by_target["cluster:apac"] = sqlalchemy_url(second_url)
        self.urls = DatabaseUrls(urls.control, {**urls.clusters,
                                                "apac": sqlalchemy_url(second_url)})
        migrate.apply(topo, by_target)
        for r in topo.regions:
            rabbit.ensure_vhost(r.amqp_vhost)
        jobs_url = rabbit.ensure_vhost(self.jobs_vhost)
        env = corridor_env(topo, self.urls, CORRIDOR_REGIONS_FILE=str(regions_file),
                           AMQP_URL=jobs_url, CORRIDOR_RATE_LIMIT_PER_S="100000",
                           CORRIDOR_RATE_LIMIT_BURST="1000000", CORRIDOR_FX_PROVIDER="fixed",
                           CORRIDOR_SETTLEMENT_WINDOW_S=str(settlement_window_s),
                           CORRIDOR_SANDBOX_RETURN_AFTER_S=str(return_after_s),
                           PYTHONUNBUFFERED="1")
        for n in range(api_count):
            port = free_port()
            self.api_bases.append(f"http://127.0.0.1:{port}")
            self._add(f"api-{n}", ["serve", "--port", str(port), "--no-access-log"], env)
        self._add("worker", ["worker", "--threads", str(worker_threads)], env)
        self._add("relay", ["relay"], env)
        self._add("scheduler", ["scheduler"], env)
        for region in (home, paying):
            self._add(f"settlement-{region}", ["settlement", "run", "--region", region], env)

    def _add(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.processes[name] = CorridorProcess(name, args, env, self.dir)

    async def start_all(self) -> None:
        for p in self.processes.values():
            p.start()
        for n in range(api_count):
            await self.wait_api(n)

    async def wait_api(self, n: int) -> None:
        """Until API process ``n`` answers its health check (bounded)."""
        proc, base = self.processes[f"api-{n}"], self.api_bases[n]
        deadline = time.monotonic() + ready_s_max
        async with httpx.AsyncClient() as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base}/healthz", timeout=health_timeout_s)
                            ).status_code == 200:
                        return
                if not proc.alive():
                    raise RuntimeError(f"api-{n} exited:\n{proc.output()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"api-{n} did not answer within {ready_s_max} s:\n"
                                       f"{proc.output()}")
                await asyncio.sleep(ready_poll_s)

    def revive(self) -> list[str]:
        """Start every process that is not running (a fault may have left one down)."""
        dead = [name for name, p in self.processes.items() if not p.alive()]
        for name in dead:
            self.processes[name].start()
        return dead

    def terminate_backends(self) -> int:
        """``pg_terminate_backend`` of every connection the cluster's processes hold, on both
        servers; how many were terminated. Other databases on the main server are left alone."""
        killed = 0
        with psycopg.connect(self.main_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname LIKE %s AND pid <> pg_backend_pid()",
                (f"{self.prefix}%",)).fetchone()
            killed += int(row[0]) if row else 0
        assert self.second.url is not None
        with psycopg.connect(self.second.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
            killed += int(row[0]) if row else 0
        return killed

    def logs(self, tail_chars: int = 3_000) -> str:
        return "\n".join(p.output(tail_chars) for p in self.processes.values())

    def destroy(self) -> None:
        """Stop every process and the second server; drop the databases and the vhosts."""
        for p in self.processes.values():
            p.stop()
        with contextlib.suppress(Exception):
            self.second.stop()
        if self.topo is not None:
            drop_databases(self.main_url, self.topo, self.prefix)
            for r in self.topo.regions:
                rabbit.delete_vhost(r.amqp_vhost)
        rabbit.delete_vhost(self.jobs_vhost)
        shutil.rmtree(self.pgdata, ignore_errors=True)
