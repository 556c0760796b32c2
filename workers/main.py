"""Process entry points: ``corridor worker`` and ``corridor scheduler`` (wired in ``api.cli``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker

from regions import telemetry
from regions.router import Router
from workers.broker import install
from workers.config import WorkerConfig
from workers.relay import OutboxEvent, Publish, Relay
from workers.scheduler import Job, Scheduler

worker_threads_default = 4
shutdown_timeout_ms = 30_000

_log = logging.getLogger(__name__)


def start_worker(config: WorkerConfig, threads: int = worker_threads_default) -> dramatiq.Worker:
    broker, _ = install(config)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    return worker


def run_worker(config: WorkerConfig, threads: int = worker_threads_default) -> int:
    """Consume until SIGTERM or SIGINT, then finish in-flight messages and stop."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker = start_worker(config, threads)
    _log.info("worker started: %d threads, broker %s", threads, type(worker.broker).__name__)
    stop.wait()
    worker.stop(timeout=shutdown_timeout_ms)
    return 0


purge_interval_s = 3_600
returns_interval_s = 60
webhooks_interval_s = 5
audit_chain_interval_s = 5
netting_check_s = 60
"""How often each region looks for closed netting windows (the window itself is configured)."""
reconcile_interval_s = 300


def scheduled_jobs(config: WorkerConfig) -> list[Job]:
    """The periodic jobs: FX refresh, and per region an idempotency-key purge, the sandbox
    rails' due returns, webhook retries, the audit log's chaining (and the control
    plane's) and settlement netting; and the reconciliation of every region pair."""
    from regions import audit_chain
    from workers.actors import (
        apply_payout_returns,
        chain_audit_log,
        deliver_webhooks,
        net_settlements,
        purge_idempotency_keys,
        reconcile_settlements,
        refresh_fx_rates,
    )

    regions = [r.code for r in config.topology.regions]
    per_region = [("idempotency.purge", purge_interval_s, purge_idempotency_keys),
                  ("payouts.returns", returns_interval_s, apply_payout_returns),
                  ("webhooks.deliver", webhooks_interval_s, deliver_webhooks),
                  ("audit.chain", audit_chain_interval_s, chain_audit_log),
                  ("settlement.net", netting_check_s, net_settlements)]
    return [Job("fx.refresh", config.fx_refresh_s, refresh_fx_rates.send)] + [
        Job(f"{name}.{r}", every_s, partial(actor.send, r), region=r)
        for name, every_s, actor in per_region for r in regions] + [
        Job(f"audit.chain.{audit_chain.control}", audit_chain_interval_s,
            partial(chain_audit_log.send, audit_chain.control)),
        Job("settlement.reconcile", reconcile_interval_s, reconcile_settlements.send)]


def broker_publish(broker: dramatiq.Broker) -> Publish:
    """Publish a batch of outbox events as one ``handle_events`` message.

    Its id names the batch's first and last events, so a republished batch is recognisable in
    logs; consumers dedupe per event. With RabbitMQ, ``enqueue`` returns after the broker's
    publisher confirm.
    """
    from workers.actors import handle_events

    def publish(batch: list[OutboxEvent]) -> None:
        message = handle_events.message(batch[0].region, [
            {"id": e.id, "tenant_id": e.tenant_id, "topic": e.topic, "payload": e.payload,
             "created_at": e.created_at, "trace_context": e.trace_context} for e in batch])
        broker.enqueue(message.copy(message_id=f"{batch[0].id}..{batch[-1].id}"))

    return publish


def queue_depths(broker: dramatiq.Broker) -> Callable[[], dict[str, int]]:
    """Messages waiting per declared queue (RabbitMQ: ready, delayed and dead-lettered)."""
    def measure() -> dict[str, int]:
        found: dict[str, int] = {}
        for queue in sorted(broker.get_declared_queues()):
            if isinstance(broker, RabbitmqBroker):
                ready, delayed, dead = broker.get_queue_message_counts(queue)
                found |= {queue: ready, f"{queue}.DQ": delayed, f"{queue}.XQ": dead}
            elif isinstance(broker, StubBroker):
                found[queue] = broker.queues[queue].qsize()
        return found

    return measure


def run_relay(config: WorkerConfig) -> int:
    """``corridor relay``: publish every region's outbox until SIGTERM or SIGINT."""
    broker, _ = install(config)
    _run_until_signalled(config, lambda router, stop: Relay(
        router, [r.code for r in config.topology.regions], broker_publish(broker),
        queue_depths=queue_depths(broker)).run(stop))
    broker.close()
    return 0


def run_settlement(config: WorkerConfig, regions: list[str]) -> int:
    """``corridor settlement run``: publish the regions' settlement messages to each peer's
    broker and apply what the regions' own brokers deliver, until SIGTERM or SIGINT.

    Each region's consumer reads its own vhost (``region_amqp_urls``); deploy one process per
    region with ``--region`` so a region's messages are applied by its own processes.
    """
    from workers.runtime import configure
    from workers.settlement import XrRelay, receiver
    from workers.xr_transport import XrConsumer, XrPublisher, queue_from

    telemetry.setup("corridor-settlement", config.environment)
    rt = configure(config)
    publisher = XrPublisher(config.region_amqp_urls)

    def publish(origin: str, destination: str, messages: Sequence[tuple[str, bytes]]) -> None:
        publisher.publish(destination, messages, queue_from(origin))

    async def body(router: Router, stop: asyncio.Event) -> None:
        receive = receiver(router, rt.sealer())
        # One queue, and one consumer, per sending region: a message that cannot be applied
        # holds up only its own stream.
        consumers = [XrConsumer(config.region_amqp_urls[r], partial(receive, r),
                                queue=queue_from(peer))
                     for r in regions for peer in sorted(config.region_amqp_urls) if peer != r]
        await asyncio.gather(XrRelay(router, regions, publish).run(stop),
                             *(c.run(stop) for c in consumers))

    try:
        _run_until_signalled(config, body)
    finally:
        publisher.close()
    return 0


def run_scheduler(config: WorkerConfig) -> int:
    install(config)
    _run_until_signalled(config, lambda router, stop: Scheduler(
        router, scheduled_jobs(config)).run(stop))
    return 0


def _run_until_signalled(config: WorkerConfig,
                         loop_body: Callable[[Router, asyncio.Event], Awaitable[None]]) -> None:
    """Run an async loop with its own router until SIGTERM or SIGINT sets its stop event."""
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        router = Router(config.topology, config.urls, pool_size=2)
        try:
            await loop_body(router, stop)
        finally:
            await router.dispose()

    asyncio.run(main())


def start_in_process(config: WorkerConfig) -> Callable[[], None]:
    """Workers, relay, scheduler and settlement inside this process on the stub broker
    (``corridor dev``); settlement messages between regions go through a ``LocalTransport``.

    Sends one FX refresh at once so rates exist from the start. Returns a function that stops
    the scheduler and the workers.
    """
    assert config.amqp_url is None, "in-process workers use the stub broker"
    worker = start_worker(config, threads=2)
    from workers.actors import refresh_fx_rates

    refresh_fx_rates.send()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def schedule() -> None:
        from workers.runtime import runtime
        from workers.settlement import LocalTransport, XrRelay, receiver

        router = Router(config.topology, config.urls, pool_size=2)
        codes = [r.code for r in config.topology.regions]
        relay = Relay(router, codes, broker_publish(worker.broker),
                      queue_depths=queue_depths(worker.broker))
        local = LocalTransport(receiver(router, runtime().sealer()))
        try:
            await asyncio.gather(Scheduler(router, scheduled_jobs(config)).run(stop),
                                 relay.run(stop), local.run(stop),
                                 XrRelay(router, codes, local.publish).run(stop))
        finally:
            await router.dispose()

    thread = threading.Thread(target=loop.run_until_complete, args=(schedule(),),
                              name="corridor-scheduler", daemon=True)
    thread.start()

    def shutdown() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=shutdown_timeout_ms / 1000)
        worker.stop(timeout=shutdown_timeout_ms)

    return shutdown
