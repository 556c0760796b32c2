"""FX arithmetic: exact rates, cross rates, spreads and quote amounts rounded for the platform.

The oracles here use plain integer arithmetic on numerators and denominators (floor and ceiling
by ``//``), independently of ``Fraction.__floor__`` and ``__ceil__`` that the module relies on.
Rates are drawn as decimal strings from 1e-6 to 1e6 and as cross rates of two such strings, so
denominators that are not powers of ten come up too.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from payments.currency import Currency, all_currencies, currency
from payments.errors import InvalidInput
from payments.fx import (
    QuoteAmounts,
    RatesUnavailable,
    bps_per_unit,
    cross_rate,
    customer_rate,
    display,
    jump_exceeds,
    parse_rate,
    quote,
    rate_digits_display,
    rate_text_length_max,
    spread_bps_max,
)
from payments.ledger import Account, Side, Transfer, assert_balanced, entries, post
from payments.money import amount_minor_max

currencies = all_currencies()
currency_st = st.sampled_from(currencies)


def _distinct_pair(ij: tuple[int, int]) -> tuple[Currency, Currency]:
    i, j = ij
    return currencies[i], currencies[j if j < i else j + 1]


# Two distinct currencies without rejection sampling: the second index skips the first.
pair_st = st.tuples(
    st.integers(min_value=0, max_value=len(currencies) - 1),
    st.integers(min_value=0, max_value=len(currencies) - 2),
).map(_distinct_pair)
spread_st = st.integers(min_value=0, max_value=spread_bps_max)
# Small amounts reach "too small", amounts near the maximum reach "too large"; both sides of
# every boundary come up without relying on luck.
amount_st = st.one_of(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=amount_minor_max),
    st.integers(min_value=amount_minor_max - 10_000, max_value=amount_minor_max),
)
rate_min = Fraction(1, 10**6)
rate_max = Fraction(10**6)


@st.composite
def decimal_rate_st(draw: st.DrawFn, low: int = -6, high: int = 6) -> tuple[str, Fraction]:
    """A plain decimal string from 10**low up to 10**high, and its exact value.

    The value is built from integers (significand and power of ten), not from the string.
    """
    magnitude = draw(st.integers(min_value=low, max_value=high))  # in [10**m, 10**(m+1))
    digits = draw(st.integers(min_value=1, max_value=12))
    significand = draw(st.integers(min_value=10 ** (digits - 1), max_value=10**digits - 1))
    if magnitude == high:  # the top of the range is 10**high itself
        digits, significand = 1, 1
    power = magnitude - digits + 1
    exact = Fraction(significand * 10 ** max(power, 0), 10 ** max(-power, 0))
    text = format(Decimal(significand).scaleb(power), "f")
    return text, exact


def _parsed(drawn: tuple[str, Fraction]) -> Fraction:
    return parse_rate(drawn[0])


rate_st = decimal_rate_st().map(_parsed)
# Cross rates of two decimal rates in 1e-3..1e3 stay within 1e-6..1e6 and have arbitrary
# denominators, as the rates for a pair through a pivot do.
cross_st = st.tuples(decimal_rate_st(-3, 3).map(_parsed), decimal_rate_st(-3, 3).map(_parsed)).map(
    lambda ab: ab[0] / ab[1]
)
mid_st = st.one_of(rate_st, cross_st)


def sig_digits(text: str) -> int:
    """Significant digits of a plain decimal string: trailing zeros after a point count."""
    return len(text.replace(".", "").lstrip("0"))


# parse_rate.


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.0876", Fraction(10876, 10_000)),
        ("162.35", Fraction(16235, 100)),
        ("0.000123", Fraction(123, 1_000_000)),
        ("1", Fraction(1)),
        ("0.1", Fraction(1, 10)),  # exactly a tenth, which no float is
        ("1." + "0" * (rate_text_length_max - 2), Fraction(1)),  # exactly the longest allowed
    ],
)
def test_parse_rate_accepts(text: str, value: Fraction) -> None:
    parsed = parse_rate(text)
    assert isinstance(parsed, Fraction)
    assert parsed == value


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0.0",
        "-0",
        "-1",
        "-0.5",
        "abc",
        "NaN",
        "nan",
        "sNaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "",
        " ",
        "1,5",
        "1.2.3",
        "1e",
        "1." + "0" * (rate_text_length_max - 1),  # one character too long
        "1" * 1_000,
    ],
)
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize(
    "value", [1, 1.5, None, Decimal("1.5"), Fraction(3, 2), b"1.5", ["1.5"], object()]
)
def test_parse_rate_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="not a decimal string"):
        parse_rate(value)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(decimal_rate_st())
@example(("0.000001", Fraction(1, 10**6)))
@example(("1000000", Fraction(10**6)))
def test_parse_rate_is_exact(drawn: tuple[str, Fraction]) -> None:
    text, exact = drawn
    assert parse_rate(text) == exact


# cross_rate.


@st.composite
def pivot_table_st(draw: st.DrawFn) -> tuple[str, dict[str, Fraction], list[str]]:
    """A pivot, rates per one pivot for some other currencies, and the codes with a rate."""
    codes = draw(
        st.lists(
            st.sampled_from([c.code for c in currencies]), min_size=3, max_size=12, unique=True
        )
    )
    pivot, *quoted = codes
    rates = {code: draw(rate_st) for code in quoted}
    return pivot, rates, codes


@settings(max_examples=300, deadline=None)
@given(pivot_table_st(), st.data())
def test_cross_rate_is_consistent(
    table: tuple[str, dict[str, Fraction], list[str]], data: st.DataObject
) -> None:
    pivot, rates, codes = table
    before = dict(rates)
    a, b, c = (data.draw(st.sampled_from(codes), label=name) for name in "abc")
    per_pivot = {**rates, pivot: Fraction(1)}

    ab = cross_rate(rates, pivot, a, b)
    assert isinstance(ab, Fraction)
    assert ab > 0
    assert ab == per_pivot[b] / per_pivot[a]
    assert ab * cross_rate(rates, pivot, b, a) == 1
    assert cross_rate(rates, pivot, a, a) == 1
    assert cross_rate(rates, pivot, a, pivot) == 1 / per_pivot[a]
    assert cross_rate(rates, pivot, pivot, a) == per_pivot[a]
    # Triangular consistency: going through any third currency changes nothing, exactly.
    assert ab == cross_rate(rates, pivot, a, c) * cross_rate(rates, pivot, c, b)
    assert rates == before, "cross_rate changed the table it was given"


@settings(max_examples=200, deadline=None)
@given(pivot_table_st(), st.data())
def test_cross_rate_missing_currency(
    table: tuple[str, dict[str, Fraction], list[str]], data: st.DataObject
) -> None:
    pivot, rates, codes = table
    known = data.draw(st.sampled_from(codes), label="known")
    missing = data.draw(
        st.sampled_from([c.code for c in currencies if c.code not in codes]), label="missing"
    )
    with pytest.raises(RatesUnavailable, match=missing) as raised:
        cross_rate(rates, pivot, missing, known)
    assert raised.value.code == "RATES_UNAVAILABLE"
    with pytest.raises(RatesUnavailable, match=missing):
        cross_rate(rates, pivot, known, missing)
    with pytest.raises(RatesUnavailable):
        cross_rate({}, pivot, missing, pivot)


# customer_rate.


@settings(max_examples=300, deadline=None)
@given(mid_st, spread_st)
@example(Fraction(1), 0)
@example(Fraction(1), spread_bps_max)
def test_customer_rate_is_mid_less_spread(mid: Fraction, spread_bps: int) -> None:
    rate = customer_rate(mid, spread_bps)
    assert rate == Fraction(
        mid.numerator * (bps_per_unit - spread_bps), mid.denominator * bps_per_unit
    )
    assert 0 < rate <= mid
    assert (rate == mid) == (spread_bps == 0)
    if spread_bps < spread_bps_max:
        assert customer_rate(mid, spread_bps + 1) < rate


@settings(max_examples=100, deadline=None)
@given(
    mid_st,
    st.one_of(st.integers(max_value=-1), st.integers(min_value=spread_bps_max + 1)),
)
@example(Fraction(1), -1)
@example(Fraction(1), spread_bps_max + 1)
def test_customer_rate_refuses_spread_out_of_range(mid: Fraction, spread_bps: int) -> None:
    with pytest.raises(AssertionError):
        customer_rate(mid, spread_bps)


# display.


@settings(max_examples=500, deadline=None)
@given(mid_st)
@example(rate_min)
@example(rate_max)
@example(Fraction(1, 3))
@example(Fraction(2, 3) * rate_min)
@example(Fraction(1))
def test_display_round_trips(rate: Fraction) -> None:
    text = display(rate)
    assert "e" not in text.lower(), text
    assert text == text.strip()
    assert not text.startswith(("-", "+")), text
    shown = Fraction(Decimal(text))
    assert abs(shown - rate) / rate < Fraction(1, 10**9), (rate, text)


@settings(max_examples=500, deadline=None)
@given(mid_st)
@example(Fraction(1))
@example(rate_min)
@example(rate_max)
# Values that round up into the next power of ten.
@example(parse_rate("9.99999999999"))
@example(parse_rate("0.0000099999999999"))
@example(parse_rate("999999.99999999"))
def test_display_has_ten_significant_digits(rate: Fraction) -> None:
    text = display(rate)
    assert sig_digits(text) == rate_digits_display, (rate, text)


# quote.


def expected_quote(
    sell: Currency,
    buy: Currency,
    mid: Fraction,
    spread_bps: int,
    sell_minor: int | None,
    buy_minor: int | None,
) -> tuple[int, int] | tuple[str, str]:
    """The two amounts, or the field and reason of the refusal; integer arithmetic only.

    Buy minor units per sell minor unit at the customer rate is ``num / den``.
    """
    num = mid.numerator * (bps_per_unit - spread_bps) * 10**buy.exponent
    den = mid.denominator * bps_per_unit * 10**sell.exponent
    if sell_minor is not None:
        sell_out, buy_out, field = sell_minor, sell_minor * num // den, "sellAmount"
    else:
        assert buy_minor is not None
        sell_out, buy_out, field = -(-buy_minor * den // num), buy_minor, "buyAmount"
    if min(sell_out, buy_out) < 1:
        return field, "too small"
    if max(sell_out, buy_out) > amount_minor_max:
        return field, "too large"
    return sell_out, buy_out


def quote_or_error(
    sell: Currency, buy: Currency, mid: Fraction, spread_bps: int, fixed: dict[str, int]
) -> QuoteAmounts | InvalidInput:
    try:
        return quote(sell, buy, mid, spread_bps, **fixed)
    except InvalidInput as error:
        return error


@settings(max_examples=500, deadline=None)
@given(pair_st, mid_st, spread_st, amount_st, st.booleans())
@example((currency("JPY"), currency("KWD")), rate_min, spread_bps_max, 1, True)
@example((currency("KWD"), currency("JPY")), rate_max, 0, amount_minor_max, True)
@example((currency("EUR"), currency("USD")), Fraction(10876, 10_000), 30, 10_000, True)
@example((currency("EUR"), currency("USD")), Fraction(10876, 10_000), 30, 10_000, False)
@example((currency("USD"), currency("JPY")), Fraction(16235, 100), 0, 1, False)
def test_quote_rounds_in_platform_favour(
    pair: tuple[Currency, Currency],
    mid: Fraction,
    spread_bps: int,
    amount: int,
    sell_fixed: bool,
) -> None:
    sell, buy = pair
    fixed = {"sell_minor": amount} if sell_fixed else {"buy_minor": amount}
    expected = expected_quote(
        sell, buy, mid, spread_bps, fixed.get("sell_minor"), fixed.get("buy_minor")
    )
    q = quote_or_error(sell, buy, mid, spread_bps, fixed)
    if isinstance(q, InvalidInput):
        reasons = {"too small": "too small", "exceeds the maximum": "too large"}
        reason = next((r for text, r in reasons.items() if text in q.message), q.message)
        event(f"refused: {q.field}, {reason}")
        assert (q.field, reason) == expected, (expected, q.field, q.message)
        assert q.code == "VALIDATION_ERROR"
        return
    event(f"quoted, {'sell' if sell_fixed else 'buy'} fixed")
    assert isinstance(expected[0], int), f"quote should have been refused: {expected}"

    # (a) the amounts are the floor/ceiling at the customer rate, computed independently.
    assert (q.sell_minor, q.buy_minor) == expected
    if sell_fixed:
        assert q.sell_minor == amount
    else:
        assert q.buy_minor == amount
    rate = customer_rate(mid, spread_bps)
    assert q.rate == rate
    assert q.mid == mid
    ratio = Fraction(10**buy.exponent, 10**sell.exponent)
    at_rate = q.sell_minor * rate * ratio  # what the customer rate gives for what they sell
    at_mid = q.sell_minor * mid * ratio

    # (b) the platform never loses, and the customer never gets more than the customer rate.
    assert q.buy_minor <= at_rate <= at_mid
    assert q.spread_revenue == at_mid - q.buy_minor
    assert q.spread_revenue >= 0

    # (c) rounding costs the customer less than one minor unit beyond the spread.
    if sell_fixed:
        assert q.buy_minor > at_rate - 1
    else:
        exact_sell = Fraction(q.buy_minor) / (rate * ratio)
        assert exact_sell <= q.sell_minor < exact_sell + 1

    # (d) both amounts are valid amounts.
    assert 1 <= q.sell_minor <= amount_minor_max
    assert 1 <= q.buy_minor <= amount_minor_max
    assert type(q.sell_minor) is int
    assert type(q.buy_minor) is int


@settings(max_examples=200, deadline=None)
@given(currency_st, mid_st, spread_st, amount_st, st.booleans())
def test_quote_refuses_same_currency(
    cur: Currency, mid: Fraction, spread_bps: int, amount: int, sell_fixed: bool
) -> None:
    fixed = {"sell_minor": amount} if sell_fixed else {"buy_minor": amount}
    with pytest.raises(InvalidInput) as raised:
        quote(cur, cur, mid, spread_bps, **fixed)
    assert raised.value.field == "buyCurrency"


def test_quote_needs_exactly_one_fixed_side() -> None:
    eur, usd = currency("EUR"), currency("USD")
    with pytest.raises(AssertionError):
        quote(eur, usd, Fraction(1), 0)
    with pytest.raises(AssertionError):
        quote(eur, usd, Fraction(1), 0, sell_minor=100, buy_minor=100)


# The journal of a conversion.


@settings(max_examples=300, deadline=None)
@given(
    pair_st,
    mid_st,
    spread_st,
    st.integers(min_value=1, max_value=10**12),
    st.booleans(),
    st.integers(min_value=0, max_value=amount_minor_max),
)
def test_conversion_journal_balances_per_currency(
    pair: tuple[Currency, Currency],
    mid: Fraction,
    spread_bps: int,
    amount: int,
    sell_fixed: bool,
    spare_minor: int,
) -> None:
    sell, buy = pair
    fixed = {"sell_minor": amount} if sell_fixed else {"buy_minor": amount}
    q = quote_or_error(sell, buy, mid, spread_bps, fixed)
    assume(not isinstance(q, InvalidInput))
    assert isinstance(q, QuoteAmounts)
    liquidity_sell, liquidity_buy = f"fx_liquidity_{sell.code}", f"fx_liquidity_{buy.code}"
    transfers = [
        Transfer("fx_1_sell", "customer_sell", liquidity_sell, q.sell_minor, sell.code),
        Transfer("fx_1_buy", liquidity_buy, "customer_buy", q.buy_minor, buy.code),
    ]
    journal = entries(transfers)
    assert len(journal) == 4
    assert_balanced(journal)
    assert {(e.account_id, e.side, e.amount_minor, e.currency) for e in journal} == {
        ("customer_sell", Side.DEBIT, q.sell_minor, sell.code),
        (liquidity_sell, Side.CREDIT, q.sell_minor, sell.code),
        (liquidity_buy, Side.DEBIT, q.buy_minor, buy.code),
        ("customer_buy", Side.CREDIT, q.buy_minor, buy.code),
    }

    # The customer's money came from a funding account, so each currency starts at zero too.
    opening = q.sell_minor + spare_minor
    accounts = {
        a.id: a
        for a in [
            Account(
                "funding", sell.code, debits_must_not_exceed_credits=False, debits_posted=opening
            ),
            Account("customer_sell", sell.code, credits_posted=opening),
            Account("customer_buy", buy.code),
            Account(liquidity_sell, sell.code, debits_must_not_exceed_credits=False),
            Account(liquidity_buy, buy.code, debits_must_not_exceed_credits=False),
        ]
    }

    def totals() -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for a in accounts.values():
            out[a.currency] += a.posted
        return dict(out)

    before_totals = totals()
    before = {k: a.posted for k, a in accounts.items()}
    for t in transfers:
        post(accounts, t)
    assert totals() == before_totals == {sell.code: 0, buy.code: 0}
    assert accounts["customer_sell"].posted == before["customer_sell"] - q.sell_minor
    assert accounts["customer_sell"].available == spare_minor
    assert accounts["customer_buy"].posted == q.buy_minor
    assert accounts[liquidity_sell].posted == q.sell_minor
    assert accounts[liquidity_buy].posted == -q.buy_minor
    for a in accounts.values():
        a.assert_invariants()


# jump_exceeds.


jump_bps_st = st.integers(min_value=0, max_value=bps_per_unit - 1)


@settings(max_examples=300, deadline=None)
@given(mid_st, jump_bps_st, st.integers(min_value=1, max_value=10**12))
@example(Fraction(1), 0, 10**12)
@example(Fraction(1), 500, 1)
def test_jump_threshold_is_exclusive_both_ways(
    previous: Fraction, jump_bps: int, epsilon_inverse: int
) -> None:
    at_threshold = previous * jump_bps / bps_per_unit
    epsilon = previous / epsilon_inverse / 10**6  # a sliver past the threshold
    for direction in (1, -1):
        assert not jump_exceeds(previous, previous + direction * at_threshold, jump_bps)
        beyond = previous + direction * (at_threshold + epsilon)
        if beyond > 0:
            assert jump_exceeds(previous, beyond, jump_bps), (previous, beyond, jump_bps)
        within = previous + direction * max(at_threshold - epsilon, Fraction(0))
        assert not jump_exceeds(previous, within, jump_bps)
    assert not jump_exceeds(previous, previous, jump_bps)


@settings(max_examples=300, deadline=None)
@given(mid_st, mid_st, st.integers(min_value=0, max_value=bps_per_unit))
def test_jump_matches_relative_move(previous: Fraction, current: Fraction, jump_bps: int) -> None:
    move = abs(current - previous) / previous
    assert jump_exceeds(previous, current, jump_bps) == (move > Fraction(jump_bps, bps_per_unit))
    mirrored = 2 * previous - current  # the same move in the other direction
    if mirrored > 0:
        assert jump_exceeds(previous, mirrored, jump_bps) == jump_exceeds(
            previous, current, jump_bps
        )


@pytest.mark.parametrize("text", ["1E+999999999", "1e3", " 1.5", "1.5 ", "1_000",
                                  "\uff11.\uff15", "+1.5", ".5", "1."])
def test_parse_rate_accepts_only_plain_ascii_decimals(text: str) -> None:
    with pytest.raises(ValueError, match="plain decimal"):
        parse_rate(text)
