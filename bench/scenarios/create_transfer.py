"""``createTransfer`` over HTTP: each client moves money between its own pair of accounts."""

from __future__ import annotations

from typing import Any

from bench.harness import Env, run_load
from bench.scenarios.graphql import TRANSFER, step
from bench.stats import summarize

name = "create_transfer"


def scripts(env: Env, clients: int) -> list[list[dict[str, Any]]]:
    eur = env.tenant.accounts["EUR"]
    return [[step(TRANSFER, {"i": {"fromAccountId": eur[2 * i], "toAccountId": eur[2 * i + 1],
                                   "amount": "0.01", "currency": "EUR",
                                   "idempotencyKey": "bench-{n}"}}, '"Transfer"')]
            for i in range(clients)]


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for clients in plan["clients"]:
        raw = run_load(env, scripts(env, clients), clients, plan["duration_s"], plan["warmup_s"])
        out.append(summarize(name, f"{clients} clients", clients, raw, rss_mb=env.rss_peak_mb))
    return out
