"""A payout traced end to end, in a process of its own (OpenTelemetry's providers are global):
in-memory span and metric exporters, the real app over ASGI, the relay, RabbitMQ and a dramatiq
worker; prints the spans and metrics as JSON for ``tests/integration/test_telemetry.py``.

    python -m tests.telemetry_scenario   # with the corridor_env of the test databases
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

spans = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

from litestar.testing import AsyncTestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import from_env, worker_config  # noqa: E402
from payments.principal import Environment, Role  # noqa: E402
from regions import commands, tenants  # noqa: E402
from regions.ledger_store import insert_account  # noqa: E402
from regions.policy_gate import PolicyGate  # noqa: E402
from regions.router import Router  # noqa: E402
from workers.main import broker_publish, queue_depths, start_worker  # noqa: E402
from workers.relay import Relay  # noqa: E402

settle_s_max = 60.0
received: list[dict[str, str]] = []


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        received.append(dict(self.headers))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


async def gql(client: AsyncTestClient[Any], key: str, query: str, name: str,
              variables: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/graphql", headers={"Authorization": f"Bearer {key}"}, json={
        "query": query, "operationName": name, "variables": variables})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert "errors" not in body, body
    return body["data"]


async def main() -> None:
    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=2)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def control(conn: Any) -> tuple[str, str, str]:
        t = await tenants.create_tenant(conn, settings.topology, "Traced Ltd", "EU", None,
                                        Environment.TEST, gate=PolicyGate())
        k = await tenants.create_api_key(conn, settings.pepper, t.id, Role.PARTNER_ADMIN)
        return t.id, t.home_region, k.key

    tenant_id, region, key = await router.run_control(control)

    async def accounts(conn: Any) -> tuple[str, str]:
        funded = await insert_account(conn, region, tenant_id, "EUR", "funded")
        await commands.fund_account_txn(conn, region, tenant_id, funded, 1_000_00, "EUR", "t")
        return funded, await insert_account(conn, region, tenant_id, "EUR", "spare")

    funded, spare = await router.run(region, accounts)
    worker = start_worker(worker_config(settings), threads=2)
    relay = Relay(router, [region], broker_publish(worker.broker),
                  queue_depths=queue_depths(worker.broker))
    try:
        async with AsyncTestClient(app=create_app(settings, router=router)) as client:
            await gql(client, key, """mutation Hook($i: RegisterWebhookEndpointInput!) {
                registerWebhookEndpoint(input: $i) { __typename } }""", "Hook", {"i": {
                "url": f"http://127.0.0.1:{server.server_port}/hook",
                "events": ["payout.completed"], "idempotencyKey": "hook"}})
            ben = await gql(client, key, """mutation Ben($i: CreateBeneficiaryInput!) {
                createBeneficiary(input: $i) { ... on Beneficiary { id } } }""", "Ben", {"i": {
                "name": "Trace Payee", "country": "DE", "currency": "EUR",
                "iban": "DE89370400440532013000", "idempotencyKey": "ben"}})
            payout = await gql(client, key, """mutation PayOut($i: CreatePayoutInput!) {
                createPayout(input: $i) { ... on Payout { id } } }""", "PayOut", {"i": {
                "accountId": funded, "beneficiaryId": ben["createBeneficiary"]["id"],
                "amount": "10.00", "currency": "EUR", "idempotencyKey": "pay"}})
            await gql(client, key, """mutation Move($i: CreateTransferInput!) {
                createTransfer(input: $i) { ... on Transfer { id } } }""", "Move", {"i": {
                "fromAccountId": funded, "toAccountId": spare, "amount": "1.00",
                "currency": "EUR", "idempotencyKey": "move"}})
        payout_id = payout["createPayout"]["id"]
        deadline = time.monotonic() + settle_s_max
        while time.monotonic() < deadline:
            await relay.relay_region(region)
            status = await router.read(region, lambda c: _status(c, payout_id))
            # The receiver records the POST before it answers; the worker ends the POST's
            # span after reading the answer, and the event's span after its commit.
            ended = {sp.name for sp in spans.get_finished_spans()}
            if (status in ("COMPLETED", "FAILED") and received
                    and {"webhook POST", "event payout.completed"} <= ended):
                break
            await asyncio.sleep(0.1)
        await relay.measure_all()
        print(json.dumps({"payout_id": payout_id, "status": status, "received": received,
                          "spans": _spans(), "metrics": _metrics()}))
    finally:
        worker.stop(timeout=10_000)
        server.shutdown()
        await router.dispose()


async def _status(conn: Any, payout_id: str) -> str:
    return str((await conn.execute(text("SELECT status FROM payouts WHERE id = :id"),
                                   {"id": payout_id})).scalar_one())


def _spans() -> list[dict[str, Any]]:
    out = []
    for s in spans.get_finished_spans():
        ctx = s.get_span_context()
        assert ctx is not None
        out.append({"name": s.name, "trace_id": format(ctx.trace_id, "032x"),
                    "span_id": format(ctx.span_id, "016x"),
                    "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                    "attributes": {k: v for k, v in (s.attributes or {}).items()
                                   if isinstance(v, str | int | float | bool)}})
    return out


def _metrics() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for point in m.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = getattr(point, "count", None)
                    found.setdefault(m.name, []).append(
                        {"attributes": dict(point.attributes or {}), "value": value})
    return found


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
