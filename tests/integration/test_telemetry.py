"""Traces and metrics for real: a payout's trace runs from the API request through the outbox,
the relay, RabbitMQ and the worker to the rail and the webhook, as one trace; metrics are
recorded for a transfer. The scenario runs in a process of its own (``tests.telemetry_scenario``)
with in-memory exporters, because OpenTelemetry's providers are process-global."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests import rabbit
from tests.conftest import corridor_env

queues = ["events", "events.DQ", "events.XQ"]


@pytest.fixture(scope="module")
async def scenario(router: Router, topo: Topology, db_urls: DatabaseUrls) -> dict[str, Any]:
    amqp_url = rabbit.require_rabbitmq()
    for r in topo.regions:
        async def body(conn: AsyncConnection, region: str = r.code) -> None:
            await conn.execute(text("UPDATE outbox SET published_at = now() "
                                    "WHERE region = :r AND published_at IS NULL"), {"r": region})

        await router.run(r.code, body)
    rabbit.purge(queues, amqp_url)
    try:
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "tests.telemetry_scenario"],
            env=corridor_env(topo, db_urls, AMQP_URL=amqp_url), capture_output=True,
            text=True, timeout=180)
    finally:
        rabbit.purge(queues, amqp_url)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_one_trace_runs_from_the_request_to_the_worker_and_the_webhook(
        scenario: dict[str, Any]) -> None:
    assert scenario["status"] == "COMPLETED", scenario["status"]
    spans = scenario["spans"]
    [request] = _named(spans, "graphql.mutation PayOut")
    trace_id = request["trace_id"]
    assert request["attributes"]["graphql.operation.type"] == "mutation"
    traced = [s for s in spans if s["trace_id"] == trace_id]
    names = {s["name"] for s in traced}
    assert {"event payout.created", "event payout.processing", "event payout.completed",
            "webhook POST"} <= names, sorted(names)
    ids = {s["span_id"]: s for s in traced}
    [created] = _named(traced, "event payout.created")
    assert created["parent_id"] == request["span_id"]  # the worker continues the request
    [completed] = _named(traced, "event payout.completed")
    assert ids[completed["parent_id"]]["name"] == "event payout.created"  # written by it
    sql = [s for s in traced if s["attributes"].get("db.system") == "postgresql"]
    assert any(s["parent_id"] == request["span_id"] for s in sql)  # the API's statements
    assert any(s["parent_id"] == created["span_id"] for s in sql)  # the worker's
    assert all(len(s["attributes"]["db.statement"]) <= 300 for s in sql)
    [hook] = _named(traced, "webhook POST")
    assert hook["attributes"]["http.response.status_code"] == 200
    [headers] = scenario["received"]
    assert {k.lower(): v for k, v in headers.items()}["traceparent"].split("-")[1] == trace_id
    assert not [s for s in spans if s["name"].startswith("graphql.")
                and s["name"] != "graphql.mutation PayOut" and s["trace_id"] == trace_id]


def test_each_graphql_operation_is_one_span_not_one_per_field(
        scenario: dict[str, Any]) -> None:
    graphql = [s["name"] for s in scenario["spans"] if s["name"].startswith("graphql")]
    assert sorted(graphql) == ["graphql.mutation Ben", "graphql.mutation Hook",
                               "graphql.mutation Move", "graphql.mutation PayOut"]


def test_metrics_are_recorded_for_a_transfer_and_the_pipeline(
        scenario: dict[str, Any]) -> None:
    found = scenario["metrics"]
    posted = found["corridor.transfers.posted"]
    assert sum(p["value"] for p in posted if p["attributes"] == {"region": "eu-central"}) == 1
    moves = [p for p in found["corridor.graphql.duration"]
             if p["attributes"] == {"operation": "Move", "type": "mutation"}]
    assert [p["value"] for p in moves] == [1]  # one request measured
    topics = {p["attributes"]["topic"] for p in found["corridor.events.published"]}
    assert {"transfer.created", "payout.created", "payout.completed"} <= topics
    [backlog] = found["corridor.outbox.backlog"]
    assert backlog["attributes"] == {"region": "eu-central"}
    assert backlog["value"] >= 0
    assert "corridor.outbox.lag" in found
    assert {p["attributes"]["queue"] for p in found["corridor.queue.depth"]} >= {"events"}
