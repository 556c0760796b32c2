"""Usage counters that daily, monthly and yearly limits and velocity are checked against.

One row per (tenant, meter, scope, scope id, period, period start), in the region's own
partition. The rows an operation needs are created if missing and locked before the rules
read them, so two concurrent payouts of one tenant cannot both pass a limit that only one of
them fits; the counters are advanced in the same transaction as the operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from policies.model import Period, Scope, Usage
from regions.tables import limit_usage

Key = tuple[Scope, Period]


def period_start(period: Period, now: datetime) -> datetime:
    """The start (UTC) of the calendar hour, day, month or year that ``now`` falls in."""
    t = now.astimezone(UTC)
    if period is Period.HOUR:
        return t.replace(minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.MONTH:
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _rows(region: str, tenant_id: str, meter: str, scope_ids: Mapping[Scope, str],
          keys: Iterable[Key], now: datetime) -> list[dict[str, object]]:
    return [{"region": region, "tenant_id": tenant_id, "meter": meter, "scope": s.value,
             "scope_id": scope_ids[s], "period": p.value, "period_start": period_start(p, now)}
            for s, p in keys if s in scope_ids]


async def lock(conn: AsyncConnection, region: str, tenant_id: str, meter: str,
               scope_ids: Mapping[Scope, str], keys: Iterable[Key], currency: str,
               now: datetime) -> dict[Key, Usage]:
    """The counters for ``keys``, created at zero if missing, locked until commit."""
    rows = sorted(_rows(region, tenant_id, meter, scope_ids, keys, now),
                  key=lambda r: (str(r["scope"]), str(r["period"])))
    if not rows:
        return {}
    await conn.execute(insert(limit_usage).on_conflict_do_nothing(),
                       [{**r, "currency": currency, "amount_minor": 0, "count": 0}
                        for r in rows])
    cols = (limit_usage.c.scope, limit_usage.c.scope_id, limit_usage.c.period,
            limit_usage.c.period_start)
    found = (await conn.execute(select(limit_usage).where(
        limit_usage.c.region == region, limit_usage.c.tenant_id == tenant_id,
        limit_usage.c.meter == meter,
        tuple_(*cols).in_([(r["scope"], r["scope_id"], r["period"], r["period_start"])
                           for r in rows]))
        .order_by(*cols).with_for_update())).all()
    return {(Scope(r.scope), Period(r.period)): Usage(r.amount_minor, r._mapping["count"])
            for r in found}


_advance = (update(limit_usage)
            .where(limit_usage.c.region == bindparam("b_region"),
                   limit_usage.c.tenant_id == bindparam("b_tenant_id"),
                   limit_usage.c.meter == bindparam("b_meter"),
                   limit_usage.c.scope == bindparam("b_scope"),
                   limit_usage.c.scope_id == bindparam("b_scope_id"),
                   limit_usage.c.period == bindparam("b_period"),
                   limit_usage.c.period_start == bindparam("b_period_start"))
            .values(amount_minor=limit_usage.c.amount_minor + bindparam("b_amount"),
                    count=limit_usage.c.count + 1))


async def advance(conn: AsyncConnection, region: str, tenant_id: str, meter: str,
                  scope_ids: Mapping[Scope, str], keys: Iterable[Key], amount_minor: int,
                  now: datetime) -> None:
    rows = _rows(region, tenant_id, meter, scope_ids, keys, now)
    if rows:
        await conn.execute(_advance, [{f"b_{k}": v for k, v in r.items()}
                                      | {"b_amount": amount_minor} for r in rows])
