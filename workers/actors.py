"""dramatiq actors. Import only through ``workers.broker.install``, which sets the broker first.

Every actor is idempotent (its effect is recorded with the message id), bounded (time limit,
retries with exponential backoff), and dead-lettered after its last retry.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from opentelemetry.trace import SpanKind

from regions import telemetry, xr_payouts
from workers import queues
from workers.fx.refresh import refresh
from workers.maintenance import chain_region, purge_region
from workers.payouts import (
    apply_due_returns,
    process_batch,
    process_payout,
    process_xr_payout,
)
from workers.rails import RailTimeout
from workers.runtime import Runtime, runtime
from workers.scheduler import holder_id
from workers.settlement import net_region, reconcile_all
from workers.webhooks import deliver_due, enqueue_event

fx_queue = queues.fx
refresh_time_limit_ms = 60_000
refresh_retries_max = 5
retry_backoff_ms_min = 1_000
retry_backoff_ms_max = 60_000

purge_queue = queues.maintenance
purge_time_limit_ms = 300_000
purge_batches_max = 100

broker = dramatiq.get_broker()


@dramatiq.actor(queue_name=fx_queue, time_limit=refresh_time_limit_ms,
                max_retries=refresh_retries_max, min_backoff=retry_backoff_ms_min,
                max_backoff=retry_backoff_ms_max)
async def refresh_fx_rates() -> None:
    message = CurrentMessage.get_current_message()
    assert message is not None
    rt = runtime()
    await refresh(rt.db(), rt.provider, message.message_id, await rt.policies())


@dramatiq.actor(queue_name=purge_queue, time_limit=purge_time_limit_ms,
                max_retries=refresh_retries_max, min_backoff=retry_backoff_ms_min,
                max_backoff=retry_backoff_ms_max)
async def purge_idempotency_keys(region: str) -> None:
    """Delete a region's expired idempotency keys in bounded batches.

    Idempotent by construction (deleting what is expired twice deletes nothing more), so no
    inbox row is needed; the batch bound keeps each transaction short.
    """
    await purge_region(runtime().db(), region, purge_batches_max)


audit_chain_runs_max = 20


@dramatiq.actor(queue_name=purge_queue, time_limit=purge_time_limit_ms,
                max_retries=0)
async def chain_audit_log(region: str) -> None:
    """Link the region's new audit rows into its hash chain (scheduled every few seconds; a
    failed run leaves the rows for the next, which takes them up in the same order)."""
    await chain_region(runtime().db(), region, audit_chain_runs_max)


events_queue = queues.events
event_time_limit_ms = 600_000
"""Long enough for a 10,000-item payout batch, processed in chunks by one message."""
event_retries_max = 20
"""With backoff capped at ``retry_backoff_ms_max``, a rail that times out is retried for
about 20 minutes before the message is dead-lettered (the payout stays PROCESSING, and
``corridor`` operators can re-drive it)."""


@dramatiq.actor(queue_name=events_queue, time_limit=event_time_limit_ms,
                max_retries=event_retries_max, min_backoff=retry_backoff_ms_min,
                max_backoff=retry_backoff_ms_max)
async def handle_events(region: str, events: list[dict[str, Any]]) -> None:
    """A batch of outbox events from the relay, in write order: each one's webhooks, and the
    work it triggers. Every step is idempotent, so a redelivered batch has no second effect."""
    rt = runtime()
    timed_out: list[RailTimeout] = []
    for e in events:
        # Each event continues the trace of the request (or worker) that wrote it.
        with telemetry.span(f"event {e['topic']}", parent=e.get("trace_context"),
                            kind=SpanKind.CONSUMER, attributes={
                                "corridor.event.id": e["id"], "corridor.region": region}):
            await enqueue_event(rt.db(), rt.sealer(), region, e["tenant_id"], e["id"],
                                e["topic"], e["created_at"], e["payload"],
                                allow_private=rt.config.webhooks_allow_private)
            try:
                await _trigger(rt, region, e["id"], e["topic"], e["payload"])
            except RailTimeout as exc:  # the others go on; the message is retried after
                timed_out.append(exc)
    if timed_out:
        raise timed_out[0]


async def _trigger(rt: Runtime, region: str, event_id: str, topic: str,
                   payload: dict[str, Any]) -> None:
    if topic == "payout.created" and not payload.get("batch_id"):
        await process_payout(rt.db(), rt.sealer(), await rt.policies(), rt.rails, region,
                             payload["payout_id"], event_id)
    elif topic == xr_payouts.accepted_topic:
        await process_xr_payout(rt.db(), rt.sealer(), rt.rails, region, payload["payout_id"])
    elif topic == "payout_batch.created" and payload.get("accepted"):
        await process_batch(rt.db(), rt.sealer(), await rt.policies(), rt.rails, region,
                            payload["batch_id"])


@dramatiq.actor(queue_name=events_queue, time_limit=event_time_limit_ms, max_retries=0)
async def deliver_webhooks(region: str) -> None:
    """Retry the region's due webhook deliveries (scheduled; a failed run waits for the next)."""
    rt = runtime()
    await deliver_due(rt.db(), rt.sealer(), region,
                      allow_private=rt.config.webhooks_allow_private)


@dramatiq.actor(queue_name=purge_queue, time_limit=purge_time_limit_ms,
                max_retries=refresh_retries_max, min_backoff=retry_backoff_ms_min,
                max_backoff=retry_backoff_ms_max)
async def apply_payout_returns(region: str) -> None:
    """Sandbox returns that have come due (idempotent: a returned payout is not returned twice)."""
    await apply_due_returns(runtime().db(), region)


@dramatiq.actor(queue_name=purge_queue, time_limit=purge_time_limit_ms, max_retries=0)
async def net_settlements(region: str) -> None:
    """Net the closed windows of the pairs this region coordinates (scheduled; a failed run
    leaves the obligations open for the next, which nets them)."""
    rt = runtime()
    await net_region(rt.db(), region, rt.config.settlement_window_s, holder_id())


@dramatiq.actor(queue_name=purge_queue, time_limit=purge_time_limit_ms, max_retries=0)
async def reconcile_settlements() -> None:
    """Compare every pair's two sides and report each break (scheduled)."""
    await reconcile_all(runtime().db())
