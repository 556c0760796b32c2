"""The database's own limit: the same double-entry transfer as one SQL statement via psycopg.

Each connection moves money between its own pair of accounts (as the HTTP scenario's clients
do), in autocommit: both balance updates, the transfer and its two entries in one round trip.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.harness import Env
from bench.stats import summarize
from payments.ids import new_id

name = "baseline_sql"

_transfer = """
WITH d AS (
    UPDATE accounts SET debits_posted = debits_posted + %(amt)s, entry_seq = entry_seq + 1
    WHERE region = %(r)s AND id = %(a)s
      AND credits_posted - debits_posted - debits_pending >= %(amt)s
    RETURNING entry_seq),
c AS (
    UPDATE accounts SET credits_posted = credits_posted + %(amt)s, entry_seq = entry_seq + 1
    WHERE region = %(r)s AND id = %(b)s AND EXISTS (SELECT 1 FROM d)
    RETURNING entry_seq),
t AS (
    INSERT INTO transfers (region, id, journal_id, tenant_id, debit_account_id,
                           credit_account_id, amount_minor, currency, status)
    SELECT %(r)s, %(t)s, %(j)s, NULL, %(a)s, %(b)s, %(amt)s, 'EUR', 'POSTED' FROM c)
INSERT INTO entries (region, account_id, seq, transfer_id, side, phase, amount_minor, currency)
SELECT %(r)s, %(a)s, d.entry_seq, %(t)s, 'DEBIT', 'POSTED', %(amt)s, 'EUR' FROM d, c
UNION ALL
SELECT %(r)s, %(b)s, c.entry_seq, %(t)s, 'CREDIT', 'POSTED', %(amt)s, 'EUR' FROM c
"""


async def _client(url: str, region: str, a: str, b: str, stop_at: float, warm_until: float,
                  stats: dict[str, Any]) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.perf_counter() < stop_at:
            params = {"r": region, "a": a, "b": b, "amt": 1, "t": new_id("trf", region),
                      "j": new_id("jnl", region)}
            sent = time.perf_counter()
            await conn.execute(_transfer, params, prepare=True)
            done = time.perf_counter()
            stats["all_ops"] += 1
            if done >= warm_until:
                stats["count"] += 1
                stats["latencies_ms"].append((done - sent) * 1000)


async def _load(env: Env, clients: int, duration_s: float, warmup_s: float) -> dict[str, Any]:
    url = make_url(env.urls.clusters["global"]).set(drivername="postgresql").render_as_string(
        hide_password=False)
    accounts = env.tenant.accounts["EUR"]
    stats: dict[str, Any] = {"count": 0, "errors": 0, "all_ops": 0, "latencies_ms": []}
    start = time.perf_counter()
    await asyncio.gather(*[
        _client(url, env.tenant.region, accounts[2 * i], accounts[2 * i + 1],
                start + warmup_s + duration_s, start + warmup_s, stats)
        for i in range(clients)])
    stats["duration_s"] = duration_s
    return stats


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for clients in plan["clients"]:
        db0 = env.db_cpu()
        raw = asyncio.run(_load(env, clients, plan["duration_s"], plan["warmup_s"]))
        raw["db_cpu_s"] = env.db_cpu_since(db0)
        out.append(summarize(name, f"{clients} connections", clients, raw))
    return out
