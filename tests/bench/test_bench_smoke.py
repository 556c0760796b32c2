"""The benchmark harness keeps working: a smoke run with tiny sizes produces every figure.

Nothing here asserts on speed; benchmarks report, they do not pass or fail on wall-clock time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.__main__ import scenarios
from tests import rabbit

run_s_max = 300


def test_smoke_run_writes_results_and_plots(tmp_path: Path, pg_server: str) -> None:
    env = {**os.environ, "CORRIDOR_BENCH_DATABASE_URL": pg_server,
           "CORRIDOR_BENCH_AMQP_URL": rabbit.require_rabbitmq()}
    done = subprocess.run([sys.executable, "-m", "bench", "all", "--smoke", "--out",
                           str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=run_s_max)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = list(tmp_path.glob("*-smoke.json"))
    doc = json.loads(result.read_text())
    assert {r["scenario"] for r in doc["results"]} == set(scenarios)
    for row in doc["results"]:
        assert row["ops"] > 0, row
        assert row["errors"] == 0, row
        assert row["latency_ms_p50"] <= row["latency_ms_p95"] <= row["latency_ms_p99"], row
    assert doc["machine"]["cpus"] >= 1
    assert doc["machine"]["api_rss_mb_peak"] > 0
    assert len(list(tmp_path.glob("*-smoke-*.png"))) == 2
    table = (tmp_path / "latest-smoke.md").read_text()
    assert "| create_transfer |" in table
