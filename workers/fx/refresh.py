"""One FX refresh: fetch from the provider, then write the snapshot in one transaction.

The fetch happens before the transaction, so a worker killed at any point leaves either nothing
or the whole snapshot; the inbox row written with the snapshot makes a redelivered message a
no-op. A failing provider is recorded and the last good rates stay in use.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncConnection

from policies import catalog
from policies.fx import refresh_jump_bps_max
from regions import fx_store, telemetry
from regions.policy_gate import PolicyGate
from regions.router import Router
from workers.fx.providers import ProviderError, RateProvider

_log = logging.getLogger(__name__)
_meter = metrics.get_meter("corridor.workers.fx")
refreshes = _meter.create_counter("corridor.fx.refreshes", description="FX refreshes by outcome")
rates_held = _meter.create_counter("corridor.fx.rates_held",
                                   description="Rates held back for jumping too far")


@dataclass(frozen=True, slots=True)
class RefreshReport:
    status: str
    written: int = 0
    held: tuple[str, ...] = ()
    error: str | None = None


async def _failed(router: Router, source: str, message_id: str, error: str) -> RefreshReport:
    await router.run_control(lambda c: fx_store.record_failure(c, source, message_id, error))
    refreshes.add(1, {"status": "failed", "source": source})
    _log.warning("fx refresh failed: source=%s message=%s error=%s", source, message_id, error)
    return RefreshReport("failed", error=error)


async def refresh(router: Router, provider: RateProvider, message_id: str,
                  gate: PolicyGate) -> RefreshReport:
    async def applied(conn: AsyncConnection) -> bool:
        return await fx_store.was_applied(conn, fx_store.refresh_consumer, message_id)

    if await router.read_control(applied):
        _log.info("fx refresh skipped: message %s was already applied", message_id)
        return RefreshReport("duplicate")
    try:
        snap = await asyncio.to_thread(provider.fetch)
    except ProviderError as exc:
        return await _failed(router, provider.name, message_id, str(exc))
    stored = fx_store.Snapshot(snap.pivot, dict(snap.texts), snap.as_of, snap.source)
    jump_bps_max = refresh_jump_bps_max(gate.params(code) for code in catalog.codes())

    async def body(conn: AsyncConnection) -> fx_store.RefreshOutcome:
        return await fx_store.write_snapshot(conn, stored, message_id, jump_bps_max)

    try:
        outcome = await router.run_control(body)
    except fx_store.PivotChanged as exc:
        return await _failed(router, snap.source, message_id, str(exc))
    if outcome.duplicate:
        _log.info("fx refresh skipped: message %s was already applied", message_id)
        return RefreshReport("duplicate")
    refreshes.add(1, {"status": "ok", "source": snap.source})
    telemetry.set_gauge_since("corridor.fx.rate_age", snap.as_of.timestamp(), source=snap.source)
    if outcome.held:
        rates_held.add(len(outcome.held), {"source": snap.source})
    _log.info("fx refresh ok: source=%s as_of=%s written=%d held=%s message=%s", snap.source,
              snap.as_of.isoformat(), outcome.written, ",".join(outcome.held) or "-", message_id)
    return RefreshReport("ok", outcome.written, tuple(outcome.held))
