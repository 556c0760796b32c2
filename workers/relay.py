"""The outbox relay: publishes each region's outbox events to RabbitMQ, in order, once.

One relay at a time holds a region (a lease row, as the scheduler's); it reads the oldest
unpublished events in write order, publishes them as one message (events in order) with a
publisher confirm (the broker has the message before we go on), and marks them published only
after the confirm. A relay that dies between publishing and marking publishes those events
again: consumers handle each event idempotently (its id is unique in their inbox or delivery
rows, or the state it would move has moved on), so a duplicate has no second effect. One
message per batch, published in order by the one relay holding the region, keeps the order per
aggregate, and a broker round trip per ``batch_events_max`` events, not per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import telemetry
from regions.router import Router
from workers.scheduler import LeaseKeeper, holder_id

batch_events_max = 200
idle_s = 0.2
lease_s = 15
measure_s = 5.0
"""How often the relay measures outbox backlog and queue depth for the metrics."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: str
    region: str
    tenant_id: str | None
    topic: str
    payload: dict[str, Any]
    created_at: str
    trace_context: str | None = None


Publish = Callable[[list[OutboxEvent]], None]
"""Publish events, in order, as one message; return after the broker confirmed it (raises if
it did not)."""

_pending = text("""
    SELECT id, region, tenant_id, topic, payload, created_at, trace_context FROM outbox
    WHERE region = :region AND published_at IS NULL
    ORDER BY created_at, id LIMIT :n
""")
_backlog = text("""
    SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS lag_s FROM outbox
    WHERE region = :region AND published_at IS NULL
""")
_mark = text("""
    UPDATE outbox SET published_at = now()
    WHERE region = :region AND id = ANY(CAST(:ids AS TEXT[])) AND published_at IS NULL
""")


class Relay:
    def __init__(self, router: Router, regions: list[str], publish: Publish,
                 holder: str | None = None,
                 queue_depths: Callable[[], dict[str, int]] | None = None) -> None:
        self.queue_depths = queue_depths
        self.router = router
        self.regions = regions
        self.publish = publish
        self.holder = holder or holder_id()
        self._leases = LeaseKeeper(router, self.holder, lease_s)

    async def holds(self, region: str) -> bool:
        """Whether this relay holds the region's lease, renewed a third of the way through."""
        return await self._leases.holds(f"relay.{region}")

    async def relay_region(self, region: str) -> int:
        """Publish up to one batch of the region's events; returns how many."""
        if not await self.holds(region):
            return 0

        async def pending(conn: AsyncConnection) -> list[OutboxEvent]:
            rows = await conn.execute(_pending, {"region": region, "n": batch_events_max})
            return [OutboxEvent(r.id, r.region, r.tenant_id, r.topic, dict(r.payload),
                                r.created_at.isoformat(), r.trace_context) for r in rows]

        batch = await self.router.read(region, pending)
        if batch:
            await asyncio.to_thread(self.publish, batch)
            async def mark(conn: AsyncConnection) -> None:
                await conn.execute(_mark, {"region": region, "ids": [e.id for e in batch]})

            await self.router.run(region, mark)
            _count(region, batch)
        return len(batch)

    async def measure(self, region: str) -> None:
        """The region's outbox backlog and the age of its oldest unpublished event, for the
        ``corridor.outbox.*`` gauges (this relay's regions only)."""
        async def body(conn: AsyncConnection) -> Any:
            return (await conn.execute(_backlog, {"region": region})).one()

        row = await self.router.read(region, body)
        telemetry.set_gauge("corridor.outbox.backlog", int(row.n), region=region)
        telemetry.set_gauge("corridor.outbox.lag", float(row.lag_s or 0.0), region=region)

    async def run(self, stop: asyncio.Event) -> None:
        measured_at = 0.0
        while not stop.is_set():
            moved = 0
            if time.monotonic() - measured_at >= measure_s:
                measured_at = time.monotonic()
                await self.measure_all()
            for region in self.regions:
                try:
                    moved += await self.relay_region(region)
                except Exception:  # noqa: BLE001 - the relay outlives a broker or database outage
                    _log.exception("relay of %s failed; retrying", region)
            if moved == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_s)

    async def measure_all(self) -> None:
        for region in self.regions:
            try:
                if await self.holds(region):
                    await self.measure(region)
            except Exception:  # noqa: BLE001 - metrics never stop the relay
                _log.warning("measuring the outbox of %s failed", region, exc_info=True)
        if self.queue_depths is not None:
            try:
                for queue, depth in (await asyncio.to_thread(self.queue_depths)).items():
                    telemetry.set_gauge("corridor.queue.depth", depth, queue=queue)
            except Exception:  # noqa: BLE001
                _log.warning("measuring the queues failed", exc_info=True)


def _count(region: str, batch: list[OutboxEvent]) -> None:
    """Metrics from what was committed and published, once per event: events by topic (the
    payout.* topics are payout state changes), and transfers posted."""
    for e in batch:
        telemetry.events_published.add(1, {"region": region, "topic": e.topic})
        if e.topic == "transfer.created":
            telemetry.transfers_posted.add(1, {"region": region})
        elif e.topic == "transfer_batch.created" and e.payload.get("posted"):
            telemetry.transfers_posted.add(int(e.payload["posted"]), {"region": region})
