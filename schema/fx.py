"""FX: ``fxRates``, ``fxQuote``, ``createFxQuote`` and ``executeFxQuote``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.currency import currency as lookup_currency
from payments.errors import InvalidInput
from payments.fx import display
from payments.money import parse_amount
from payments.principal import Principal
from policies.fx import FxParameters, fx_parameters
from regions import fx_quotes, fx_store
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import not_found, own_id, utc
from schema.money import Money, money
from schema.permissions import principal
from schema.transfers import Transfer, transfer_from_row


@strawberry.type(description="Units of quote per one unit of base, through the pivot.")
class FxRate:
    base: str
    quote: str
    rate: str = strawberry.field(description="Decimal string, 10 significant digits.")
    as_of: datetime
    source: str
    stale: bool = strawberry.field(description="Older than the policy's maximum age: "
                                               "quotes on it are refused.")


@strawberry.enum
class FxQuoteStatus(Enum):
    OPEN = "OPEN"
    EXECUTED = "EXECUTED"


@strawberry.type(description="A locked customer rate for a validity window.")
class FxQuote:
    id: strawberry.ID
    rate: str = strawberry.field(description="Customer rate (mid less spread), buy per sell.")
    sell: Money
    buy: Money
    expires_at: datetime
    status: FxQuoteStatus
    created_at: datetime


@strawberry.type(description="An executed quote: one journal of two transfers.")
class Conversion:
    id: strawberry.ID
    quote_id: strawberry.ID
    rate: str
    sell: Money
    buy: Money
    sell_transfer: Transfer
    buy_transfer: Transfer


def quote_from_row(row: Row[Any]) -> FxQuote:
    return FxQuote(
        id=strawberry.ID(row.id), rate=format(row.rate, "f"),
        sell=money(row.sell_minor, row.sell_currency), buy=money(row.buy_minor, row.buy_currency),
        expires_at=utc(row.expires_at), status=FxQuoteStatus(row.status),
        created_at=utc(row.created_at))


async def _rates(info: Info[Any, Any]) -> fx_store.PivotRates | None:
    return await info.context.router.read_control(fx_store.load_rates)  # type: ignore[no-any-return]


async def resolve_fx_rates(info: Info[Any, Any], base: str) -> list[FxRate]:
    """Every known rate against ``base``; an empty list before the first refresh."""
    who = principal(info)
    try:
        code = lookup_currency(base, "base").code
    except InvalidInput as exc:
        raise errors.bad_input(exc) from exc
    rates = await _rates(info)
    if rates is None or (code != rates.pivot and code not in rates.rates):
        return []
    age_s_max = fx_parameters(info.context.gate().params(who.tenant.jurisdiction)).rate_age_s_max
    now = datetime.now(UTC)
    out = []
    for quote in sorted({rates.pivot, *rates.rates} - {code}):
        r = fx_quotes.cross(rates, code, quote, now, age_s_max)
        out.append(FxRate(base=code, quote=quote, rate=display(r.rate), as_of=utc(r.as_of),
                          source=r.source, stale=r.stale))
    return out


FxQuoteResult = Annotated[FxQuote | errors.NotFound, strawberry.union("FxQuoteResult")]


async def resolve_fx_quote(info: Info[Any, Any], id: strawberry.ID) -> FxQuoteResult:
    who = principal(info)
    quote_id = own_id(who.region, str(id), "fxq", "id")
    row = await _quote_row(info, who, quote_id) if quote_id else None
    return quote_from_row(row) if row is not None else not_found("quote", str(id))


async def _quote_row(info: Info[Any, Any], who: Principal, quote_id: str) -> Row[Any] | None:
    async def body(conn: AsyncConnection) -> Row[Any] | None:
        return await fx_quotes.quote_row(conn, who, quote_id)

    return await info.context.router.read(who.region, body)  # type: ignore[no-any-return]


@strawberry.input
class CreateFxQuoteInput:
    sell_currency: str
    buy_currency: str
    sell_amount: str | None = strawberry.field(
        default=None, description="Fix what the customer sells; give this or buyAmount.")
    buy_amount: str | None = strawberry.field(
        default=None, description="Fix what the customer buys; give this or sellAmount.")
    valid_for_seconds: int | None = strawberry.field(
        default=None, description="Validity window; default 30, at most 1800.")
    idempotency_key: str


CreateFxQuoteResult = Annotated[
    FxQuote | errors.ValidationError | errors.RatesUnavailable | errors.IdempotencyConflict,
    strawberry.union("CreateFxQuoteResult"),
]


def parse_create_quote(data: CreateFxQuoteInput, params: FxParameters) -> fx_quotes.CreateFxQuote:
    key = check_key(data.idempotency_key)
    sell = lookup_currency(data.sell_currency, "sellCurrency")
    buy = lookup_currency(data.buy_currency, "buyCurrency")
    if sell.code == buy.code:
        raise InvalidInput("sellCurrency and buyCurrency must differ", "buyCurrency")
    if (data.sell_amount is None) == (data.buy_amount is None):
        raise InvalidInput("give exactly one of sellAmount and buyAmount", "sellAmount")
    valid_for_s = data.valid_for_seconds or params.quote_validity_s_default
    if data.valid_for_seconds is not None and not (
            1 <= data.valid_for_seconds <= params.quote_validity_s_max):
        raise InvalidInput(f"validForSeconds must be 1 to {params.quote_validity_s_max}",
                           "validForSeconds")
    return fx_quotes.CreateFxQuote(
        sell_currency=sell.code, buy_currency=buy.code,
        sell_minor=parse_amount(data.sell_amount, sell, "sellAmount")
        if data.sell_amount is not None else None,
        buy_minor=parse_amount(data.buy_amount, buy, "buyAmount")
        if data.buy_amount is not None else None,
        valid_for_s=valid_for_s, idempotency_key=key)


@errors.typed_errors
async def create_fx_quote(info: Info[Any, Any], input: CreateFxQuoteInput) -> CreateFxQuoteResult:
    who = principal(info)
    params = fx_parameters(info.context.gate().params(who.tenant.jurisdiction))
    spread_bps = (who.tenant.fx_spread_bps if who.tenant.fx_spread_bps is not None
                  else params.spread_bps_default)
    cmd = parse_create_quote(input, params)
    priced = fx_quotes.price(await _rates(info), cmd, spread_bps, datetime.now(UTC),
                             params.rate_age_s_max)
    response = await info.context.router.run(
        who.region, lambda conn: fx_quotes.create_quote_txn(conn, who, cmd, priced))
    row = await _quote_row(info, who, response["id"])
    assert row is not None, response
    return quote_from_row(row)


@strawberry.input
class ExecuteFxQuoteInput:
    quote_id: strawberry.ID
    sell_account_id: strawberry.ID
    buy_account_id: strawberry.ID
    idempotency_key: str


ExecuteFxQuoteResult = Annotated[
    Conversion | errors.ValidationError | errors.NotFound | errors.QuoteExpired
    | errors.QuoteAlreadyExecuted | errors.InsufficientFunds | errors.CurrencyMismatch
    | errors.AccountNotActive | errors.PolicyDenied | errors.IdempotencyConflict,
    strawberry.union("ExecuteFxQuoteResult"),
]


def parse_execute(data: ExecuteFxQuoteInput) -> fx_quotes.ExecuteFxQuote:
    key = check_key(data.idempotency_key)
    ids.parse_id(str(data.quote_id), "fxq", "quoteId")
    ids.parse_id(str(data.sell_account_id), "acc", "sellAccountId")
    ids.parse_id(str(data.buy_account_id), "acc", "buyAccountId")
    if data.sell_account_id == data.buy_account_id:
        raise InvalidInput("sellAccountId and buyAccountId must differ", "buyAccountId")
    return fx_quotes.ExecuteFxQuote(str(data.quote_id), str(data.sell_account_id),
                                    str(data.buy_account_id), key)


@errors.typed_errors
async def execute_fx_quote(
    info: Info[Any, Any], input: ExecuteFxQuoteInput
) -> ExecuteFxQuoteResult:
    who = principal(info)
    cmd = parse_execute(input)
    response = await info.context.router.run(
        who.region, lambda conn: fx_quotes.execute_quote_txn(conn, who, info.context.gate(),
                                                             cmd))
    quote = await _quote_row(info, who, response["quoteId"])
    sell_row, buy_row = await info.context.transfer_rows(
        [response["sellTransferId"], response["buyTransferId"]])
    assert quote is not None, response
    assert sell_row is not None, response
    assert buy_row is not None, response
    return Conversion(
        id=strawberry.ID(response["id"]), quote_id=strawberry.ID(quote.id),
        rate=format(quote.rate, "f"), sell=money(quote.sell_minor, quote.sell_currency),
        buy=money(quote.buy_minor, quote.buy_currency), sell_transfer=transfer_from_row(sell_row),
        buy_transfer=transfer_from_row(buy_row))


fx_rates_field = strawberry.field(resolver=resolve_fx_rates, permission_classes=[only("fxRates")])
fx_quote_field = strawberry.field(resolver=resolve_fx_quote, permission_classes=[only("fxQuote")])
create_fx_quote_field = strawberry.mutation(resolver=create_fx_quote,
                                            permission_classes=[only("createFxQuote")])
execute_fx_quote_field = strawberry.mutation(resolver=execute_fx_quote,
                                             permission_classes=[only("executeFxQuote")])
