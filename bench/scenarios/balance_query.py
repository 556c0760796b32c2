"""``account { balance }``: latency at a paced 50 requests/s, and throughput flat out."""

from __future__ import annotations

from typing import Any

from bench.harness import Env, run_load
from bench.scenarios.graphql import BALANCE, step
from bench.stats import summarize

name = "balance_query"
paced_rate_per_s = 50
paced_clients = 4
flat_out_clients = 16


def scripts(env: Env, clients: int) -> list[list[dict[str, Any]]]:
    eur = env.tenant.accounts["EUR"]
    return [[step(BALANCE, {"id": eur[i % len(eur)]}, '"available"')] for i in range(clients)]


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    # A longer paced window: at 50/s its p99 rests on ~1,500 samples, not a handful.
    paced = run_load(env, scripts(env, paced_clients), paced_clients, plan["paced_duration_s"],
                     plan["warmup_s"], rate_per_s=paced_rate_per_s)
    flat = run_load(env, scripts(env, flat_out_clients), flat_out_clients, plan["duration_s"],
                    plan["warmup_s"])
    return [summarize(name, f"paced {paced_rate_per_s}/s", paced_clients, paced,
                      rss_mb=env.rss_peak_mb),
            summarize(name, f"{flat_out_clients} clients", flat_out_clients, flat,
                      rss_mb=env.rss_peak_mb)]
