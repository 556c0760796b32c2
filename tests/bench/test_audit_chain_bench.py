"""The audit chain bench keeps working: a smoke run produces every figure, finds the chain
intact and drops its scratch databases.

Nothing here asserts on speed; benchmarks report, they do not pass or fail on wall-clock time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from bench import audit_chain

run_s_max = 600
"""Above the bench's own caps for a smoke run, which end it first if something hangs."""

per_load = ("rows_per_s", "txns_per_s", "latency_ms_p50", "latency_ms_p99")
per_chaining = ("chained", "seconds", "rows_per_s", "runs", "run_ms_first", "run_ms_last")


def test_smoke_run_reports_every_figure(tmp_path: Path, pg_server: str) -> None:
    env = {**os.environ, "CORRIDOR_BENCH_DATABASE_URL": pg_server}
    with subprocess.Popen([sys.executable, "-m", "bench.audit_chain", "--smoke", "--out",
                           str(tmp_path)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=run_s_max)
        finally:
            proc.kill()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    [result] = list(tmp_path.glob("*-audit-chain-smoke.json"))
    r = json.loads(result.read_text())["results"]
    for load in (r["writers_alone"], r["writers_with_chainer"]):
        assert all(load[k] > 0 for k in per_load), load
        assert load["latency_ms_p50"] <= load["latency_ms_p99"], load
        assert load["lock_waiters_max"] >= 0, load
    chainer = r["chainer"]
    assert all(chainer[k] > 0 for k in ("chained", "rows_per_s", "jobs", "job_ms_p50")), chainer
    assert chainer["lag_rows_at_end"] >= 0, chainer
    for chaining in (r["catch_up_after_alone"], r["backlog"]):
        assert all(chaining[k] > 0 for k in per_chaining), chaining
    # The running chainer may have left nothing behind by the time it stopped.
    after = r["catch_up_after_chainer"]
    assert after["runs"] > 0, after
    assert after["chained"] >= 0, after
    assert r["backlog"]["chained"] == audit_chain.plan_for(smoke=True).backlog_rows
    assert r["backlog"]["idle_run_ms"] > 0
    verify = r["verify"]
    assert verify["intact"], verify["breaks"]
    assert verify["entries"] > 0, verify
    assert verify["rows_per_s"] > 0, verify
    assert "| verify |" in stdout
    with psycopg.connect(pg_server) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"corridor_bench_audit_{proc.pid}_%",)).fetchall()
    assert left == []
