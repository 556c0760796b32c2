"""Global FX reference rates in the control plane: the refresh writes them, quoting reads them.

Rates are stored against the pivot currency (units per one pivot unit); cross rates are derived
on read. A rate that jumps more than the allowed amount against the stored one is put in
``fx_rates_held`` and the stored (last good) rate stays in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.fx import jump_exceeds
from regions.tables import fx_rates, fx_rates_held, fx_refreshes, inbox

refresh_consumer = "fx.refresh"
error_text_length_max = 500


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store needs of a provider's snapshot (kept free of the worker package)."""

    pivot: str
    texts: dict[str, str]
    as_of: datetime
    source: str


class PivotChanged(Exception):
    """A snapshot against another pivot than the stored rates: refused, last good rates kept."""


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    refresh_id: str | None
    written: int
    held: list[str]
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredRate:
    rate: Fraction
    as_of: datetime
    source: str


@dataclass(frozen=True, slots=True)
class PivotRates:
    pivot: str
    rates: dict[str, StoredRate]


async def was_applied(conn: AsyncConnection, consumer: str, message_id: str) -> bool:
    """Whether the inbox already holds the message (a read; the write is ``already_processed``)."""
    found = await conn.execute(select(inbox.c.message_id).where(
        inbox.c.consumer == consumer, inbox.c.message_id == message_id))
    return found.first() is not None


async def already_processed(conn: AsyncConnection, consumer: str, message_id: str) -> bool:
    """Record the message in the inbox; True when it was recorded before (a redelivery)."""
    inserted = await conn.execute(
        insert(inbox).values(consumer=consumer, message_id=message_id)
        .on_conflict_do_nothing().returning(inbox.c.message_id))
    return inserted.first() is None


async def write_snapshot(
    conn: AsyncConnection, snap: Snapshot, message_id: str, jump_bps_max: int
) -> RefreshOutcome:
    """Apply one snapshot exactly once per message id, holding rates that jumped."""
    if await already_processed(conn, refresh_consumer, message_id):
        return RefreshOutcome(None, 0, [], duplicate=True)
    stored = (await conn.execute(
        select(fx_rates.c.base, fx_rates.c.quote, fx_rates.c.rate).with_for_update())).all()
    other = {r.base for r in stored} - {snap.pivot}
    if other:
        raise PivotChanged(f"{snap.source} quotes against {snap.pivot}, the stored rates are "
                           f"against {sorted(other)[0]}; refusing to mix pivots")
    current = {r.quote: Fraction(r.rate) for r in stored}
    held: list[str] = []
    for code, text in sorted(snap.texts.items()):
        new = Fraction(Decimal(text))
        previous = current.get(code)
        if previous is not None and jump_exceeds(previous, new, jump_bps_max):
            held.append(code)
            values = {"rate": Decimal(text), "previous_rate": Decimal(previous.numerator)
                      / Decimal(previous.denominator), "as_of": snap.as_of, "source": snap.source}
            await conn.execute(insert(fx_rates_held).values(base=snap.pivot, quote=code, **values)
                               .on_conflict_do_update(index_elements=["base", "quote"],
                                                      set_=values))
            continue
        values = {"rate": Decimal(text), "as_of": snap.as_of, "source": snap.source}
        await conn.execute(insert(fx_rates).values(base=snap.pivot, quote=code, **values)
                           .on_conflict_do_update(index_elements=["base", "quote"],
                                                  set_={**values, "refreshed_at": func.now()}))
    refresh_id = ids.new_id("fxr", "global")
    written = len(snap.texts) - len(held)
    await conn.execute(insert(fx_refreshes).values(
        id=refresh_id, message_id=message_id, source=snap.source, status="ok",
        rates_written=written, rates_held=len(held)))
    return RefreshOutcome(refresh_id, written, held, duplicate=False)


async def record_failure(conn: AsyncConnection, source: str, message_id: str, error: str) -> str:
    refresh_id = ids.new_id("fxr", "global")
    await conn.execute(insert(fx_refreshes).values(
        id=refresh_id, message_id=message_id, source=source, status="failed",
        error=error[:error_text_length_max]))
    return refresh_id


async def load_rates(conn: AsyncConnection) -> PivotRates | None:
    """The stored rates against their pivot (one pivot at a time), or None before any refresh."""
    rows = (await conn.execute(select(fx_rates))).all()
    if not rows:
        return None
    pivots = {r.base for r in rows}
    assert len(pivots) == 1, pivots
    return PivotRates(pivots.pop(), {r.quote: StoredRate(Fraction(r.rate), r.as_of, r.source)
                                     for r in rows})
