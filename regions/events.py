"""Outbox and audit rows, written in the same transaction as the effect they describe.

Events leave a region only through the outbox: a relay publishes unpublished rows to RabbitMQ
in ``created_at`` order. ``created_at`` is the clock when the row is written, not when its
transaction began: two events of one aggregate are written under its row lock, so the later
one's clock is later, and the relay publishes them in that order.
``record`` writes every event of an operation, its audit rows and (for an idempotent mutation)
the idempotency key's response in one statement: one round trip on the hot path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from regions import telemetry

origin: ContextVar[str | None] = ContextVar("corridor_origin", default=None)
"""Where the current request came from (the client address), stamped on its audit rows; the
API sets it per request. Workers and the CLI leave it unset."""


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    payload: dict[str, Any]
    target: str | None
    audited: bool = True
    """False for the items of an operation whose own event is audited (a payout batch's
    10,000 payouts): the outbox carries each item, the audit log the operation."""
    published: bool = True
    """False for what only the audit log keeps (a policy decision): no outbox row."""


@dataclass(frozen=True, slots=True)
class Trail:
    """What a refused operation leaves once its transaction has rolled back: an audit event,
    recorded by ``Router.run`` in a transaction of its own."""

    region: str
    tenant_id: str | None
    actor: str
    event: Event


_record = text("""
WITH o AS (
    INSERT INTO outbox (region, id, tenant_id, topic, payload, created_at, trace_context)
    SELECT :region, u.id, :tenant_id, u.topic, CAST(u.payload AS JSONB), clock_timestamp(),
           :trace_context
    FROM unnest(CAST(:event_ids AS TEXT[]), CAST(:topics AS TEXT[]), CAST(:payloads AS TEXT[]))
         AS u(id, topic, payload)),
a AS (
    INSERT INTO audit_events (region, id, tenant_id, actor, action, target, detail, origin,
                              created_at)
    SELECT :region, u.id, :tenant_id, :actor, u.topic, u.target, CAST(u.detail AS JSONB),
           :origin, clock_timestamp()
    FROM unnest(CAST(:audit_ids AS TEXT[]), CAST(:audit_topics AS TEXT[]),
                CAST(:targets AS TEXT[]), CAST(:details AS TEXT[]))
         AS u(id, topic, target, detail))
UPDATE idempotency_keys SET response = CAST(:response AS JSONB)
WHERE region = :region AND tenant_id = :tenant_id AND key = :key
""")


async def record(
    conn: AsyncConnection, region: str, tenant_id: str | None, actor: str,
    events: Sequence[Event], *, key: str | None = None, response: dict[str, Any] | None = None,
) -> list[str]:
    """Record the events (and the key's response, when a key is given); returns event ids.

    Event ids are stable, so receivers can drop duplicates.
    """
    event_ids = [ids.new_id("evt", region) for _ in events]
    audited = [(i, e) for i, e in zip(event_ids, events, strict=True) if e.audited]
    published = [(i, e) for i, e in zip(event_ids, events, strict=True) if e.published]
    await conn.execute(_record, {
        "region": region, "tenant_id": tenant_id, "actor": actor,
        "event_ids": [i for i, _ in published],
        "topics": [e.topic for _, e in published],
        "payloads": [json.dumps(e.payload) for _, e in published],
        "audit_ids": [ids.new_id("aud", region) for _ in audited],
        "audit_topics": [e.topic for _, e in audited],
        "targets": [e.target for _, e in audited],
        "details": [json.dumps({"event_id": i, **e.payload}) for i, e in audited],
        "key": key, "response": json.dumps(response) if response is not None else None,
        "origin": origin.get(),
        "trace_context": telemetry.current_context() if published else None,
    })
    return event_ids


async def emit(
    conn: AsyncConnection, region: str, tenant_id: str | None, topic: str,
    payload: dict[str, Any], *, actor: str, target: str | None,
) -> str:
    """Record one event outside an idempotent mutation; returns its id."""
    return (await record(conn, region, tenant_id, actor, [Event(topic, payload, target)]))[0]


_record_control = text("""
    INSERT INTO control_audit_events (region, id, tenant_id, actor, action, target, detail,
                                      origin, created_at)
    VALUES ('control', :id, :tenant_id, :actor, :action, :target, CAST(:detail AS JSONB),
            :origin, clock_timestamp())""")


async def record_control(conn: AsyncConnection, actor: str, action: str, target: str | None,
                         detail: dict[str, Any], *, tenant_id: str | None = None) -> str:
    """An audit row of the control plane's trail (``regions.audit_chain.control``): policy
    changes, failed authentications, operators' commands; returns its id."""
    audit_id = ids.new_id("aud", "control")
    await conn.execute(_record_control, {
        "id": audit_id, "tenant_id": tenant_id, "actor": actor, "action": action,
        "target": target, "detail": json.dumps(detail), "origin": origin.get()})
    return audit_id
