"""Outbox and audit rows, written in the same transaction as the effect they describe.

Events leave a region only through the outbox: a relay publishes unpublished rows to RabbitMQ.
Both rows go in one statement (one round trip on the hot path).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids

_emit = text("""
WITH o AS (
    INSERT INTO outbox (region, id, tenant_id, topic, payload)
    VALUES (:region, :event_id, :tenant_id, :topic, CAST(:payload AS JSONB)))
INSERT INTO audit_events (region, id, tenant_id, actor, action, target, detail)
VALUES (:region, :audit_id, :tenant_id, :actor, :topic, :target, CAST(:detail AS JSONB))
""")


async def emit(
    conn: AsyncConnection, region: str, tenant_id: str | None, topic: str,
    payload: dict[str, Any], *, actor: str, target: str | None,
) -> str:
    """Record an outbox event and its audit event; returns the event id (stable for receivers)."""
    event_id = ids.new_id("evt", region)
    await conn.execute(_emit, {
        "region": region, "event_id": event_id, "audit_id": ids.new_id("aud", region),
        "tenant_id": tenant_id, "topic": topic, "payload": json.dumps(payload),
        "actor": actor, "target": target,
        "detail": json.dumps({"event_id": event_id, **payload})})
    return event_id
