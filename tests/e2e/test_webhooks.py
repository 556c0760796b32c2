"""Webhooks end to end: endpoints registered over GraphQL, events turned into signed
deliveries, a receiver that is down then up, duplicates with one id, rotation, SSRF refusal."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from sqlalchemy import text

from payments.principal import Environment, Role
from payments.webhooks import signature_header, verify
from regions import tenants
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.topology import Topology
from tests.conftest import test_pepper
from tests.e2e.conftest import MakePartner, Partner, gql
from tests.integration.helpers import rows
from tests.payouts_helpers import sandbox_sealer
from workers.webhooks import deliver_due, enqueue_event

REGISTER = """mutation($i: RegisterWebhookEndpointInput!) { registerWebhookEndpoint(input: $i) {
  __typename ... on WebhookEndpointSecret { secret endpoint { id url events status } }
  ... on Error { code message } ... on ValidationError { field } } }"""
ROTATE = """mutation($i: WebhookEndpointActionInput!) { rotateWebhookSecret(input: $i) {
  __typename ... on WebhookEndpointSecret { secret endpoint { secretRotatingUntil } } } }"""
DISABLE = """mutation($i: WebhookEndpointActionInput!) { disableWebhookEndpoint(input: $i) {
  __typename ... on WebhookEndpoint { status } ... on Error { code } } }"""
DELIVERIES = "{ webhookDeliveries { edges { node { eventType status attempts lastError } } } }"
ISSUE = """mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) {
  ... on VirtualIban { iban } } }"""
SIMULATE = """mutation($i: SimulateIncomingPaymentInput!) { simulateIncomingPayment(input: $i) {
  ... on IncomingPayment { id status } } }"""


@dataclass
class Receiver:
    """A local HTTP receiver that records each request; ``up`` False answers 503."""

    port: int = 0
    up: bool = False
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:]
                                                       if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.seen.append((headers, body))
        status = b"200 OK" if self.up else b"503 Service Unavailable"
        writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    r.port = server.sockets[0].getsockname()[1]
    async with server:
        yield r


async def _events(router: Router, p: Partner) -> list[Any]:
    return await rows(router, p.region, "SELECT id, tenant_id, topic, payload, created_at "
                      "FROM outbox WHERE region = :r AND tenant_id = :t ORDER BY created_at",
                      r=p.region, t=p.tenant_id)


async def _relay(router: Router, p: Partner, allow_private: bool = True) -> int:
    """What the relay and ``handle_events`` do for each of the tenant's events."""
    made = 0
    for e in await _events(router, p):
        made += await enqueue_event(router, sandbox_sealer(), p.region, e.tenant_id, e.id,
                                    e.topic, e.created_at.isoformat(), dict(e.payload),
                                    allow_private=allow_private)
    return made


async def _due_now(router: Router, region: str) -> None:
    async def body(conn: Any) -> None:
        await conn.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() "
                                "WHERE region = :r AND status = 'PENDING'"), {"r": region})

    await router.run(region, body)


async def _receive_money(p: Partner) -> None:
    got = await p.gql(ISSUE, {"i": {"accountId": p.accounts[0], "country": "DE",
                                    "idempotencyKey": "vib"}})
    iban = got["data"]["issueVirtualIban"]["iban"]
    await p.gql(SIMULATE, {"i": {"iban": iban, "amount": "12.00", "currency": "EUR",
                                 "senderName": "Sender", "idempotencyKey": "in-1"}})


async def test_down_then_up_every_event_arrives_signed(router: Router, receiver: Receiver,
                                                       make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    got = await p.gql(REGISTER, {"i": {"url": receiver.url, "events": ["*"],
                                       "idempotencyKey": "hook-1"}})
    created = got["data"]["registerWebhookEndpoint"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    replay = await p.gql(REGISTER, {"i": {"url": receiver.url, "events": ["*"],
                                          "idempotencyKey": "hook-1"}})
    assert replay["data"]["registerWebhookEndpoint"]["secret"] is None, "shown once"
    assert replay["data"]["registerWebhookEndpoint"]["endpoint"]["id"] == (
        created["endpoint"]["id"])

    await _receive_money(p)
    assert await _relay(router, p) == 1, "one incoming_payment.received delivery"
    assert await _relay(router, p) == 0, "the same event again makes no second delivery"
    assert len(receiver.seen) == 1
    listed = await p.gql(DELIVERIES)
    [node] = [e["node"] for e in listed["data"]["webhookDeliveries"]["edges"]]
    assert (node["status"], node["attempts"], node["lastError"]) == ("PENDING", 1, "status 503")

    receiver.up = True
    await _due_now(router, p.region)
    assert await deliver_due(router, sandbox_sealer(), p.region, allow_private=True) >= 1
    listed = await p.gql(DELIVERIES)
    [node] = [e["node"] for e in listed["data"]["webhookDeliveries"]["edges"]]
    assert (node["status"], node["attempts"]) == ("DELIVERED", 2)

    (h1, b1), (h2, b2) = receiver.seen
    assert b1 == b2, "a retry sends the same body"
    event = json.loads(b2)
    assert (event["type"], event["data"]["amount"]) == (
        "incoming_payment.received", {"amount": "12.00", "currency": "EUR"})
    assert h1["corridor-event-id"] == h2["corridor-event-id"] == event["id"]
    now = int(time.time())
    assert verify(secret.encode(), h2[signature_header.lower()], b2, now)
    assert not verify(secret.encode(), h2[signature_header.lower()], b2 + b" ", now)
    assert not verify(b"whsec_other", h2[signature_header.lower()], b2, now)


async def test_rotation_signs_with_both_secrets(router: Router, receiver: Receiver,
                                                make_partner: MakePartner) -> None:
    receiver.up = True
    receiver.seen.clear()
    p = await make_partner("EU", extra={"EUR": 1})
    got = await p.gql(REGISTER, {"i": {"url": receiver.url,
                                       "events": ["incoming_payment.received"],
                                       "idempotencyKey": "hook-r"}})
    old = got["data"]["registerWebhookEndpoint"]["secret"]
    endpoint = got["data"]["registerWebhookEndpoint"]["endpoint"]["id"]
    rotated = await p.gql(ROTATE, {"i": {"endpointId": endpoint, "idempotencyKey": "rot-1"}})
    new = rotated["data"]["rotateWebhookSecret"]["secret"]
    assert new not in (None, old)
    assert rotated["data"]["rotateWebhookSecret"]["endpoint"]["secretRotatingUntil"]
    await _receive_money(p)
    assert await _relay(router, p) == 1
    [(headers, body)] = receiver.seen
    header = headers[signature_header.lower()]
    assert header.count("v1=") == 2
    now = int(time.time())
    assert verify(new.encode(), header, body, now)
    assert verify(old.encode(), header, body, now)


async def test_private_addresses_are_refused_without_the_dev_allowance(
        router: Router, receiver: Receiver, make_partner: MakePartner) -> None:
    receiver.up = True
    receiver.seen.clear()
    p = await make_partner("EU", extra={"EUR": 1})
    for url in (receiver.url, "http://169.254.169.254/latest/meta-data"):
        await p.gql(REGISTER, {"i": {"url": url, "events": ["*"], "idempotencyKey": url}})
    await _receive_money(p)
    assert await _relay(router, p, allow_private=False) == 2
    assert receiver.seen == []
    listed = await p.gql(DELIVERIES)
    errors_seen = [e["node"]["lastError"] for e in listed["data"]["webhookDeliveries"]["edges"]]
    assert len(errors_seen) == 2
    assert all(e.startswith("unsafe destination") for e in errors_seen), errors_seen


async def test_disabled_endpoint_gets_nothing_and_live_keys_need_https(
        router: Router, receiver: Receiver, make_partner: MakePartner, topo: Topology,
        client: Any) -> None:
    receiver.seen.clear()
    p = await make_partner("EU", extra={"EUR": 1})
    got = await p.gql(REGISTER, {"i": {"url": receiver.url, "events": ["*"],
                                       "idempotencyKey": "hook-d"}})
    endpoint = got["data"]["registerWebhookEndpoint"]["endpoint"]["id"]
    off = await p.gql(DISABLE, {"i": {"endpointId": endpoint, "idempotencyKey": "off"}})
    assert off["data"]["disableWebhookEndpoint"]["status"] == "DISABLED"
    await _receive_money(p)
    assert await _relay(router, p) == 0
    assert receiver.seen == []

    async def live(conn: Any) -> str:
        t = await tenants.create_tenant(conn, topo, "Live Hooks", "EU", None, Environment.LIVE,
                                        gate=PolicyGate())
        return (await tenants.create_api_key(conn, test_pepper, t.id, Role.PARTNER_ADMIN)).key

    key = await router.run_control(live)
    refused = await gql(client, key, REGISTER, {"i": {
        "url": "http://example.com/hooks", "events": ["*"], "idempotencyKey": "h"}})
    assert refused["data"]["registerWebhookEndpoint"]["field"] == "url"
    unknown = await p.gql(REGISTER, {"i": {"url": receiver.url, "events": ["nope"],
                                           "idempotencyKey": "hook-x"}})
    assert unknown["data"]["registerWebhookEndpoint"]["field"] == "events"
