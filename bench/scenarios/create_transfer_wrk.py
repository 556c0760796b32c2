"""``createTransfer`` driven by wrk (``bench.wrk``): one request per connection at a time, every
request its own idempotency key; with distinct accounts per connection, and with every
connection on the same two accounts (hot accounts). Then, for each count in
``wrk_api_workers``, the distinct-accounts runs again against a server of that many worker
processes (``corridor serve --workers N``, one per core), on fresh databases."""

from __future__ import annotations

from typing import Any

from bench import harness, wrk
from bench.harness import Env

name = "create_transfer_wrk"


def _row(label: str, clients: int, raw: dict[str, Any], api_cpu_s: float,
         db_cpu_s: float, env: Env) -> dict[str, Any]:
    requests = max(raw["requests"], 1)
    return {"scenario": name, "label": label, "clients": clients, "ops": raw["requests"],
            "errors": raw["errors"], "error_samples": raw["error_samples"],
            "ops_per_s": raw["requests"] / raw["duration_s"],
            "items_per_s": raw["requests"] / raw["duration_s"],
            **{k: raw[k] for k in ("latency_ms_p50", "latency_ms_p95", "latency_ms_p99")},
            "api_cpu_ms_per_op": 1000 * api_cpu_s / requests,
            "db_cpu_ms_per_op": 1000 * db_cpu_s / requests,
            "api_rss_mb_peak": env.rss_peak_mb}


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = _runs(env, plan, hot=True, suffix="")
    for workers in plan.get("wrk_api_workers", []):
        with harness.environment(api_workers=workers) as more:
            out += _runs(more, plan, hot=False, suffix=f", {workers} API processes")
    return out


def _runs(env: Env, plan: dict[str, Any], *, hot: bool, suffix: str) -> list[dict[str, Any]]:
    eur = env.tenant.accounts["EUR"]
    out = []
    for clients in plan["wrk_clients"]:
        runs = [("distinct accounts", [(eur[2 * i], eur[2 * i + 1]) for i in range(clients)])]
        if hot:
            runs.append(("hot accounts", [(eur[0], eur[1]), (eur[1], eur[0])]))
        for label, pairs in runs:
            api0, db0 = env.api_cpu_s(), env.db_cpu()
            raw = wrk.run(env.port, env.tenant.key, pairs, clients, plan["duration_s"])
            out.append(_row(f"{clients} clients, {label}{suffix}", clients, raw,
                            env.api_cpu_s() - api0, env.db_cpu_since(db0), env))
    return out
