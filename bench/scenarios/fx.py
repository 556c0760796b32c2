"""FX: ``createFxQuote`` then ``executeFxQuote`` (one operation = both requests)."""

from __future__ import annotations

from typing import Any

from bench.harness import Env, run_load
from bench.scenarios.graphql import EXECUTE, QUOTE, step
from bench.stats import summarize

name = "fx_quote_execute"


def scripts(env: Env, clients: int) -> list[list[dict[str, Any]]]:
    eur, usd = env.tenant.accounts["EUR"], env.tenant.accounts["USD"]
    return [[
        step(QUOTE, {"i": {"sellCurrency": "EUR", "buyCurrency": "USD", "sellAmount": "1.00",
                           "idempotencyKey": "q-{n}"}}, '"FxQuote"',
             {"quote": r'"id":\s*"(fxq_[^"]+)"'}),
        step(EXECUTE, {"i": {"quoteId": "{quote}", "sellAccountId": eur[i],
                             "buyAccountId": usd[i], "idempotencyKey": "x-{n}"}},
             '"Conversion"'),
    ] for i in range(clients)]


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for clients in plan["fx_clients"]:
        raw = run_load(env, scripts(env, clients), clients, plan["duration_s"], plan["warmup_s"])
        out.append(summarize(name, f"{clients} clients", clients, raw, rss_mb=env.rss_peak_mb))
    return out
