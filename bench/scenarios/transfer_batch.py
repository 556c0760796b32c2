"""``createTransferBatch`` over HTTP with 100 and 1,000 items: transfers per second."""

from __future__ import annotations

from typing import Any

from bench.harness import Env, run_load
from bench.scenarios.graphql import BATCH, step
from bench.stats import summarize

name = "transfer_batch"
clients = 2


def scripts(env: Env, size: int) -> list[list[dict[str, Any]]]:
    eur = env.tenant.accounts["EUR"]
    per_client = len(eur) // clients
    out = []
    for c in range(clients):
        own = eur[c * per_client:(c + 1) * per_client]
        items = [{"fromAccountId": own[k % len(own)], "toAccountId": own[(k + 1) % len(own)],
                  "amount": "0.01", "currency": "EUR"} for k in range(size)]
        out.append([step(BATCH, {"i": {"transfers": items, "atomic": True,
                                       "idempotencyKey": "batch-{n}"}}, '"TransferBatch"')])
    return out


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for size in plan["batch_sizes"]:
        raw = run_load(env, scripts(env, size), clients, plan["duration_s"], plan["warmup_s"])
        out.append(summarize(name, f"{size} items x {clients} clients", clients, raw,
                             items_per_op=size, rss_mb=env.rss_peak_mb))
    return out
