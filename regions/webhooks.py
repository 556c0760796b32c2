"""Webhook endpoints and deliveries, stored in the tenant's home region.

An endpoint's signing secret is sealed under the tenant's data key; rotating it keeps the
previous secret signing for ``rotation_overlap_s`` (both ``v1=`` values are sent). Each event a
tenant's endpoint subscribes to becomes one delivery row per endpoint (unique by event id, so a
redelivered event makes no second delivery). Deliveries are claimed with a short lease
(``FOR UPDATE SKIP LOCKED``, then ``next_attempt_at`` pushed past the lease), sent outside any
transaction, and their result recorded: delivered, retried with backoff, or failed once
``payments.webhooks.retry_window_s`` has passed since the event.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.currency import stored_currency as lookup_currency
from payments.errors import DomainError, NotFound
from payments.money import format_amount
from payments.principal import Principal
from payments.webhooks import backoff_s, retry_window_s, subscribes
from regions import idempotency
from regions.events import Event
from regions.sealing import Place, Sealer
from regions.tables import webhook_deliveries, webhook_endpoints

endpoints_per_tenant_max = 10
rotation_overlap_s = 86_400
claim_deliveries_max = 50
claim_lease_s = 60
table_name = "webhook_endpoints"

Response = dict[str, Any]


class TooManyEndpoints(DomainError):
    code = "LIMIT_EXCEEDED"


@dataclass(frozen=True, slots=True)
class RegisterEndpoint:
    url: str
    events: tuple[str, ...]
    idempotency_key: str


def secret_digest(secret: str) -> str:
    """Stored in the idempotent response so the caller can tell its own fresh secret from a
    replay (which must not show a secret again); a digest, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def _place(row_tenant: str, endpoint_id: str) -> Place:
    return Place(row_tenant, table_name, endpoint_id)


async def register_txn(conn: AsyncConnection, who: Principal, sealer: Sealer,
                       cmd: RegisterEndpoint, secret: str) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        # Counting the seal locks the tenant's data key row until commit, which serialises
        # registrations, so concurrent ones cannot all count below the limit (READ COMMITTED
        # sees no uncommitted inserts).
        key = await sealer.shared_key(conn, who.region, who.tenant.id, who.tenant.id, seals=1)
        count = (await conn.execute(select(func.count()).where(
            webhook_endpoints.c.region == who.region,
            webhook_endpoints.c.tenant_id == who.tenant.id,
            webhook_endpoints.c.status == "ACTIVE"))).scalar_one()
        if count >= endpoints_per_tenant_max:
            raise TooManyEndpoints(f"a tenant may have {endpoints_per_tenant_max} active "
                                   "webhook endpoints")
        endpoint_id = ids.new_id("whe", who.region)
        await conn.execute(insert(webhook_endpoints).values(
            region=who.region, id=endpoint_id, tenant_id=who.tenant.id, url=cmd.url,
            events=list(cmd.events), data_key_id=key.id, status="ACTIVE",
            secret_sealed=sealer.seal(key.key, _place(who.tenant.id, endpoint_id), "secret",
                                      secret)))
        return {"type": "WebhookEndpoint", "id": endpoint_id,
                "secretDigest": secret_digest(secret)}, [Event(
            "webhook_endpoint.registered", {"endpoint_id": endpoint_id,
                                            "events": list(cmd.events)}, endpoint_id)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "registerWebhookEndpoint",
                                  {"url": cmd.url, "events": list(cmd.events)}, effect)


async def _own(conn: AsyncConnection, who: Principal, endpoint_id: str) -> Row[Any]:
    row = (await conn.execute(select(webhook_endpoints).where(
        webhook_endpoints.c.region == who.region, webhook_endpoints.c.tenant_id == who.tenant.id,
        webhook_endpoints.c.id == endpoint_id).with_for_update())).first()
    if row is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return row


async def disable_txn(conn: AsyncConnection, who: Principal, endpoint_id: str,
                      key: str) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        row = await _own(conn, who, endpoint_id)
        await conn.execute(update(webhook_endpoints).where(
            webhook_endpoints.c.region == who.region, webhook_endpoints.c.id == row.id).values(
            status="DISABLED", updated_at=func.now()))
        return {"type": "WebhookEndpoint", "id": row.id}, [Event(
            "webhook_endpoint.disabled", {"endpoint_id": row.id}, row.id)]

    return await idempotency.once(conn, who, key, "disableWebhookEndpoint",
                                  {"endpointId": endpoint_id}, effect)


async def rotate_txn(conn: AsyncConnection, who: Principal, sealer: Sealer, endpoint_id: str,
                     key: str, secret: str) -> Response:
    """A new secret; the current one keeps signing for ``rotation_overlap_s``."""
    async def effect() -> tuple[Response, list[Event]]:
        row = await _own(conn, who, endpoint_id)
        data_key = await sealer.key(conn, who.region, row.data_key_id)
        assert data_key is not None, row.id
        place = _place(row.tenant_id, row.id)
        current = sealer.open(data_key, place, "secret", row.secret_sealed)
        await conn.execute(update(webhook_endpoints).where(
            webhook_endpoints.c.region == who.region, webhook_endpoints.c.id == row.id).values(
            secret_sealed=sealer.seal(data_key, place, "secret", secret),
            previous_secret_sealed=sealer.seal(data_key, place, "previous_secret", current),
            previous_expires_at=func.now() + timedelta(seconds=rotation_overlap_s),
            updated_at=func.now()))
        return {"type": "WebhookEndpoint", "id": row.id,
                "secretDigest": secret_digest(secret)}, [Event(
            "webhook_endpoint.secret_rotated", {"endpoint_id": row.id}, row.id)]

    return await idempotency.once(conn, who, key, "rotateWebhookSecret",
                                  {"endpointId": endpoint_id}, effect)


_camel = re.compile(r"_([a-z])")


def public_data(payload: dict[str, Any]) -> dict[str, Any]:
    """An event's data as partners read it: camelCase keys, money as a decimal string."""
    data = {_camel.sub(lambda m: m.group(1).upper(), k): v for k, v in payload.items()
            if k not in ("amount_minor", "currency")}
    if "amount_minor" in payload and "currency" in payload:
        cur = lookup_currency(payload["currency"])
        data["amount"] = {"amount": format_amount(payload["amount_minor"], cur),
                          "currency": cur.code}
    return data


def event_body(event_id: str, topic: str, created_at: str, payload: dict[str, Any]) -> bytes:
    return json.dumps({"id": event_id, "type": topic, "createdAt": created_at,
                       "data": public_data(payload)}, separators=(",", ":")).encode()


async def subscriptions(conn: AsyncConnection, region: str, tenant_id: str) -> list[list[str]]:
    """The event types of each of the tenant's active endpoints."""
    rows = await conn.execute(select(webhook_endpoints.c.events).where(
        webhook_endpoints.c.region == region, webhook_endpoints.c.tenant_id == tenant_id,
        webhook_endpoints.c.status == "ACTIVE"))
    return [list(r.events) for r in rows]


async def enqueue(conn: AsyncConnection, region: str, tenant_id: str, event_id: str,
                  topic: str, body: bytes) -> list[str]:
    """A delivery per active endpoint of the tenant subscribed to ``topic``; their ids."""
    endpoints = await conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.events)
                                   .where(webhook_endpoints.c.region == region,
                                          webhook_endpoints.c.tenant_id == tenant_id,
                                          webhook_endpoints.c.status == "ACTIVE"))
    made = []
    for endpoint in endpoints:
        if not subscribes(endpoint.events, topic):
            continue
        row = (await conn.execute(
            text("""INSERT INTO webhook_deliveries (region, id, tenant_id, endpoint_id,
                        event_id, event_type, body, status)
                    VALUES (:region, :id, :tenant, :endpoint, :event, :type, :body, 'PENDING')
                    ON CONFLICT (region, endpoint_id, event_id) DO NOTHING RETURNING id"""),
            {"region": region, "id": ids.new_id("whd", region), "tenant": tenant_id,
             "endpoint": endpoint.id, "event": event_id, "type": topic, "body": body})).first()
        if row is not None:
            made.append(row.id)
    return made


_claim = text("""
    UPDATE webhook_deliveries AS d
    SET next_attempt_at = now() + make_interval(secs => :lease_s), attempts = d.attempts + 1
    FROM webhook_endpoints AS e
    WHERE d.region = :region AND d.id IN (
        SELECT id FROM webhook_deliveries
        WHERE region = :region AND status = 'PENDING' AND next_attempt_at <= now()
          AND (CAST(:only AS TEXT[]) IS NULL OR id = ANY(CAST(:only AS TEXT[])))
        ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
      AND e.region = d.region AND e.id = d.endpoint_id
    RETURNING d.id, d.event_id, d.body, d.attempts, d.created_at, e.id AS endpoint_id,
              e.tenant_id, e.url, e.status AS endpoint_status, e.data_key_id,
              e.secret_sealed, e.previous_secret_sealed, e.previous_expires_at,
              now() AS db_now
""")


async def claim(conn: AsyncConnection, region: str, only: list[str] | None = None
                ) -> list[Row[Any]]:
    """Due deliveries (or the ``only`` ones, if due), leased to this caller for a while."""
    return list(await conn.execute(_claim, {"region": region, "lease_s": claim_lease_s,
                                            "n": claim_deliveries_max, "only": only}))


async def secrets_of(conn: AsyncConnection, sealer: Sealer, region: str,
                     row: Row[Any]) -> list[bytes]:
    """The secrets that sign now: the current one, and the previous during its overlap."""
    key = await sealer.key(conn, region, row.data_key_id)
    place = _place(row.tenant_id, row.endpoint_id)
    current = sealer.open(key, place, "secret", row.secret_sealed)
    assert current is not None, row.endpoint_id
    out = [current.encode()]
    if row.previous_secret_sealed is not None and row.previous_expires_at > row.db_now:
        previous = sealer.open(key, place, "previous_secret", row.previous_secret_sealed)
        assert previous is not None, row.endpoint_id
        out.append(previous.encode())
    return out


async def record(conn: AsyncConnection, region: str, row: Row[Any], ok: bool,
                 status_code: int | None, error: str | None) -> str:
    """Delivered, retried after ``backoff_s``, or failed past the retry window."""
    age_s = (row.db_now - row.created_at).total_seconds()
    wait_s = backoff_s(row.attempts)
    status = ("DELIVERED" if ok else
              "FAILED" if age_s + wait_s > retry_window_s or row.endpoint_status != "ACTIVE"
              else "PENDING")
    await conn.execute(update(webhook_deliveries).where(
        webhook_deliveries.c.region == region, webhook_deliveries.c.id == row.id).values(
        status=status, last_status_code=status_code, last_error=error,
        next_attempt_at=func.now() + timedelta(seconds=wait_s),
        delivered_at=func.now() if ok else None))
    return status
