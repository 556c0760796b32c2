"""The telemetry overhead bench keeps working: a tiny run prints a figure for every mode.

Nothing here asserts on speed."""

from __future__ import annotations

import subprocess
import sys


def test_tiny_run_reports_every_mode() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.telemetry_overhead", "--requests", "200"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    modes = [row.split("|")[1].strip() for row in rows[2:]]
    assert modes == ["off", "sampled", "all"]
    for row in rows[2:]:
        assert float(row.split("|")[2]) > 0
