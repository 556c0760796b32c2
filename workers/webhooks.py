"""Webhook delivery: events become deliveries, deliveries are signed and POSTed.

``enqueue_event`` runs for every outbox event (from ``handle_events``) and then tries the new
deliveries at once; ``deliver_due`` (scheduled per region) retries what failed, with backoff,
for at least 24 hours. A delivery is claimed under a lease before the HTTP call and its result
recorded after, so a worker that dies mid-call leaves it to be retried after the lease; a
receiver may therefore see an event twice, with the same event id (API.md).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.webhooks import sign, signature_header, subscribes
from regions import webhooks
from regions.router import Router
from regions.sealing import Sealer
from workers.webhook_delivery import deliver

event_id_header = "Corridor-Event-Id"
subscriptions_ttl_s = 5.0
"""A new or disabled endpoint is seen by every worker within this many seconds."""
subscriptions_cached_max = 10_000

_subscriptions: dict[tuple[str, str], tuple[float, list[list[str]]]] = {}

_log = logging.getLogger(__name__)


async def enqueue_event(router: Router, sealer: Sealer, region: str, tenant_id: str | None,
                        event_id: str, topic: str, created_at: str, payload: dict[str, Any],
                        *, allow_private: bool) -> int:
    """Deliveries for the tenant's subscribed endpoints, tried now; returns how many made."""
    if tenant_id is None or not any(subscribes(events, topic) for events in
                                    await _subscribed(router, region, tenant_id)):
        return 0
    body = webhooks.event_body(event_id, topic, created_at, payload)

    async def make(conn: AsyncConnection) -> list[str]:
        return await webhooks.enqueue(conn, region, tenant_id, event_id, topic, body)

    made = await router.run(region, make)
    if made:
        await deliver_due(router, sealer, region, allow_private=allow_private, only=made)
    return len(made)


async def _subscribed(router: Router, region: str, tenant_id: str) -> list[list[str]]:
    """The event types of the tenant's active endpoints, cached briefly: most events have no
    subscriber, and must not cost a query each."""
    hit = _subscriptions.get((region, tenant_id))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]

    async def body(conn: AsyncConnection) -> list[list[str]]:
        return await webhooks.subscriptions(conn, region, tenant_id)

    found = await router.read(region, body)
    if len(_subscriptions) >= subscriptions_cached_max:
        _subscriptions.clear()
    _subscriptions[(region, tenant_id)] = (time.monotonic() + subscriptions_ttl_s, found)
    return found


async def deliver_due(router: Router, sealer: Sealer, region: str, *, allow_private: bool,
                      only: list[str] | None = None) -> int:
    """Send the region's due deliveries (one claim's worth); returns how many were sent."""
    async def claim(conn: AsyncConnection) -> list[tuple[Row[Any], list[bytes]]]:
        rows = await webhooks.claim(conn, region, only)
        return [(r, await webhooks.secrets_of(conn, sealer, region, r)) for r in rows]

    claimed = await router.run(region, claim)
    for row, secrets in claimed:
        ok: bool
        code: int | None
        error: str | None
        if row.endpoint_status != "ACTIVE":
            ok, code, error = False, None, "endpoint disabled"
        else:
            body = bytes(row.body)
            headers = {signature_header: sign(secrets, int(time.time()), body),
                       event_id_header: row.event_id}
            result = await deliver(row.url, body, headers, allow_private=allow_private)
            ok, code, error = result.ok, result.status_code, result.error

        async def record(conn: AsyncConnection, row: Row[Any] = row, ok: bool = ok,
                         code: int | None = code, error: str | None = error) -> str:
            return await webhooks.record(conn, region, row, ok, code, error)

        status = await router.run(region, record)
        _log.info("webhook %s (event %s) attempt %d: %s", row.id, row.event_id, row.attempts,
                  status if ok else f"{status}, {error}")
    return len(claimed)
