"""Outbox and audit rows, written in the same transaction as the effect they describe.

Events leave a region only through the outbox: a relay publishes unpublished rows to RabbitMQ.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from regions.tables import audit_events, outbox


async def emit(
    conn: AsyncConnection, region: str, tenant_id: str | None, topic: str,
    payload: dict[str, Any], *, actor: str, target: str | None,
) -> str:
    """Record an outbox event and its audit event; returns the event id (stable for receivers)."""
    event_id = ids.new_id("evt", region)
    await conn.execute(insert(outbox).values(
        region=region, id=event_id, tenant_id=tenant_id, topic=topic, payload=payload))
    await conn.execute(insert(audit_events).values(
        region=region, id=ids.new_id("aud", region), tenant_id=tenant_id, actor=actor,
        action=topic, target=target, detail={"event_id": event_id, **payload}))
    return event_id
