"""Helpers to load FX rates straight into the control plane (no broker), for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import fx_store
from regions.router import Router
from regions.tables import fx_rates, fx_rates_held

sample_rates = {"USD": "1.0532", "GBP": "0.83215", "JPY": "162.17", "SGD": "1.4155",
                "CNY": "7.6259", "KWD": "0.3245", "CHF": "0.9311"}


async def load_rates(router: Router, texts: dict[str, str] | None = None,
                     as_of: datetime | None = None, *, replace: bool = True,
                     jump_bps_max: int = 1_000_000) -> fx_store.RefreshOutcome:
    """Write a snapshot against EUR, by default replacing every stored rate."""
    snap = fx_store.Snapshot("EUR", dict(texts or sample_rates), as_of or datetime.now(UTC),
                             "test")

    async def body(conn: AsyncConnection) -> fx_store.RefreshOutcome:
        if replace:
            await conn.execute(delete(fx_rates))
            await conn.execute(delete(fx_rates_held))
        return await fx_store.write_snapshot(conn, snap, str(uuid.uuid4()), jump_bps_max)

    return await router.run_control(body)
