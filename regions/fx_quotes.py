"""FX quotes and conversions in the tenant's home region.

A quote locks a customer rate for a validity window. Executing it posts one journal of two
transfers (four entries) through the region's FX liquidity accounts, and marks the quote
executed in the same transaction, so a quote converts at most once. Liquidity accounts are split
into shards so conversions in one currency do not all queue on one row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.currency import currency
from payments.errors import DomainError, NotFound
from payments.fx import (
    QuoteAlreadyExecuted,
    QuoteAmounts,
    QuoteExpired,
    RatesUnavailable,
    cross_rate,
    display,
    quote,
)
from payments.principal import Principal
from policies.model import Kind, Operation
from regions import idempotency
from regions.events import Event
from regions.fx_store import PivotRates
from regions.ledger_store import PlannedTransfer, pick_shard, post_journal, sharded_account
from regions.policy_gate import PolicyGate, decide
from regions.tables import fx_quotes

rate_decimal_places = 12

Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateFxQuote:
    sell_currency: str
    buy_currency: str
    sell_minor: int | None
    buy_minor: int | None
    valid_for_s: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PricedQuote:
    """The quote's price, or the reason it cannot be priced (raised only for a new request)."""

    amounts: QuoteAmounts | None
    spread_bps: int
    rates_as_of: datetime | None
    refusal: DomainError | None = None


@dataclass(frozen=True, slots=True)
class ExecuteFxQuote:
    quote_id: str
    sell_account_id: str
    buy_account_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class CrossRate:
    base: str
    quote: str
    rate: Fraction
    as_of: datetime
    source: str
    stale: bool


def cross(rates: PivotRates, base: str, quote: str, now: datetime, age_s_max: int) -> CrossRate:
    """``quote`` per ``base`` through the pivot; as old as the older of its two legs."""
    legs = [rates.rates[c] for c in (base, quote) if c != rates.pivot and c in rates.rates]
    mid = cross_rate({c: r.rate for c, r in rates.rates.items()}, rates.pivot, base, quote)
    as_of = min(leg.as_of for leg in legs)
    source = "+".join(sorted({leg.source for leg in legs}))
    stale = (now - as_of).total_seconds() > age_s_max
    return CrossRate(base, quote, mid, as_of, source, stale)


def price(rates: PivotRates | None, cmd: CreateFxQuote, spread_bps: int, now: datetime,
          age_s_max: int) -> PricedQuote:
    """Price a quote request, or say why it cannot be priced."""
    try:
        if rates is None:
            raise RatesUnavailable("no FX rates have been loaded yet")
        rate = cross(rates, cmd.sell_currency, cmd.buy_currency, now, age_s_max)
        if rate.stale:
            raise RatesUnavailable(
                f"the {cmd.sell_currency}/{cmd.buy_currency} rate is stale "
                f"(as of {rate.as_of.astimezone(UTC).isoformat()}); quotes resume when "
                "rates refresh")
        amounts = quote(currency(cmd.sell_currency), currency(cmd.buy_currency), rate.rate,
                        spread_bps, sell_minor=cmd.sell_minor, buy_minor=cmd.buy_minor)
    except DomainError as exc:
        return PricedQuote(None, spread_bps, None, exc)
    return PricedQuote(amounts, spread_bps, rate.as_of)


def _decimal(rate: Fraction) -> Decimal:
    value = Decimal(rate.numerator) / Decimal(rate.denominator)
    return value.quantize(Decimal(1).scaleb(-rate_decimal_places))


async def create_quote_txn(
    conn: AsyncConnection, who: Principal, cmd: CreateFxQuote, priced: PricedQuote
) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        if priced.refusal is not None:
            raise priced.refusal
        assert priced.amounts is not None
        assert priced.rates_as_of is not None
        quote_id = ids.new_id("fxq", who.region)
        await conn.execute(insert(fx_quotes).values(
            region=who.region, id=quote_id, tenant_id=who.tenant.id,
            sell_currency=cmd.sell_currency, buy_currency=cmd.buy_currency,
            sell_minor=priced.amounts.sell_minor, buy_minor=priced.amounts.buy_minor,
            # The customer rate is stored as shown: rounded once, from the exact fraction.
            mid_rate=_decimal(priced.amounts.mid), rate=Decimal(display(priced.amounts.rate)),
            spread_bps=priced.spread_bps, rates_as_of=priced.rates_as_of,
            expires_at=func.now() + timedelta(seconds=cmd.valid_for_s), status="OPEN"))
        return {"type": "FxQuote", "id": quote_id}, [
            Event("fx.quote.created", {"quote_id": quote_id}, quote_id)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "createFxQuote",
                                  _fields(cmd), effect)


def _fields(cmd: CreateFxQuote | ExecuteFxQuote) -> dict[str, Any]:
    """The request as hashed for idempotency: every field but the key."""
    body = asdict(cmd)
    body.pop("idempotency_key")
    return body


async def quote_row(conn: AsyncConnection, who: Principal, quote_id: str,
                    *, lock: bool = False) -> Row[Any] | None:
    q = select(fx_quotes).where(fx_quotes.c.region == who.region,
                                fx_quotes.c.tenant_id == who.tenant.id, fx_quotes.c.id == quote_id)
    if lock:
        # The database's clock after the lock wait decides expiry, not an API server's clock.
        q = q.add_columns(func.clock_timestamp().label("db_now")).with_for_update()
    return (await conn.execute(q)).first()


async def execute_quote_txn(
    conn: AsyncConnection, who: Principal, gate: PolicyGate, cmd: ExecuteFxQuote
) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        quote = await quote_row(conn, who, cmd.quote_id, lock=True)
        if quote is None:
            raise NotFound("quote", cmd.quote_id)
        if quote.status == "EXECUTED":
            raise QuoteAlreadyExecuted(f"quote {cmd.quote_id!r} was already executed")
        if quote.expires_at <= quote.db_now:
            raise QuoteExpired(f"quote {cmd.quote_id!r} expired at "
                               f"{quote.expires_at.astimezone(UTC).isoformat()}")
        ruling = await decide(conn, gate, Operation(
            kind=Kind.FX_CONVERSION, tenant_id=who.tenant.id,
            jurisdiction=who.tenant.jurisdiction, home_region=who.region,
            amount_minor=quote.buy_minor, currency=quote.buy_currency,
            account_id=cmd.sell_account_id, sell_currency=quote.sell_currency),
            subject_id=cmd.quote_id, actor=who.actor, reviewable=False)
        shard = pick_shard()
        liq_sell = await sharded_account(conn, who.region, "fx_liquidity",
                                         quote.sell_currency, shard)
        liq_buy = await sharded_account(conn, who.region, "fx_liquidity", quote.buy_currency,
                                        shard)
        outcome = await post_journal(conn, who.region, who.tenant.id, "fx_conversion", [
            PlannedTransfer(cmd.sell_account_id, liq_sell, quote.sell_minor,
                            quote.sell_currency, f"fx {cmd.quote_id}"),
            PlannedTransfer(liq_buy, cmd.buy_account_id, quote.buy_minor, quote.buy_currency,
                            f"fx {cmd.quote_id}"),
        ], internal_ids=[liq_sell, liq_buy])
        sell_transfer, buy_transfer = outcome.transfer_ids
        await conn.execute(update(fx_quotes).where(
            fx_quotes.c.region == who.region, fx_quotes.c.id == cmd.quote_id).values(
            status="EXECUTED", journal_id=outcome.journal_id, executed_at=datetime.now(UTC)))
        return {"type": "Conversion", "id": outcome.journal_id, "quoteId": cmd.quote_id,
                "sellTransferId": sell_transfer, "buyTransferId": buy_transfer}, [Event(
            "fx.conversion.executed", {"quote_id": cmd.quote_id,
                                       "journal_id": outcome.journal_id}, cmd.quote_id),
            ruling.event]

    return await idempotency.once(conn, who, cmd.idempotency_key, "executeFxQuote",
                                  _fields(cmd), effect)
