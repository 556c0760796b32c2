"""FX arithmetic: cross rates through a pivot, spreads, and quote amounts, all exact.

Rates are kept as exact fractions (from the providers' decimal strings); amounts are integer
minor units. The rounding rule, in one sentence: **every rounding is at the minor unit and in
the platform's favour**, so the platform never loses even one minor unit to rounding:

- the customer sells a fixed amount: what they buy is rounded down (floor);
- the customer buys a fixed amount: what they sell is rounded up (ceiling).

The customer rate is the mid rate less the spread: ``mid * (10_000 - spread_bps) / 10_000``.
Spread revenue, measured at the mid rate in the bought currency, is therefore never negative.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from payments.currency import Currency
from payments.errors import DomainError, InvalidInput
from payments.money import amount_minor_max

bps_per_unit = 10_000
spread_bps_max = 1_000
rate_digits_display = 10
rate_text_length_max = 40
_plain_decimal = re.compile(r"[0-9]+(\.[0-9]+)?")


class RatesUnavailable(DomainError):
    code = "RATES_UNAVAILABLE"


class QuoteExpired(DomainError):
    code = "QUOTE_EXPIRED"


class QuoteAlreadyExecuted(DomainError):
    code = "QUOTE_ALREADY_EXECUTED"


def parse_rate(text: str) -> Fraction:
    """A positive plain decimal rate from a provider ("1.0532"), exactly.

    Only ASCII digits and one point: no signs, exponents, separators or spaces, so a hostile
    feed cannot ask for a billion-digit number.
    """
    if not isinstance(text, str) or len(text) > rate_text_length_max:
        raise ValueError(f"rate {text!r} is not a decimal string")
    if not _plain_decimal.fullmatch(text):
        raise ValueError(f"rate {text!r} is not a plain decimal number such as 1.0532")
    value = Fraction(Decimal(text))
    if value <= 0:
        raise ValueError(f"rate {text!r} must be a positive number")
    return value


def cross_rate(pivot_rates: dict[str, Fraction], pivot: str, sell: str, buy: str) -> Fraction:
    """Units of ``buy`` per unit of ``sell`` from rates quoted as units per one ``pivot``."""
    rates = {**pivot_rates, pivot: Fraction(1)}
    if sell not in rates or buy not in rates:
        missing = sell if sell not in rates else buy
        raise RatesUnavailable(f"no rate for {missing}")
    return rates[buy] / rates[sell]


def customer_rate(mid: Fraction, spread_bps: int) -> Fraction:
    assert 0 <= spread_bps <= spread_bps_max, spread_bps
    return mid * (bps_per_unit - spread_bps) / bps_per_unit


def display(rate: Fraction) -> str:
    """A rate as a decimal string with ``rate_digits_display`` significant digits."""
    with localcontext() as ctx:
        ctx.prec = rate_digits_display
        value = Decimal(rate.numerator) / Decimal(rate.denominator)
    # The quantum comes from the rounded value, so 9.99999999999 shows as 10.00000000.
    return format(value.quantize(Decimal(1).scaleb(value.adjusted() - rate_digits_display + 1)),
                  "f")


@dataclass(frozen=True, slots=True)
class QuoteAmounts:
    sell_minor: int
    buy_minor: int
    mid: Fraction
    rate: Fraction
    spread_revenue: Fraction
    """Revenue in minor units of the bought currency, at the mid rate; never negative."""


def _minor_ratio(sell: Currency, buy: Currency) -> Fraction:
    """Buy minor units per sell minor unit at a rate of one."""
    return Fraction(buy.scale, sell.scale)


def quote(sell: Currency, buy: Currency, mid: Fraction, spread_bps: int,
          *, sell_minor: int | None = None, buy_minor: int | None = None) -> QuoteAmounts:
    """Amounts for a quote with exactly one side fixed, rounded in the platform's favour."""
    assert (sell_minor is None) != (buy_minor is None)
    if sell.code == buy.code:
        raise InvalidInput("sellCurrency and buyCurrency must differ", "buyCurrency")
    rate = customer_rate(mid, spread_bps)
    ratio = _minor_ratio(sell, buy)
    if sell_minor is not None:
        buy_out = (sell_minor * rate * ratio).__floor__()
        sell_out = sell_minor
        field = "sellAmount"
    else:
        assert buy_minor is not None
        sell_out = (buy_minor / (rate * ratio)).__ceil__()
        buy_out = buy_minor
        field = "buyAmount"
    if buy_out <= 0 or sell_out <= 0:
        raise InvalidInput("amount is too small to convert at this rate", field)
    if buy_out > amount_minor_max or sell_out > amount_minor_max:
        raise InvalidInput("the converted amount exceeds the maximum", field)
    revenue = sell_out * mid * ratio - buy_out
    assert revenue >= 0, (revenue, sell_out, buy_out)
    return QuoteAmounts(sell_out, buy_out, mid, rate, revenue)


def jump_exceeds(previous: Fraction, current: Fraction, jump_bps_max: int) -> bool:
    """Whether a new rate moved more than ``jump_bps_max`` against the last one."""
    return abs(current - previous) * bps_per_unit > previous * jump_bps_max


def equivalent_minor(amount_minor: int, source: Currency, target: Currency,
                     mid: Fraction) -> int:
    """An amount's worth in another currency at a mid rate, for comparing with limits and
    thresholds: rounded up, so a conversion never slips under a threshold it reaches."""
    return (amount_minor * mid * _minor_ratio(source, target)).__ceil__()
