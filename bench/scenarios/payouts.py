"""Mass payouts: ``createPayoutBatch`` acceptance time, then one worker process draining them.

Part one sends ``batches`` batches of ``batch_items`` items (10 x 10,000 in the full plan)
one at a time over HTTP and times each answer (validated, held, recorded). Part two starts
``corridor relay`` and one ``corridor worker --threads 1`` on RabbitMQ (``AMQP_URL``, default
the local one) and times until every payout is final; the sandbox rails answer at once, so
this measures Corridor, not a bank.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.harness import Env, env_vars
from bench.stats import summarize
from regions.router import Router

name = "payouts"
drain_s_max = 900.0
request_timeout_s = 120.0
BENEFICIARY = ("mutation($i: CreateBeneficiaryInput!) { createBeneficiary(input: $i) "
               "{ ... on Beneficiary { id } } }")
BATCH = ("mutation($i: CreatePayoutBatchInput!) { createPayoutBatch(input: $i) "
         "{ __typename ... on PayoutBatch { id pending } ... on Error { code message } } }")


def _gql(env: Env, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(f"http://127.0.0.1:{env.port}/graphql",
                      json={"query": query, "variables": variables},
                      headers={"Authorization": f"Bearer {env.tenant.key}"},
                      timeout=request_timeout_s)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def _accept(env: Env, batches: int, items: int) -> tuple[list[float], int]:
    ben = _gql(env, BENEFICIARY, {"i": {
        "name": "Bench Payee", "country": "DE", "currency": "EUR",
        "iban": "DE89370400440532013000", "idempotencyKey": f"bench-ben-{time.time_ns()}"}})
    ben_id = ben["data"]["createBeneficiary"]["id"]
    account = env.tenant.accounts["EUR"][0]
    latencies, errors = [], 0
    for b in range(batches):
        rows = [{"beneficiaryId": ben_id, "amount": f"{1 + i % 90}.{i % 100:02d}",
                 "currency": "EUR", "externalId": f"{b}-{i}"} for i in range(items)]
        started = time.perf_counter()
        got = _gql(env, BATCH, {"i": {"accountId": account, "items": rows,
                                      "idempotencyKey": f"bench-batch-{time.time_ns()}"}})
        latencies.append((time.perf_counter() - started) * 1000)
        result = got.get("data", {}).get("createPayoutBatch") or {}
        errors += result.get("pending") != items
    return latencies, errors


async def _open_payouts(env: Env) -> int:
    router = Router(env.topo, env.urls, pool_size=1)
    try:
        async def body(conn: AsyncConnection) -> int:
            return int((await conn.execute(text(
                "SELECT count(*) FROM payouts WHERE status IN ('PENDING', 'PROCESSING')"))
            ).scalar_one())

        return await router.read(env.tenant.region, body)
    finally:
        await router.dispose()


def _drain(env: Env, total: int) -> tuple[float, int]:
    """Seconds until no payout is open, with a relay and one single-threaded worker."""
    amqp = os.environ.get("CORRIDOR_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    penv = {**env_vars(env.topo, env.urls), "AMQP_URL": amqp}
    procs = [subprocess.Popen([sys.executable, "-m", "api.cli", *args], env=penv,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for args in (["relay"], ["worker", "--threads", "1"])]
    started = time.perf_counter()
    try:
        left = total
        while left and time.perf_counter() - started < drain_s_max:
            time.sleep(0.5)
            left = asyncio.run(_open_payouts(env))
        return time.perf_counter() - started, left
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def run(env: Env, plan: dict[str, Any]) -> list[dict[str, Any]]:
    batches, items = plan["payout_batches"], plan["payout_batch_items"]
    latencies, errors = _accept(env, batches, items)
    accepted = summarize(name, f"accept {items}-item batch", 1, {
        "latencies_ms": latencies, "count": len(latencies), "errors": errors,
        "duration_s": sum(latencies) / 1000}, items_per_op=items, rss_mb=env.rss_peak_mb)
    seconds, left = _drain(env, batches * items)
    drained = summarize(name, f"process {batches * items} by 1 worker", 1, {
        "latencies_ms": [seconds * 1000], "count": 1, "errors": left,
        "duration_s": seconds}, items_per_op=batches * items, rss_mb=env.rss_peak_mb)
    return [accepted, drained]
