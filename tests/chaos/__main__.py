"""``python -m tests.chaos``: the bank test from the command line (see ``docs/reliability.md``).

    python -m tests.chaos [--duration S] [--clients N] [--seed N] [--tenants-per-region N]
                          [--returns] [--self-test] [--report FILE] [--workdir DIR]

Prints a summary (operations by kind and outcome, faults by kind, retries, anomalies) and
exits 1 when the checker found an anomaly. Needs PostgreSQL (``CORRIDOR_TEST_DATABASE_URL`` or
127.0.0.1:5432) and RabbitMQ with ``rabbitmqctl`` on this machine, as the integration tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

from tests.chaos.run import Options, run
from tests.conftest import test_keyring_file

duration_s_max = 86_400.0
clients_max = 64
tenants_per_region_max = 8


def _bounded(kind: type, low: float, high: float) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.chaos",
                                description="Corridor's bank test under faults")
    p.add_argument("--duration", type=_bounded(float, 1, duration_s_max), default=60.0,
                   help="seconds of clients under faults (at least one cycle of every fault)")
    p.add_argument("--clients", type=_bounded(int, 1, clients_max), default=8)
    p.add_argument("--seed", type=int, default=1, help="the workload's and the faults' seed")
    p.add_argument("--tenants-per-region", type=_bounded(int, 1, tenants_per_region_max),
                   default=1)
    p.add_argument("--returns", action="store_true",
                   help="some payouts (ending in .93) are returned by the bank after completing")
    p.add_argument("--self-test", action="store_true",
                   help="then break the ledger on purpose and check the checker reports it")
    p.add_argument("--report", type=Path, help="write the full report here as JSON")
    p.add_argument("--workdir", type=Path, help="keep the processes' logs here")
    return p


def summary(report: dict[str, Any]) -> str:
    lines = [f"bank test: seed {report.get('seed')}, {report.get('clients')} clients, "
             f"{report.get('tenants')} tenants; setup {report.get('setup_s')} s, run "
             f"{report.get('run_s')} s, quiesce {report.get('quiesce_s')} s"]
    for kind, outcomes in report.get("operations", {}).items():
        shown = ", ".join(f"{k} {v}" for k, v in outcomes.items())
        lines.append(f"  operations {kind:<12} {shown}")
    lines.append(f"  acknowledged {report.get('acknowledged')}")
    lines.append(f"  attempts {report.get('attempts')}, retries "
                 f"{sum(report.get('retries', {}).values())} {report.get('retries')}")
    lines.append(f"  payouts {report.get('payouts')}")
    lines.append(f"  internal errors {report.get('internal_errors')}")
    lines.append(f"  replays {report.get('replays')} during the run, "
                 f"{report.get('replayed_at_end')} operations at the end")
    lines.append(f"  reads {report.get('reads')}")
    lines.append(f"  faults {report.get('faults')}")
    if "self_test" in report:
        lines.append(f"  self-test (break: reported) {report['self_test']}")
    anomalies = report.get("anomalies", [])
    lines.append(f"  anomalies {len(anomalies)}")
    lines += [f"    {a}" for a in anomalies[:50]]
    if anomalies:
        lines.append(f"  logs kept in {report.get('logs')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(duration_s=args.duration, clients=args.clients, seed=args.seed,
                      tenants_per_region=args.tenants_per_region, report=args.report,
                      self_test=args.self_test, returns=args.returns,
                      workdir=args.workdir)
    try:
        report = asyncio.run(run(options))
    finally:
        shutil.rmtree(test_keyring_file.parent, ignore_errors=True)
    print(summary(report))
    missed = [k for k, seen in report.get("self_test", {}).items() if not seen]
    return 1 if report["anomalies"] or missed else 0


if __name__ == "__main__":
    sys.exit(main())
