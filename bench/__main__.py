"""``python -m bench all|<scenario>... [--smoke]``: run scenarios, write figures and plots."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import psycopg

from bench import harness, report
from bench.scenarios import (
    balance_query,
    baseline,
    create_transfer,
    create_transfer_wrk,
    fx,
    payouts,
    transfer_batch,
)

scenarios: dict[str, ModuleType] = {m.name: m for m in (
    baseline, create_transfer, create_transfer_wrk, transfer_batch, balance_query, fx,
    payouts)}
results_dir = Path(__file__).resolve().parent / "results"

full_plan = {"clients": [1, 4, 16, 64], "wrk_clients": [16, 64], "wrk_api_workers": [2],
             "fx_clients": [1, 4, 16],
             "batch_sizes": [100, 1000],
             "duration_s": 10.0, "paced_duration_s": 30.0, "warmup_s": 2.0,
             "payout_batches": 10, "payout_batch_items": 10_000}
smoke_plan = {"clients": [1, 4], "wrk_clients": [2], "wrk_api_workers": [2],
              "fx_clients": [1], "batch_sizes": [10],
              "duration_s": 1.0, "paced_duration_s": 1.0, "warmup_s": 0.2,
              "payout_batches": 2, "payout_batch_items": 50}


def machine(env: harness.Env) -> dict[str, Any]:
    with psycopg.connect(env.server_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "postgresql": pg[0] if pg else "?",
            "system": platform.platform()}


def with_baseline_ratio(rows: list[dict[str, Any]]) -> None:
    base = {r["clients"]: r["ops_per_s"] for r in rows if r["scenario"] == baseline.name}
    for r in rows:
        b = base.get(r["clients"])
        r["ratio_to_baseline"] = r["items_per_s"] / b if b else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("which", nargs="+", help=f"all, or some of {sorted(scenarios)}")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to keep the harness working")
    p.add_argument("--out", type=Path, default=results_dir)
    args = p.parse_args(argv)
    chosen = list(scenarios) if args.which == ["all"] else args.which
    unknown = [w for w in chosen if w not in scenarios]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {sorted(scenarios)}")
    plan = smoke_plan if args.smoke else full_plan
    rows: list[dict[str, Any]] = []
    with harness.environment() as env:
        info = machine(env)
        for key in chosen:
            print(f"running {key} ...", file=sys.stderr, flush=True)
            rows += scenarios[key].run(env, plan)
        info["api_rss_mb_peak"] = env.rss_peak_mb
    with_baseline_ratio(rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    suffix = "-smoke" if args.smoke else ""
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"when": stamp, "smoke": args.smoke, "plan": plan, "machine": info, "results": rows}
    path = args.out / f"{stamp}{suffix}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    report.plots(doc, args.out, f"{stamp}{suffix}")
    table = report.markdown(doc)
    (args.out / f"latest{suffix}.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"wrote {path}", file=sys.stderr)
    failed = [r for r in rows if r["errors"] or not r["ops"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
