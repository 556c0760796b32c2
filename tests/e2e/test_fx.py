"""FX end to end over GraphQL-over-HTTP: rates, quotes, conversions, errors and roles.

FX rates are global (one control plane for every test), so each test loads the rates it needs
first. Expected amounts and rates are computed here, independently of ``payments.fx``, with
exact fractions and the documented rule: the customer rate is ``mid * (10000 - spread) / 10000``;
what the customer buys is floored, what the customer sells is ceiled, at the minor unit.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.principal import Environment, Role
from regions import commands, tenants
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.topology import Topology
from tests.conftest import officer_scope, test_pepper
from tests.e2e.conftest import MakePartner, Partner
from tests.fx_helpers import load_rates

# EUR-pivot rates (units per 1 EUR), as a provider would send them.
RATES = {"USD": "1.0532", "GBP": "0.83215", "JPY": "162.17", "SGD": "1.4155",
         "CNY": "7.6259", "KWD": "0.3245", "CHF": "0.9311"}
# Minor-unit exponents, written out here rather than read from the product.
EXPONENT = {"EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "SGD": 2, "CNY": 2, "KWD": 3, "CHF": 2}
SPREAD_DEFAULT_BPS = 50
RATE_AGE_S_MAX = 3_600

RATES_Q = """query($b: String!) { fxRates(base: $b) { base quote rate asOf source stale } }"""
QUOTE = """mutation($i: CreateFxQuoteInput!) { createFxQuote(input: $i) {
  __typename
  ... on FxQuote { id rate sell { amount currency } buy { amount currency } expiresAt status
                   createdAt }
  ... on Error { code message }
  ... on ValidationError { field }
  ... on IdempotencyConflict { idempotencyKey } } }"""
GET_QUOTE = """query($id: ID!) { fxQuote(id: $id) {
  __typename
  ... on FxQuote { id rate sell { amount currency } buy { amount currency } expiresAt status }
  ... on NotFound { code message } } }"""
EXECUTE = """mutation($i: ExecuteFxQuoteInput!) { executeFxQuote(input: $i) {
  __typename
  ... on Conversion { id quoteId rate sell { amount currency } buy { amount currency }
    sellTransfer { id fromAccountId toAccountId amount { amount currency } status }
    buyTransfer { id fromAccountId toAccountId amount { amount currency } status } }
  ... on Error { code message }
  ... on ValidationError { field }
  ... on InsufficientFunds { accountId }
  ... on CurrencyMismatch { accountId }
  ... on IdempotencyConflict { idempotencyKey } } }"""
BALANCE = """query($id: ID!) { account(id: $id) { __typename
  ... on Account { currency balance { posted { amount currency } available { amount } } } } }"""
ENTRIES = """query($id: ID!) { account(id: $id) { ... on Account {
  entries(first: 10) { edges { node { transferId side amount { amount currency } } } } } } }"""


# --- independent arithmetic -------------------------------------------------------------------

def pivot(code: str) -> Fraction:
    return Fraction(1) if code == "EUR" else Fraction(Decimal(RATES[code]))


def mid(sell: str, buy: str) -> Fraction:
    """Units of ``buy`` per unit of ``sell`` through EUR."""
    return pivot(buy) / pivot(sell)


def customer(sell: str, buy: str, spread_bps: int = SPREAD_DEFAULT_BPS) -> Fraction:
    return mid(sell, buy) * (10_000 - spread_bps) / 10_000


def sig10(value: Fraction) -> str:
    """``value`` with 10 significant digits (half-even), trailing zeros kept."""
    assert value > 0
    e = 0
    while value >= Fraction(10) ** (e + 1):
        e += 1
    while value < Fraction(10) ** e:
        e -= 1
    n = round(value / Fraction(10) ** (e - 9))
    if n == 10**10:
        n, e = n // 10, e + 1
    return format(Decimal(n).scaleb(e - 9), "f")


def to_minor(amount: str, code: str) -> int:
    minor = Fraction(Decimal(amount)) * 10 ** EXPONENT[code]
    assert minor.denominator == 1, (amount, code)
    return int(minor)


def to_text(minor: int, code: str) -> str:
    return format(Decimal(minor).scaleb(-EXPONENT[code]), "f")


def expected_minor(sell: str, buy: str, *, sell_amount: str | None = None,
                   buy_amount: str | None = None,
                   spread_bps: int = SPREAD_DEFAULT_BPS) -> tuple[int, int]:
    """(sell minor, buy minor) by the documented rule, in major units then back to minor."""
    rate = customer(sell, buy, spread_bps)
    if sell_amount is not None:
        bought_major = Fraction(Decimal(sell_amount)) * rate
        return to_minor(sell_amount, sell), (bought_major * 10 ** EXPONENT[buy]).__floor__()
    assert buy_amount is not None
    sold_major = Fraction(Decimal(buy_amount)) / rate
    return (sold_major * 10 ** EXPONENT[sell]).__ceil__(), to_minor(buy_amount, buy)


# --- helpers ----------------------------------------------------------------------------------

def ok(out: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in out, out
    data: dict[str, Any] = out["data"]
    return data


def top_level_code(out: dict[str, Any]) -> str:
    assert out.get("errors"), out
    code: str = out["errors"][0]["extensions"]["code"]
    return code


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


async def fresh_rates(router: Router, **kw: Any) -> None:
    await load_rates(router, RATES, **kw)


async def quote(p: Partner, key: str, sell: str, buy: str, *, sell_amount: str | None = None,
                buy_amount: str | None = None, **extra: Any) -> dict[str, Any]:
    i: dict[str, Any] = {"sellCurrency": sell, "buyCurrency": buy, "idempotencyKey": key}
    if sell_amount is not None:
        i["sellAmount"] = sell_amount
    if buy_amount is not None:
        i["buyAmount"] = buy_amount
    i.update(extra)
    result: dict[str, Any] = ok(await p.gql(QUOTE, {"i": i}))["createFxQuote"]
    return result


async def open_quote(p: Partner, key: str, sell: str, buy: str, **kw: Any) -> dict[str, Any]:
    q = await quote(p, key, sell, buy, **kw)
    assert q["__typename"] == "FxQuote", q
    return q


async def execute_raw(p: Partner, quote_id: str, sell_acc: str, buy_acc: str,
                      key: str) -> dict[str, Any]:
    """The whole response body, for tests that check effects before the result's type."""
    return await p.gql(EXECUTE, {"i": {"quoteId": quote_id, "sellAccountId": sell_acc,
                                       "buyAccountId": buy_acc, "idempotencyKey": key}})


async def execute(p: Partner, quote_id: str, sell_acc: str, buy_acc: str,
                  key: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(await execute_raw(p, quote_id, sell_acc, buy_acc,
                                                  key))["executeFxQuote"]
    return result


async def balance(p: Partner, account_id: str) -> str:
    acc = ok(await p.gql(BALANCE, {"id": account_id}))["account"]
    assert acc["__typename"] == "Account", acc
    assert acc["balance"]["posted"]["amount"] == acc["balance"]["available"]["amount"], acc
    amount: str = acc["balance"]["posted"]["amount"]
    return amount


async def balances(p: Partner) -> dict[str, str]:
    return {a: await balance(p, a) for a in p.accounts}


async def get_quote(p: Partner, quote_id: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(await p.gql(GET_QUOTE, {"id": quote_id}))["fxQuote"]
    return result


async def rows(router: Router, region: str, sql: str, **params: Any) -> list[Any]:
    async def body(conn: AsyncConnection) -> list[Any]:
        return list((await conn.execute(text(sql), params)).all())

    return await router.run(region, body)


async def tenant_quote_rows(router: Router, p: Partner) -> list[Any]:
    return await rows(router, p.region,
                      "SELECT id, status, journal_id FROM fx_quotes "
                      "WHERE region = :r AND tenant_id = :t", r=p.region, t=p.tenant_id)


async def tenant_fx_journals(router: Router, p: Partner) -> list[str]:
    found = await rows(router, p.region,
                       "SELECT id FROM journals WHERE region = :r AND tenant_id = :t "
                       "AND kind = 'fx_conversion'", r=p.region, t=p.tenant_id)
    return [r.id for r in found]


async def used_keys(router: Router, p: Partner) -> list[str]:
    found = await rows(router, p.region,
                       "SELECT key FROM idempotency_keys WHERE region = :r AND tenant_id = :t",
                       r=p.region, t=p.tenant_id)
    return [r.key for r in found]


async def liquidity(router: Router, region: str) -> dict[str, int]:
    """Net posted balance (credits - debits) of the region's FX liquidity accounts per currency."""
    found = await rows(router, region,
                       "SELECT currency, sum(credits_posted - debits_posted) AS net FROM accounts "
                       "WHERE region = :r AND kind = 'internal' AND purpose LIKE 'fx_liquidity.%' "
                       "GROUP BY currency", r=region)
    return {r.currency: int(r.net) for r in found}


async def fund(router: Router, p: Partner, account_id: str, minor: int, currency: str) -> None:
    async def body(conn: AsyncConnection) -> None:
        await commands.fund_account_txn(conn, p.region, p.tenant_id, account_id, minor,
                                        currency, "test")

    await router.run(p.region, body)


async def extra_key(router: Router, p: Partner, role: Role) -> str:
    async def body(conn: AsyncConnection) -> str:
        return (await tenants.create_api_key(conn, test_pepper, p.tenant_id, role,
                                             officer_scope(role, "EU"))).key

    return await router.run_control(body)


def without_ids(message: str, *idents: str) -> str:
    for ident in idents:
        message = message.replace(ident, "<id>")
    return message


# --- 1. fxRates -------------------------------------------------------------------------------

def test_sig10_helper_matches_hand_worked_values() -> None:
    assert sig10(Fraction(Decimal("1.0532"))) == "1.053200000"
    assert sig10(Fraction(Decimal("162.17")) / Fraction(Decimal("1.0532"))) == "153.9783517"
    assert sig10(Fraction(999_999_999_99, 10**10)) == "10.00000000"


async def test_fx_rates_cross_through_the_eur_pivot(router: Router,
                                                     make_partner: MakePartner) -> None:
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    await fresh_rates(router, as_of=as_of)
    p = await make_partner("EU")
    got = ok(await p.gql(RATES_Q, {"b": "USD"}))["fxRates"]
    by_quote = {r["quote"]: r for r in got}
    assert len(by_quote) == len(got)
    assert set(by_quote) == (set(RATES) | {"EUR"}) - {"USD"}
    # 162.17 / 1.0532 = 153.97835168... shown with 10 significant digits.
    assert by_quote["JPY"]["rate"] == "153.9783517"
    assert by_quote["EUR"]["rate"] == sig10(1 / Fraction(Decimal("1.0532"))) == "0.9494872769"
    for code, r in by_quote.items():
        assert r["base"] == "USD"
        assert r["rate"] == sig10(mid("USD", code)), code
        assert r["stale"] is False, r
        assert r["source"] == "test", r
        assert parse_time(r["asOf"]) == as_of, r


async def test_fx_rates_base_eur_lists_every_loaded_currency(router: Router,
                                                             make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    got = ok(await p.gql(RATES_Q, {"b": "EUR"}))["fxRates"]
    assert sorted(r["quote"] for r in got) == sorted(RATES)
    for r in got:
        assert r["base"] == "EUR"
        assert r["rate"] == sig10(Fraction(Decimal(RATES[r["quote"]]))), r
    assert {"quote": "JPY", "rate": "162.1700000"} in [
        {"quote": r["quote"], "rate": r["rate"]} for r in got]


@pytest.mark.parametrize("base", ["XYZ", "usd", "EURO", ""])
async def test_fx_rates_unknown_base_is_bad_user_input(router: Router, make_partner: MakePartner,
                                                       base: str) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    out = await p.gql(RATES_Q, {"b": base})
    assert top_level_code(out) == "BAD_USER_INPUT", out
    assert out["data"] is None, out


async def test_fx_rates_base_without_a_rate_is_empty(router: Router,
                                                     make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    assert ok(await p.gql(RATES_Q, {"b": "BRL"}))["fxRates"] == []
    assert len(ok(await p.gql(RATES_Q, {"b": "KWD"}))["fxRates"]) == len(RATES)


async def test_fx_rates_stale_flag(router: Router, make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    await fresh_rates(router, as_of=datetime.now(UTC) - timedelta(seconds=RATE_AGE_S_MAX + 120))
    got = ok(await p.gql(RATES_Q, {"b": "EUR"}))["fxRates"]
    assert len(got) == len(RATES)
    assert all(r["stale"] is True for r in got), got

    await fresh_rates(router, as_of=datetime.now(UTC) - timedelta(seconds=RATE_AGE_S_MAX - 300))
    got = ok(await p.gql(RATES_Q, {"b": "EUR"}))["fxRates"]
    assert all(r["stale"] is False for r in got), got

    # A cross rate is as old as its older leg: only GBP is stale now.
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=RATE_AGE_S_MAX + 120)
    await load_rates(router, {"GBP": RATES["GBP"]}, old, replace=False)
    by_quote = {r["quote"]: r for r in ok(await p.gql(RATES_Q, {"b": "USD"}))["fxRates"]}
    assert by_quote["GBP"]["stale"] is True
    assert parse_time(by_quote["GBP"]["asOf"]) == old
    assert {c for c, r in by_quote.items() if r["stale"]} == {"GBP"}


async def test_fx_rates_before_any_rate_is_empty(router: Router,
                                                 make_partner: MakePartner) -> None:
    async def no_rates(conn: AsyncConnection) -> None:
        # load_rates treats an empty dict as "the sample rates", so clear the table directly.
        await conn.execute(text("DELETE FROM fx_rates"))
        await conn.execute(text("DELETE FROM fx_rates_held"))

    await router.run_control(no_rates)
    p = await make_partner("EU")
    assert ok(await p.gql(RATES_Q, {"b": "EUR"}))["fxRates"] == []
    q = await quote(p, "q", "EUR", "USD", sell_amount="10.00")
    assert q["__typename"] == "RatesUnavailable", q
    await fresh_rates(router)


# --- 2. createFxQuote -------------------------------------------------------------------------

QUOTE_CASES = [
    ("EUR", "JPY", "100.00", None),
    ("EUR", "JPY", "1234.57", None),
    ("EUR", "JPY", None, "10000"),
    ("JPY", "EUR", "10000", None),
    ("JPY", "EUR", None, "100.00"),
    ("EUR", "KWD", "123.45", None),
    ("EUR", "KWD", None, "1.234"),
    ("KWD", "EUR", "0.777", None),
    ("USD", "GBP", "100.00", None),
    ("USD", "GBP", None, "77.77"),
    ("JPY", "KWD", "1", None),
    ("GBP", "USD", "0.01", None),
]


@pytest.mark.parametrize(("sell", "buy", "sell_amount", "buy_amount"), QUOTE_CASES)
async def test_quote_amounts_follow_the_rounding_rule(
        router: Router, make_partner: MakePartner, sell: str, buy: str,
        sell_amount: str | None, buy_amount: str | None) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    before = datetime.now(UTC)
    q = await open_quote(p, "q1", sell, buy, sell_amount=sell_amount, buy_amount=buy_amount)
    sell_minor, buy_minor = expected_minor(sell, buy, sell_amount=sell_amount,
                                           buy_amount=buy_amount)
    assert q["sell"] == {"amount": to_text(sell_minor, sell), "currency": sell}, q
    assert q["buy"] == {"amount": to_text(buy_minor, buy), "currency": buy}, q
    rate = customer(sell, buy)
    assert q["rate"] == sig10(rate), q
    assert q["status"] == "OPEN"
    # The rounding favours the platform by less than one minor unit of the rounded side.
    sell_major = Fraction(sell_minor, 10 ** EXPONENT[sell])
    buy_major = Fraction(buy_minor, 10 ** EXPONENT[buy])
    if sell_amount is not None:
        assert buy_major <= sell_major * rate < buy_major + Fraction(1, 10 ** EXPONENT[buy])
    else:
        assert sell_major - Fraction(1, 10 ** EXPONENT[sell]) < buy_major / rate <= sell_major
    expires = parse_time(q["expiresAt"])
    assert before + timedelta(seconds=29) <= expires <= datetime.now(UTC) + timedelta(seconds=31)
    # Readable back, and stored with the default spread.
    assert await get_quote(p, q["id"]) == {k: q[k] for k in (
        "__typename", "id", "rate", "sell", "buy", "expiresAt", "status")}
    stored = await rows(router, p.region, "SELECT spread_bps, sell_minor, buy_minor, mid_rate "
                        "FROM fx_quotes WHERE region = :r AND id = :id", r=p.region, id=q["id"])
    assert len(stored) == 1
    assert stored[0].spread_bps == SPREAD_DEFAULT_BPS
    assert (stored[0].sell_minor, stored[0].buy_minor) == (sell_minor, buy_minor)
    assert abs(Fraction(stored[0].mid_rate) - mid(sell, buy)) < Fraction(1, 10**11)


async def test_default_spread_is_50_bps(router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    q = await open_quote(p, "q", "EUR", "USD", sell_amount="100.00")
    # 100 * 1.0532 = 105.32 at mid; less 0.5 % = 104.7934 -> 104.79.
    assert q["buy"]["amount"] == "104.79"
    assert q["rate"] == "1.047934000"
    q = await open_quote(p, "q2", "EUR", "USD", buy_amount="104.79")
    assert q["sell"]["amount"] == "100.00"  # 104.79 / 1.047934 = 99.99... -> ceiling


async def test_quote_rate_is_the_customer_rate_rounded_once(
        router: Router, topo: Topology, make_partner: MakePartner) -> None:
    """The quote's rate is the exact customer rate shown to 10 significant digits.

    At 125 bps, USD->CHF is 0.87301675845043676...: correctly rounded that is 0.8730167585.
    Rounding first to 12 decimal places (0.873016758450) and then half-even to 10 digits
    gives 0.8730167584, one unit off in the last digit.
    """
    await fresh_rates(router)

    async def control(conn: AsyncConnection) -> str:
        t = await tenants.create_tenant(conn, topo, "Spread Ltd", "EU", None, Environment.TEST,
                                        fx_spread_bps=125, gate=PolicyGate())
        return (await tenants.create_api_key(conn, test_pepper, t.id, Role.PARTNER_ADMIN)).key

    key = await router.run_control(control)
    p = await make_partner("EU")  # only for its client; the calls below use the new key
    found = {}
    for sell, buy in (("USD", "CHF"), ("CNY", "KWD")):
        i = {"sellCurrency": sell, "buyCurrency": buy, "sellAmount": "100.00",
             "idempotencyKey": sell + buy}
        q = ok(await p.gql(QUOTE, {"i": i}, key=key))["createFxQuote"]
        assert q["__typename"] == "FxQuote", q
        found[sell + buy] = q["rate"]
    assert sig10(customer("USD", "CHF", 125)) == "0.8730167585"
    assert sig10(customer("CNY", "KWD", 125)) == "0.04202045005"
    assert found == {"USDCHF": "0.8730167585", "CNYKWD": "0.04202045005"}


@pytest.mark.parametrize("spread_bps", [0, 125])
async def test_tenant_spread_setting(router: Router, topo: Topology, make_partner: MakePartner,
                                     spread_bps: int) -> None:
    await fresh_rates(router)

    async def control(conn: AsyncConnection) -> str:
        t = await tenants.create_tenant(conn, topo, "Spread Ltd", "EU", None, Environment.TEST,
                                        fx_spread_bps=spread_bps, gate=PolicyGate())
        return (await tenants.create_api_key(conn, test_pepper, t.id, Role.PARTNER_ADMIN)).key

    key = await router.run_control(control)
    p = await make_partner("EU")  # only for its client; every call below uses the new key
    for sell, buy, sell_amount, buy_amount in QUOTE_CASES[:6]:
        i = {"sellCurrency": sell, "buyCurrency": buy, "idempotencyKey": f"{sell}{buy}"
             f"{sell_amount}{buy_amount}", "sellAmount": sell_amount, "buyAmount": buy_amount}
        q = ok(await p.gql(QUOTE, {"i": i}, key=key))["createFxQuote"]
        assert q["__typename"] == "FxQuote", q
        sell_minor, buy_minor = expected_minor(sell, buy, sell_amount=sell_amount,
                                               buy_amount=buy_amount, spread_bps=spread_bps)
        assert q["sell"]["amount"] == to_text(sell_minor, sell), (i, q)
        assert q["buy"]["amount"] == to_text(buy_minor, buy), (i, q)
        assert q["rate"] == sig10(customer(sell, buy, spread_bps)), q
    i = {"sellCurrency": "EUR", "buyCurrency": "USD", "sellAmount": "100.00",
         "idempotencyKey": "usd"}
    q = ok(await p.gql(QUOTE, {"i": i}, key=key))["createFxQuote"]
    if spread_bps == 0:
        assert q["rate"] == "1.053200000", q  # exactly the mid rate
        assert q["buy"]["amount"] == "105.32", q
    else:
        assert q["buy"]["amount"] == "104.00", q  # 105.32 * 0.9875 = 104.0035


async def test_quote_validity_window(router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    t0 = datetime.now(UTC)
    q = await open_quote(p, "default", "EUR", "JPY", sell_amount="10.00")
    t1 = datetime.now(UTC)
    expires = parse_time(q["expiresAt"])
    assert t0 + timedelta(seconds=30) - timedelta(milliseconds=500) <= expires
    assert expires <= t1 + timedelta(seconds=30) + timedelta(milliseconds=500)

    t0 = datetime.now(UTC)
    q = await open_quote(p, "max", "EUR", "JPY", sell_amount="10.00", validForSeconds=1800)
    t1 = datetime.now(UTC)
    expires = parse_time(q["expiresAt"])
    assert t0 + timedelta(seconds=1799) <= expires <= t1 + timedelta(seconds=1801)

    q = await open_quote(p, "min", "EUR", "JPY", sell_amount="10.00", validForSeconds=1)
    assert parse_time(q["expiresAt"]) <= datetime.now(UTC) + timedelta(seconds=2)

    count = len(await tenant_quote_rows(router, p))
    for bad in (0, 1801, -1, 86_400):
        r = await quote(p, f"bad{bad}", "EUR", "JPY", sell_amount="10.00", validForSeconds=bad)
        assert r["__typename"] == "ValidationError", (bad, r)
        assert r["field"] == "validForSeconds", (bad, r)
        assert r["code"] == "VALIDATION_ERROR"
    assert len(await tenant_quote_rows(router, p)) == count == 3


async def test_quote_idempotency(router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    first = await open_quote(p, "same", "EUR", "JPY", sell_amount="10.00")
    again = await open_quote(p, "same", "EUR", "JPY", sell_amount="10.00")
    assert again["id"] == first["id"]
    assert again["buy"] == first["buy"]
    other = await quote(p, "same", "EUR", "JPY", sell_amount="11.00")
    assert other["__typename"] == "IdempotencyConflict", other
    assert other["idempotencyKey"] == "same"
    assert len(await tenant_quote_rows(router, p)) == 1


# --- 3. bad input -----------------------------------------------------------------------------

BAD_QUOTES = [
    pytest.param({"sellCurrency": "EUR", "buyCurrency": "EUR", "sellAmount": "10.00"},
                 "buyCurrency", id="same-currency"),
    pytest.param({"sellAmount": "10.00", "buyAmount": "1000"}, "sellAmount", id="both-amounts"),
    pytest.param({}, "sellAmount", id="neither-amount"),
    pytest.param({"sellCurrency": "XYZ", "sellAmount": "10.00"}, "sellCurrency",
                 id="unknown-sell"),
    pytest.param({"buyCurrency": "ABC", "sellAmount": "10.00"}, "buyCurrency",
                 id="unknown-buy"),
    pytest.param({"sellCurrency": "eur", "sellAmount": "10.00"}, "sellCurrency",
                 id="lowercase-sell"),
    pytest.param({"buyCurrency": "XAU", "sellAmount": "10.00"}, "buyCurrency",
                 id="metal-buy"),
    pytest.param({"sellCurrency": "JPY", "buyCurrency": "EUR", "sellAmount": "1.5"},
                 "sellAmount", id="jpy-decimals"),
    pytest.param({"buyAmount": "1.5"}, "buyAmount", id="jpy-buy-decimals"),
    pytest.param({"sellAmount": "10.001"}, "sellAmount", id="eur-three-decimals"),
    pytest.param({"sellCurrency": "EUR", "buyCurrency": "KWD", "buyAmount": "1.2345"},
                 "buyAmount", id="kwd-four-decimals"),
    pytest.param({"sellAmount": "0"}, "sellAmount", id="zero"),
    pytest.param({"sellAmount": "0.00"}, "sellAmount", id="zero-decimals"),
    pytest.param({"buyAmount": "0"}, "buyAmount", id="zero-buy"),
    pytest.param({"sellAmount": "-10.00"}, "sellAmount", id="negative"),
    pytest.param({"buyAmount": "-1"}, "buyAmount", id="negative-buy"),
    pytest.param({"sellAmount": "1e3"}, "sellAmount", id="exponent"),
    pytest.param({"sellAmount": " 10.00"}, "sellAmount", id="space"),
    pytest.param({"sellAmount": ""}, "sellAmount", id="empty"),
    pytest.param({"sellAmount": "NaN"}, "sellAmount", id="nan"),
    pytest.param({"sellAmount": "+10.00"}, "sellAmount", id="plus-sign"),
    pytest.param({"sellAmount": "010.00"}, "sellAmount", id="leading-zero"),
    pytest.param({"sellAmount": ".50"}, "sellAmount", id="no-units"),
    pytest.param({"sellAmount": "1,000.00"}, "sellAmount", id="separator"),
    pytest.param({"sellAmount": "99999999999999999999999.00"}, "sellAmount", id="absurd"),
    pytest.param({"sellAmount": "1" * 60}, "sellAmount", id="absurd-long"),
    pytest.param({"sellAmount": "10000000000000.00"}, "sellAmount", id="just-over-max"),
    pytest.param({"sellAmount": "9999999999999.99"}, "sellAmount", id="bought-over-max"),
    pytest.param({"sellCurrency": "JPY", "buyCurrency": "EUR",
                  "buyAmount": "9999999999999.99"}, "buyAmount", id="sold-over-max"),
    pytest.param({"sellCurrency": "JPY", "buyCurrency": "EUR", "sellAmount": "1"},
                 "sellAmount", id="too-small-jpy-eur"),
    pytest.param({"sellCurrency": "KWD", "buyCurrency": "JPY", "sellAmount": "0.001"},
                 "sellAmount", id="too-small-kwd-jpy"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="empty-key"),
    pytest.param({"idempotencyKey": "k" * 256}, "idempotencyKey", id="long-key"),
]


@pytest.mark.parametrize(("over", "field"), BAD_QUOTES)
async def test_bad_quote_input_is_rejected_and_writes_nothing(
        router: Router, make_partner: MakePartner, over: dict[str, Any], field: str) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    i = {"sellCurrency": "EUR", "buyCurrency": "JPY", "idempotencyKey": "k1", **over}
    r = ok(await p.gql(QUOTE, {"i": i}))["createFxQuote"]
    assert r["__typename"] == "ValidationError", r
    assert r["code"] == "VALIDATION_ERROR"
    assert r["field"] == field, r
    assert r["message"]
    assert await tenant_quote_rows(router, p) == []
    assert await used_keys(router, p) == []
    # The key was not used up: a good request with it succeeds.
    good = await open_quote(p, "k1", "EUR", "JPY", sell_amount="10.00")
    assert [row.id for row in await tenant_quote_rows(router, p)] == [good["id"]]


async def test_sell_one_jpy_for_kwd_is_one_fils(router: Router, make_partner: MakePartner) -> None:
    # 1 JPY = 0.3245 / 162.17 * 0.995 KWD = 0.00199 KWD: floored to 0.001, not too small.
    await fresh_rates(router)
    p = await make_partner("EU")
    q = await open_quote(p, "k", "JPY", "KWD", sell_amount="1")
    assert q["buy"] == {"amount": "0.001", "currency": "KWD"}


async def test_pair_without_a_rate_is_rates_unavailable(router: Router,
                                                        make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU")
    for sell, buy in (("EUR", "BRL"), ("BRL", "USD")):
        r = await quote(p, f"{sell}{buy}", sell, buy, sell_amount="10.00")
        assert r["__typename"] == "RatesUnavailable", r
        assert r["code"] == "RATES_UNAVAILABLE"
    assert await tenant_quote_rows(router, p) == []


# --- 4. executeFxQuote ------------------------------------------------------------------------

@pytest.mark.parametrize("jurisdiction", ["EU", "US", "CN"])
async def test_execute_posts_one_balanced_journal_through_liquidity(
        router: Router, make_partner: MakePartner, jurisdiction: str) -> None:
    await fresh_rates(router)
    p = await make_partner(jurisdiction, funded={"EUR": 1_000_00}, extra={"JPY": 1})
    eur, jpy = p.accounts
    q = await open_quote(p, "q", "EUR", "JPY", sell_amount="250.00")
    sell_minor, buy_minor = expected_minor("EUR", "JPY", sell_amount="250.00")
    assert buy_minor == 40339  # 250 * 162.17 * 0.995 = 40339.7875, floored
    liq_before = await liquidity(router, p.region)

    conv = await execute(p, q["id"], eur, jpy, "x")
    assert conv["__typename"] == "Conversion", conv
    assert conv["id"].startswith(f"jnl_{p.region}_")
    assert conv["quoteId"] == q["id"]
    assert conv["rate"] == q["rate"]
    assert conv["sell"] == {"amount": "250.00", "currency": "EUR"}
    assert conv["buy"] == {"amount": "40339", "currency": "JPY"}
    st, bt = conv["sellTransfer"], conv["buyTransfer"]
    assert (st["fromAccountId"], st["amount"], st["status"]) == (eur, conv["sell"], "POSTED")
    assert (bt["toAccountId"], bt["amount"], bt["status"]) == (jpy, conv["buy"], "POSTED")

    # Through GraphQL: balances, statements and the quote's status.
    assert await balances(p) == {eur: "750.00", jpy: "40339"}
    eur_lines = ok(await p.gql(ENTRIES, {"id": eur}))["account"]["entries"]["edges"]
    assert eur_lines[0]["node"] == {"transferId": st["id"], "side": "DEBIT",
                                    "amount": {"amount": "250.00", "currency": "EUR"}}
    jpy_lines = ok(await p.gql(ENTRIES, {"id": jpy}))["account"]["entries"]["edges"]
    assert [e["node"] for e in jpy_lines] == [{"transferId": bt["id"], "side": "CREDIT",
                                               "amount": {"amount": "40339", "currency": "JPY"}}]
    assert (await get_quote(p, q["id"]))["status"] == "EXECUTED"

    # Through the database: one journal of two transfers whose entries balance per currency.
    journal = await rows(router, p.region, "SELECT tenant_id, kind FROM journals "
                         "WHERE region = :r AND id = :j", r=p.region, j=conv["id"])
    assert [(j.tenant_id, j.kind) for j in journal] == [(p.tenant_id, "fx_conversion")]
    transfers = await rows(router, p.region,
                           "SELECT id, debit_account_id, credit_account_id, amount_minor, "
                           "currency FROM transfers WHERE region = :r AND journal_id = :j",
                           r=p.region, j=conv["id"])
    assert {t.id for t in transfers} == {st["id"], bt["id"]}
    sums = await rows(router, p.region,
                      "SELECT e.currency, e.side, sum(e.amount_minor) AS total, count(*) AS n "
                      "FROM entries e JOIN transfers t ON t.region = e.region "
                      "AND t.id = e.transfer_id WHERE t.region = :r AND t.journal_id = :j "
                      "GROUP BY e.currency, e.side", r=p.region, j=conv["id"])
    totals = {(s.currency, s.side): int(s.total) for s in sums}
    assert totals == {("EUR", "DEBIT"): sell_minor, ("EUR", "CREDIT"): sell_minor,
                      ("JPY", "DEBIT"): buy_minor, ("JPY", "CREDIT"): buy_minor}
    assert sum(int(s.n) for s in sums) == 4

    # The other legs are FX liquidity accounts (one shard), which moved by the same amounts.
    by_id = {t.id: t for t in transfers}
    liq_ids = [by_id[st["id"]].credit_account_id, by_id[bt["id"]].debit_account_id]
    liq = await rows(router, p.region, "SELECT id, kind, purpose, currency, tenant_id "
                     "FROM accounts WHERE region = :r AND id = ANY(:ids)", r=p.region,
                     ids=liq_ids)
    assert {a.currency for a in liq} == {"EUR", "JPY"}
    assert all(a.kind == "internal" and a.purpose.startswith("fx_liquidity.")
               and a.tenant_id is None for a in liq), liq
    assert len({a.purpose for a in liq}) == 1, liq
    liq_after = await liquidity(router, p.region)
    assert liq_after.get("EUR", 0) - liq_before.get("EUR", 0) == sell_minor
    assert liq_after.get("JPY", 0) - liq_before.get("JPY", 0) == -buy_minor
    stored = await rows(router, p.region, "SELECT status, journal_id FROM fx_quotes "
                        "WHERE region = :r AND id = :id", r=p.region, id=q["id"])
    assert [(s.status, s.journal_id) for s in stored] == [("EXECUTED", conv["id"])]


async def test_execute_buy_fixed_quote_kwd(router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"USD": 500_00}, extra={"KWD": 1})
    usd, kwd = p.accounts
    q = await open_quote(p, "q", "USD", "KWD", buy_amount="12.345")
    sell_minor, buy_minor = expected_minor("USD", "KWD", buy_amount="12.345")
    conv = await execute(p, q["id"], usd, kwd, "x")
    assert conv["__typename"] == "Conversion", conv
    assert await balances(p) == {usd: to_text(500_00 - sell_minor, "USD"), kwd: "12.345"}
    assert buy_minor == 12_345


async def test_execute_expired_quote(router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    eur, usd = p.accounts
    q = await open_quote(p, "q", "EUR", "USD", sell_amount="10.00", validForSeconds=1)
    await asyncio.sleep(1.5)
    r = await execute(p, q["id"], eur, usd, "x")
    assert r["__typename"] == "QuoteExpired", r
    assert r["code"] == "QUOTE_EXPIRED"
    assert await balances(p) == {eur: "100.00", usd: "0.00"}
    assert (await get_quote(p, q["id"]))["status"] == "OPEN"
    assert await tenant_fx_journals(router, p) == []


async def test_execute_idempotent_replay_and_already_executed(
        router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    eur, usd = p.accounts
    q = await open_quote(p, "q", "EUR", "USD", sell_amount="10.00")
    first = await execute(p, q["id"], eur, usd, "x")
    assert first["__typename"] == "Conversion", first
    again = await execute(p, q["id"], eur, usd, "x")
    assert again == first
    assert await balances(p) == {eur: "90.00", usd: "10.47"}  # 10 * 1.0532 * 0.995 = 10.479

    other_key = await execute(p, q["id"], eur, usd, "y")
    assert other_key["__typename"] == "QuoteAlreadyExecuted", other_key
    assert other_key["code"] == "QUOTE_ALREADY_EXECUTED"

    q2 = await open_quote(p, "q2", "EUR", "USD", sell_amount="10.00")
    conflict = await execute(p, q2["id"], eur, usd, "x")
    assert conflict["__typename"] == "IdempotencyConflict", conflict
    assert await balances(p) == {eur: "90.00", usd: "10.47"}
    assert await tenant_fx_journals(router, p) == [first["id"]]


async def test_execute_insufficient_funds_keeps_the_quote_open(
        router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"EUR": 10_00}, extra={"JPY": 1})
    eur, jpy = p.accounts
    q = await open_quote(p, "q", "EUR", "JPY", sell_amount="50.00", validForSeconds=600)
    out = await execute_raw(p, q["id"], eur, jpy, "x1")
    # Effects first: nothing moved and the quote is still open.
    assert await balances(p) == {eur: "10.00", jpy: "0"}
    assert (await get_quote(p, q["id"]))["status"] == "OPEN"
    assert await tenant_fx_journals(router, p) == []
    assert await used_keys(router, p) == ["q"]
    # Once funded, the same quote converts.
    await fund(router, p, eur, 40_00, "EUR")
    conv = await execute(p, q["id"], eur, jpy, "x2")
    assert conv["__typename"] == "Conversion", conv
    _, buy_minor = expected_minor("EUR", "JPY", sell_amount="50.00")
    assert await balances(p) == {eur: "0.00", jpy: str(buy_minor)}
    # The refusal itself is a typed result, not a masked internal error.
    r = ok(out)["executeFxQuote"]
    assert r["__typename"] == "InsufficientFunds", r
    assert r["code"] == "INSUFFICIENT_FUNDS"
    assert r["accountId"] == eur


async def test_execute_from_an_empty_account_is_insufficient_funds(
        router: Router, make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", extra={"EUR": 1, "USD": 1})
    eur, usd = p.accounts
    q = await open_quote(p, "q", "EUR", "USD", sell_amount="0.01")
    out = await execute_raw(p, q["id"], eur, usd, "x")
    assert await balances(p) == {eur: "0.00", usd: "0.00"}
    assert (await get_quote(p, q["id"]))["status"] == "OPEN"
    assert "errors" not in out, out
    assert out["data"]["executeFxQuote"]["__typename"] == "InsufficientFunds", out
    assert out["data"]["executeFxQuote"]["accountId"] == eur, out


@pytest.mark.parametrize("wrong", ["sell", "buy"])
async def test_execute_wrong_account_currency(router: Router, make_partner: MakePartner,
                                              wrong: str) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"EUR": 100_00, "USD": 100_00}, extra={"JPY": 1})
    eur, usd, jpy = p.accounts
    q = await open_quote(p, "q", "EUR", "JPY", sell_amount="10.00")
    sell_acc, buy_acc = (usd, jpy) if wrong == "sell" else (eur, usd)
    out = await execute_raw(p, q["id"], sell_acc, buy_acc, "x")
    assert await balances(p) == {eur: "100.00", usd: "100.00", jpy: "0"}
    assert (await get_quote(p, q["id"]))["status"] == "OPEN"
    assert await tenant_fx_journals(router, p) == []
    r = ok(out)["executeFxQuote"]
    assert r["__typename"] == "CurrencyMismatch", r
    assert r["code"] == "CURRENCY_MISMATCH"
    assert r["accountId"] == usd


async def test_other_tenants_quote_is_not_found(router: Router,
                                                make_partner: MakePartner) -> None:
    await fresh_rates(router)
    owner = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    eur, usd = p.accounts
    theirs = await open_quote(owner, "q", "EUR", "USD", sell_amount="10.00")
    missing = ids.new_id("fxq", p.region)

    got_theirs = await execute(p, theirs["id"], eur, usd, "x1")
    got_missing = await execute(p, missing, eur, usd, "x2")
    assert got_theirs["__typename"] == got_missing["__typename"] == "NotFound", got_theirs
    assert got_theirs["code"] == got_missing["code"] == "NOT_FOUND"
    assert (without_ids(got_theirs["message"], theirs["id"])
            == without_ids(got_missing["message"], missing))

    read_theirs = await get_quote(p, theirs["id"])
    read_missing = await get_quote(p, missing)
    assert read_theirs["__typename"] == read_missing["__typename"] == "NotFound", read_theirs
    assert (without_ids(read_theirs["message"], theirs["id"])
            == without_ids(read_missing["message"], missing))
    # A quote id from another region is just as unknown.
    elsewhere = await get_quote(p, ids.new_id("fxq", "us-east"))
    assert elsewhere["__typename"] == "NotFound"
    # So is a real quote of a tenant in another region.
    us = await make_partner("US")
    us_quote = await open_quote(us, "q", "USD", "EUR", sell_amount="10.00")
    assert (await get_quote(p, us_quote["id"]))["__typename"] == "NotFound"
    assert (await execute(p, us_quote["id"], eur, usd, "x3"))["__typename"] == "NotFound"
    assert (await get_quote(us, us_quote["id"]))["status"] == "OPEN"

    assert await balances(p) == {eur: "100.00", usd: "0.00"}
    assert await balances(owner) == {owner.accounts[0]: "100.00", owner.accounts[1]: "0.00"}
    assert (await get_quote(owner, theirs["id"]))["status"] == "OPEN"


@pytest.mark.parametrize("side", ["sell", "buy"])
async def test_other_tenants_account_is_not_found(router: Router, make_partner: MakePartner,
                                                  side: str) -> None:
    await fresh_rates(router)
    other = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    eur, usd = p.accounts
    q = await open_quote(p, "q", "EUR", "USD", sell_amount="10.00")
    theirs = other.accounts[0] if side == "sell" else other.accounts[1]
    missing = ids.new_id("acc", p.region)

    def accounts(acc: str) -> tuple[str, str]:
        return (acc, usd) if side == "sell" else (eur, acc)

    out_theirs = await execute_raw(p, q["id"], *accounts(theirs), "x1")
    out_missing = await execute_raw(p, q["id"], *accounts(missing), "x2")
    assert await balances(p) == {eur: "100.00", usd: "0.00"}
    assert await balances(other) == {other.accounts[0]: "100.00", other.accounts[1]: "0.00"}
    assert (await get_quote(p, q["id"]))["status"] == "OPEN"
    got_theirs = ok(out_theirs)["executeFxQuote"]
    got_missing = ok(out_missing)["executeFxQuote"]
    assert got_theirs["__typename"] == got_missing["__typename"] == "NotFound", (
        got_theirs, got_missing)
    assert got_theirs["code"] == got_missing["code"] == "NOT_FOUND"
    assert (without_ids(got_theirs["message"], theirs)
            == without_ids(got_missing["message"], missing))


@pytest.mark.parametrize(("over", "field"), [
    ({"quoteId": "nope"}, "quoteId"),
    ({"quoteId": "acc_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY"}, "quoteId"),
    ({"quoteId": "fxq_eu-central_" + "Z" * 26}, "quoteId"),
    ({"quoteId": "fxq_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY" + "0" * 40}, "quoteId"),
    ({"sellAccountId": "nope"}, "sellAccountId"),
    ({"buyAccountId": "fxq_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY"}, "buyAccountId"),
    ({"buyAccountId": "SAME"}, "buyAccountId"),
    ({"idempotencyKey": ""}, "idempotencyKey"),
    ({"idempotencyKey": "k" * 256}, "idempotencyKey"),
])
async def test_execute_bad_input(router: Router, make_partner: MakePartner,
                                 over: dict[str, str], field: str) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    eur, usd = p.accounts
    q = await open_quote(p, "q", "EUR", "USD", sell_amount="10.00")
    i = {"quoteId": q["id"], "sellAccountId": eur, "buyAccountId": usd,
         "idempotencyKey": "x", **over}
    if i["buyAccountId"] == "SAME":
        i["buyAccountId"] = eur
    r = ok(await p.gql(EXECUTE, {"i": i}))["executeFxQuote"]
    assert r["__typename"] == "ValidationError", r
    assert r["field"] == field, r
    assert await balances(p) == {eur: "100.00", usd: "0.00"}
    assert (await get_quote(p, q["id"]))["status"] == "OPEN"
    assert await used_keys(router, p) == ["q"]


async def test_concurrent_executions_convert_once(router: Router,
                                                  make_partner: MakePartner) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", funded={"EUR": 1_000_00}, extra={"GBP": 1})
    eur, gbp = p.accounts
    q = await open_quote(p, "q", "EUR", "GBP", sell_amount="100.00", validForSeconds=120)
    sell_minor, buy_minor = expected_minor("EUR", "GBP", sell_amount="100.00")
    liq_before = await liquidity(router, p.region)
    results = await asyncio.gather(*(execute(p, q["id"], eur, gbp, f"c{n}") for n in range(10)))
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["Conversion"] + ["QuoteAlreadyExecuted"] * 9, results
    conv = next(r for r in results if r["__typename"] == "Conversion")
    assert await balances(p) == {eur: to_text(1_000_00 - sell_minor, "EUR"),
                                 gbp: to_text(buy_minor, "GBP")}
    assert await tenant_fx_journals(router, p) == [conv["id"]]
    liq_after = await liquidity(router, p.region)
    assert liq_after.get("EUR", 0) - liq_before.get("EUR", 0) == sell_minor
    assert liq_after.get("GBP", 0) - liq_before.get("GBP", 0) == -buy_minor


# --- 5. stale rates ---------------------------------------------------------------------------

async def test_stale_rates_refuse_quotes_until_refreshed(router: Router,
                                                         make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    await fresh_rates(router, as_of=datetime.now(UTC) - timedelta(seconds=RATE_AGE_S_MAX + 60))
    for sell, buy in (("EUR", "USD"), ("USD", "JPY"), ("JPY", "EUR")):
        r = await quote(p, f"s{sell}{buy}", sell, buy, sell_amount="100" if sell == "JPY"
                        else "10.00")
        assert r["__typename"] == "RatesUnavailable", r
        assert r["code"] == "RATES_UNAVAILABLE"
        assert r["message"]
    assert await tenant_quote_rows(router, p) == []
    assert await used_keys(router, p) == []

    await fresh_rates(router)
    q = await open_quote(p, "sEURUSD", "EUR", "USD", sell_amount="10.00")
    assert q["buy"]["amount"] == "10.47"

    # Only the GBP leg stale: pairs through GBP are refused, the rest still quote.
    old = datetime.now(UTC) - timedelta(seconds=RATE_AGE_S_MAX + 60)
    await load_rates(router, {"GBP": RATES["GBP"]}, old, replace=False)
    assert (await quote(p, "g1", "USD", "GBP", sell_amount="10.00"))["__typename"] == \
        "RatesUnavailable"
    assert (await quote(p, "g2", "GBP", "EUR", buy_amount="10.00"))["__typename"] == \
        "RatesUnavailable"
    assert (await quote(p, "g3", "USD", "JPY", sell_amount="10.00"))["__typename"] == "FxQuote"
    await fresh_rates(router)
    assert (await quote(p, "g1", "USD", "GBP", sell_amount="10.00"))["__typename"] == "FxQuote"


# --- 6. roles ---------------------------------------------------------------------------------

async def test_readonly_reads_but_cannot_quote_or_execute(router: Router,
                                                          make_partner: MakePartner) -> None:
    await fresh_rates(router)
    ro = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1},
                            role=Role.PARTNER_READONLY)
    eur, usd = ro.accounts
    admin = await extra_key(router, ro, Role.PARTNER_ADMIN)
    q = ok(await ro.gql(QUOTE, {"i": {"sellCurrency": "EUR", "buyCurrency": "USD",
                                      "sellAmount": "10.00", "idempotencyKey": "a"}},
                        key=admin))["createFxQuote"]
    assert q["__typename"] == "FxQuote", q

    rates = ok(await ro.gql(RATES_Q, {"b": "EUR"}))["fxRates"]
    assert len(rates) == len(RATES)
    read = await get_quote(ro, q["id"])
    assert (read["__typename"], read["id"]) == ("FxQuote", q["id"]), read

    out = await ro.gql(QUOTE, {"i": {"sellCurrency": "EUR", "buyCurrency": "USD",
                                     "sellAmount": "10.00", "idempotencyKey": "r"}})
    assert top_level_code(out) == "FORBIDDEN", out
    out = await ro.gql(EXECUTE, {"i": {"quoteId": q["id"], "sellAccountId": eur,
                                       "buyAccountId": usd, "idempotencyKey": "r"}})
    assert top_level_code(out) == "FORBIDDEN", out

    assert [r.id for r in await tenant_quote_rows(router, ro)] == [q["id"]]
    assert (await get_quote(ro, q["id"]))["status"] == "OPEN"
    assert await balances(ro) == {eur: "100.00", usd: "0.00"}


@pytest.mark.parametrize(("role", "reads"), [(Role.AUDITOR, True),
                                             (Role.COMPLIANCE_OFFICER, False), (Role.SRE, False)])
async def test_other_roles_cannot_quote(router: Router, make_partner: MakePartner,
                                        role: Role, reads: bool) -> None:
    await fresh_rates(router)
    p = await make_partner("EU", role=role)
    rates = await p.gql(RATES_Q, {"b": "EUR"})
    if reads:
        assert len(ok(rates)["fxRates"]) == len(RATES)
    else:
        assert top_level_code(rates) == "FORBIDDEN", rates
    out = await p.gql(QUOTE, {"i": {"sellCurrency": "EUR", "buyCurrency": "USD",
                                    "sellAmount": "10.00", "idempotencyKey": "r"}})
    assert top_level_code(out) == "FORBIDDEN", out
    assert await tenant_quote_rows(router, p) == []

