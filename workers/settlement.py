"""The settlement process: publishes each region's messages for other regions and applies the
messages other regions sent it (``corridor settlement``).

``XrRelay`` holds a region's lease (one relay per region at a time, as the outbox relay), reads
each stream's unpublished messages in order (and those unacknowledged past
``regions.xr.resend_after_s``) and publishes them to the peer's vhost with publisher confirms,
then marks them published. ``receive`` parses a delivered body and applies it through
``regions.xr.receive_txn`` on the destination region, where the inbox makes a duplicate or an
early arrival harmless. A body that is not a settlement message for the region is dropped and
logged: its sender's resend and the stream's numbering make sure nothing is skipped over.

``LocalTransport`` carries messages inside one process for ``corridor dev`` (no RabbitMQ); a
message lost with the process is published again by the relay's resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import netting, reconciliation, settlement, telemetry, xr
from regions.router import Router
from regions.sealing import Sealer
from workers.scheduler import LeaseKeeper, holder_id, release_lease, take_lease

lease_s = 15
idle_s = 0.2
local_retry_s = 1.0
local_queue_max = 10_000

Publish = Callable[[str, str, Sequence[tuple[str, bytes]]], None]
"""Publish (message id, body) pairs, in order, from an origin to a destination region; returns
once the broker confirmed them all, raises otherwise."""
Receive = Callable[[str, bytes], Awaitable[None]]
"""Apply one delivered body in the named destination region (raises to have it redelivered)."""

_log = logging.getLogger(__name__)


class XrRelay:
    def __init__(self, router: Router, regions: Sequence[str], publish: Publish,
                 holder: str | None = None) -> None:
        self.router = router
        self.regions = list(regions)
        self.publish = publish
        self.holder = holder or holder_id()
        self._leases = LeaseKeeper(router, self.holder, lease_s)

    async def holds(self, region: str) -> bool:
        return await self._leases.holds(f"xr-relay.{region}")

    async def relay_region(self, region: str) -> int:
        """Publish up to one batch per stream of the region, or a bare acknowledgement where
        the region owes one; returns how many messages. A peer whose broker fails is logged
        and left for the next round; the others go on."""
        if not await self.holds(region):
            return 0

        async def streams(conn: AsyncConnection) -> list[xr.Stream]:
            return await xr.streams(conn, region)

        moved = 0
        for stream in await self.router.read(region, streams):
            telemetry.set_gauge("corridor.settlement.unapplied", stream.waiting, region=region,
                                peer=stream.peer)
            try:
                moved += await self._relay_stream(region, stream.peer)
            except Exception:  # noqa: BLE001 - one peer's outage must not hold up the others
                _log.exception("settlement relay %s -> %s failed; retrying", region, stream.peer)
        return moved

    async def _relay_stream(self, region: str, peer: str) -> int:
        async def pending(conn: AsyncConnection) -> tuple[list[xr.Envelope], xr.Envelope | None]:
            return (await xr.to_publish(conn, region, peer), await xr.ack_due(conn, region, peer))

        batch, ack = await self.router.read(region, pending)
        sent = batch or ([ack] if ack is not None else [])
        if not sent:
            return 0
        await asyncio.to_thread(self.publish, region, peer, [(e.id, e.to_json()) for e in sent])

        async def mark(conn: AsyncConnection) -> None:
            await xr.mark_published(conn, region, peer, [e.seq for e in batch],
                                    max(e.ack for e in sent))

        await self.router.run(region, mark)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            moved = 0
            for region in self.regions:
                try:
                    moved += await self.relay_region(region)
                except Exception:  # noqa: BLE001 - the relay outlives a broker or database outage
                    _log.exception("settlement relay of %s failed; retrying", region)
            if moved == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_s)


def receiver(router: Router, sealer: Sealer) -> Receive:
    """Apply delivered bodies in their destination region, each in one transaction; a message
    whose effect fails is recorded on its inbox row before the error goes back to the consumer
    (which delivers it again later)."""
    regions = frozenset(r.code for r in router.topology.regions)

    async def receive(region: str, body: bytes) -> None:
        try:
            envelope = xr.parse(body, region, regions)
        except xr.MalformedMessage as exc:
            _log.error("dropped a message delivered to %s: %s", region, exc)
            return

        async def apply(conn: AsyncConnection) -> int:
            return await xr.receive_txn(conn, envelope, partial(_apply, sealer=sealer))

        try:
            await router.run(region, apply)
        except xr.ApplyFailed as failed:
            async def record(conn: AsyncConnection, failed: xr.ApplyFailed = failed) -> None:
                await xr.record_failure(conn, envelope, failed)

            with contextlib.suppress(Exception):
                await router.run(region, record)
            raise

    return receive


async def _apply(conn: AsyncConnection, envelope: xr.Envelope, *, sealer: Sealer) -> None:
    await settlement.apply(conn, sealer, envelope)


class LocalTransport:
    """Messages between regions inside one process: a queue per destination, drained by
    ``run``; a body that fails is tried again after ``local_retry_s``."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(local_queue_max)

    def publish(self, origin: str, destination: str,
                messages: Sequence[tuple[str, bytes]]) -> None:
        """Called from the relay's worker thread: hand the bodies to the loop's queue."""
        assert self._loop is not None, "LocalTransport.run is not running"
        for _, body in messages:
            asyncio.run_coroutine_threadsafe(self._queue.put((destination, body)),
                                             self._loop).result()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                destination, body = await asyncio.wait_for(self._queue.get(), timeout=idle_s)
            except TimeoutError:
                continue
            while not stop.is_set():
                try:
                    await self.receive(destination, body)
                    break
                except Exception:  # noqa: BLE001 - a region down: try again, in order
                    _log.warning("applying a message in %s failed; retrying", destination,
                                 exc_info=True)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=local_retry_s)


net_lease_s = 300
"""Held by one netting run of a pair at a time; longer than a run takes."""


async def net_region(router: Router, region: str, window_s: int, holder: str,
                     now: datetime | None = None) -> list[str]:
    """Net every closed window of every pair this region coordinates; the batches made.

    Each pair's run holds the lease ``settlement.net.<a>.<b>`` in the control plane, so a second
    scheduler (or a slow run overlapping the next) nets nothing twice; the batch ids, unique per
    window, would refuse a second batch anyway.
    """
    end = netting.window_end(now or datetime.now(UTC), window_s)
    made: list[str] = []
    for peer in sorted(r.code for r in router.topology.regions):
        if peer == region or netting.coordinator(region, peer) != region:
            continue

        name = f"settlement.net.{region}.{peer}"

        async def lease(conn: AsyncConnection, name: str = name) -> bool:
            return await take_lease(conn, name, holder, net_lease_s) is not None

        async def release(conn: AsyncConnection, name: str = name) -> None:
            await release_lease(conn, name, holder)

        if not await router.run_control(lease):
            continue
        try:
            made += await _net_pair(router, region, peer, end, window_s)
        finally:
            await router.run_control(release)
    if made:
        _log.info("netting in %s made %d batch(es): %s", region, len(made), ", ".join(made))
    return made


async def _net_pair(router: Router, region: str, peer: str, end: datetime, window_s: int
                    ) -> list[str]:
    async def open_(conn: AsyncConnection) -> list[str]:
        return await netting.open_currencies(conn, region, peer, end)

    made = []
    for currency in await router.read(region, open_):
        while True:
            async def one(conn: AsyncConnection, currency: str = currency) -> str | None:
                return await netting.net_txn(conn, region, peer, currency, end, window_s)

            bid = await router.run(region, one)
            if bid is None:
                break
            made.append(bid)
    return made


async def reconcile_all(router: Router) -> list[reconciliation.Report]:
    """Reconcile every pair and currency with obligations; each break is logged and the
    ``corridor.settlement.breaks`` gauge set per pair and currency."""
    reports = []
    for a, b, currency in await reconciliation.pairs(router):
        report = await reconciliation.reconcile(router, a, b, currency)
        telemetry.set_gauge("corridor.settlement.breaks", len(report.breaks), pair=f"{a}/{b}",
                            currency=currency)
        for brk in report.breaks:
            _log.warning("settlement break %s/%s %s: %s %s", a, b, currency, brk.kind,
                         brk.detail)
        reports.append(report)
    return reports
