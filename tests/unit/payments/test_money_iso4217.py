"""Every ISO 4217 currency the platform knows, one by one: decimal strings round-trip to minor
units and back, and bad input is refused with ``InvalidInput``, never rounded.

``test_money.py`` samples currencies and keeps one representative per exponent; here each test
runs once per currency (0, 2, 3 and 4 decimals: JPY, EUR, BHD/KWD, CLF/UYW), so a currency
whose exponent the code mishandled would fail under its own name. The list comes from the same
source the code reads, the ``iso4217`` package's copy of the maintenance agency's table, parsed
here on its own so that the code's filtering is checked too. ``decimal.Decimal`` is the exact
oracle. The ``Money`` GraphQL type is checked through a real (HTTP-free) Strawberry schema.
"""

from __future__ import annotations

import re
from decimal import Decimal

import iso4217
import pytest
import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.currency import Currency, all_currencies, currency
from payments.errors import InvalidInput
from payments.money import amount_minor_max, amount_text_length_max, format_amount, parse_amount
from schema.money import Money, money

no_minor_unit = "N.A."
"""How the ISO table marks units without a minor unit (special drawing rights, bond-market units,
precious metals, XTS and XXX): not money here."""


def iso_exponents() -> dict[str, int]:
    """The ISO table's codes with a minor unit, read straight from the package's raw table."""
    out = {}
    for code, entry in iso4217.raw_table.items():
        units = entry["CcyMnrUnts"]
        if code is None or units in (None, no_minor_unit):
            continue
        assert isinstance(units, str), (code, units)
        assert units.isdigit(), (code, units)
        out[code] = int(units)
    return out


iso = iso_exponents()
codes = sorted(iso)
per_currency = pytest.mark.parametrize("code", codes)
examples_per_currency = 12
"""Hypothesis examples per currency and property: about 165 currencies make each property
some two thousand examples in all."""
field = "sourceAmount"
digits = "0123456789"


def canonical(text: str, cur: Currency) -> str:
    """The output form of a valid input: exactly the exponent's decimals, by exact decimals."""
    return f"{Decimal(text):.{cur.exponent}f}"


def assert_refused(text: object, cur: Currency) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        parse_amount(text, cur, field=field)
    assert raised.value.field == field
    assert raised.value.code == "VALIDATION_ERROR"
    return raised.value


# --- the list ----------------------------------------------------------------------------------


def test_the_platform_knows_exactly_the_iso_codes_with_a_minor_unit() -> None:
    known = {c.code: c.exponent for c in all_currencies()}
    assert known == iso
    assert (iso["JPY"], iso["EUR"], iso["BHD"], iso["KWD"], iso["CLF"], iso["UYW"]) == (
        0, 2, 3, 3, 4, 4)


@pytest.mark.parametrize("code", sorted(
    c for c, e in iso4217.raw_table.items() if c is not None and e["CcyMnrUnts"] in (
        None, no_minor_unit)))
def test_codes_without_a_minor_unit_are_refused(code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        currency(code, field="currency")
    assert raised.value.field == "currency"


@per_currency
def test_currency_has_the_iso_exponent(code: str) -> None:
    cur = currency(code)
    assert (cur.code, cur.exponent, cur.scale) == (code, iso[code], 10 ** iso[code])


# --- round trips, per currency ---------------------------------------------------------------


def edge_amounts(cur: Currency) -> list[int]:
    """Minor units around the currency's own landmarks: one unit, one major unit, the maximum."""
    return sorted({1, 2, cur.scale - 1, cur.scale, cur.scale + 1, 10 * cur.scale, 123_456_789,
                   amount_minor_max - 1, amount_minor_max} - {0})


@per_currency
def test_boundaries(code: str) -> None:
    cur = currency(code)
    smallest = "1" if cur.exponent == 0 else "0." + "0" * (cur.exponent - 1) + "1"
    assert format_amount(1, cur) == smallest
    assert format_amount(cur.scale, cur) == canonical("1", cur)
    for minor in edge_amounts(cur):
        assert parse_amount(format_amount(minor, cur), cur) == minor
    largest = format_amount(amount_minor_max, cur)
    assert largest.replace(".", "") == "9" * 15
    assert "exceeds the maximum" in assert_refused(format_amount(amount_minor_max + 1, cur),
                                                   cur).message
    assert "zero" in assert_refused(format_amount(0, cur), cur).message
    assert "positive" in assert_refused(format_amount(-1, cur), cur).message
    for text in (smallest, largest):
        for extra in ("0", "1", "5", "9", "000"):
            widened = text + extra if cur.exponent else f"{text}.{extra}"
            assert "decimal places" in assert_refused(widened, cur).message


@per_currency
@settings(max_examples=examples_per_currency)
@given(minor=st.integers(min_value=-amount_minor_max, max_value=amount_minor_max))
def test_format_then_parse_gives_the_minor_units_back(code: str, minor: int) -> None:
    """Output has exactly the exponent's decimals at any sign (balances and nets can be zero
    or negative); as input, a positive one parses back to the same minor units and the rest
    are refused."""
    cur = currency(code)
    text = format_amount(minor, cur)
    fraction = rf"\.[0-9]{{{cur.exponent}}}" if cur.exponent else ""
    assert re.fullmatch(rf"-?(0|[1-9][0-9]*){fraction}", text), text
    assert Decimal(text) * cur.scale == minor
    if minor > 0:
        assert parse_amount(text, cur, field=field) == minor
    else:
        assert_refused(text, cur)


@per_currency
@settings(max_examples=examples_per_currency)
@given(units=st.integers(min_value=0, max_value=10**16),
       fraction=st.text(alphabet=digits, max_size=4))
def test_parse_then_format_gives_the_canonical_string(code: str, units: int,
                                                      fraction: str) -> None:
    """Any plain decimal string with at most the currency's decimals parses to its exact
    value and formats back to the canonical string, or is refused for zero or size."""
    cur = currency(code)
    fraction = fraction[:cur.exponent]
    text = f"{units}.{fraction}" if fraction else str(units)
    exact = Decimal(text) * cur.scale
    if not 0 < exact <= amount_minor_max:
        assert_refused(text, cur)
        return
    minor = parse_amount(text, cur, field=field)
    assert minor == exact
    assert format_amount(minor, cur) == canonical(text, cur)


# --- refused input, per currency ---------------------------------------------------------------


@per_currency
@settings(max_examples=examples_per_currency)
@given(minor=st.integers(min_value=1, max_value=amount_minor_max // 1000),
       extra=st.text(alphabet=digits, min_size=1, max_size=3))
def test_more_decimals_than_the_currency_has_are_refused_not_rounded(
        code: str, minor: int, extra: str) -> None:
    """Even trailing zeros: "1.000" is not a EUR amount, and "1.5" is not a JPY one."""
    cur = currency(code)
    text = format_amount(minor, cur)
    text += extra if cur.exponent else "." + extra
    error = assert_refused(text, cur)
    assert "decimal places" in error.message
    assert code in error.message


special_values = ["NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "inf",
                  "Inf", "-inf", "∞"]


def _mutations(text: str, cur: Currency) -> list[str]:
    """Ways a valid amount string is spelt that the API refuses."""
    units, point, fraction = text.partition(".")
    first = text[0]
    return [
        f"{text}e0", f"{text}E0", f"{units}e{cur.exponent}", f"{text}e-0",  # exponents
        f"-{text}", f"+{text}", f"{text}-", f"--{text}", "-0",  # signs
        f" {text}", f"{text} ", f"\t{text}", f"{text}\n", f"\u00a0{text}", f"{text}\u2009",
        f"\u3000{text}", f"{units} {point}{fraction}" if point else f"{units} 0",  # spaces
        f"0{text}", f"00{text}",  # leading zeros
        f"{units}," + (fraction or "0"), f"{units}_0{point}{fraction}",  # separators
        f"{units}{point}{fraction}." if point else f"{units}.",  # stray point
        f".{text}", f"{text}..0",
        f"{text}{cur.code}", f"{cur.code} {text}", f"{text}{cur.code.lower()}",  # currency text
        f"0x{text}", f"{text}\x00", "",
        chr(0x0660 + int(first)) + text[1:],  # Arabic-Indic digit
        chr(0x0966 + int(first)) + text[1:],  # Devanagari digit
        chr(0xFF10 + int(first)) + text[1:],  # full-width digit
        chr(0x1D7CE + int(first)) + text[1:],  # mathematical bold digit
        text[:-1] + chr(0x0660 + int(text[-1])),  # non-ASCII digit in the fraction
    ]


@per_currency
@settings(max_examples=examples_per_currency)
@given(minor=st.integers(min_value=1, max_value=amount_minor_max))
def test_other_spellings_of_a_valid_amount_are_refused(code: str, minor: int) -> None:
    cur = currency(code)
    text = format_amount(minor, cur)
    for bad in [*_mutations(text, cur), *special_values]:
        assert_refused(bad, cur)


@per_currency
def test_amounts_over_the_maximum_are_refused_however_written(code: str) -> None:
    cur = currency(code)
    over = [format_amount(amount_minor_max + n, cur) for n in (1, 10**cur.exponent, 10**15)]
    over += ["9" * 16, "1" + "0" * 30, "9" * (amount_text_length_max - 1)]
    for text in over:
        assert_refused(text, cur)
    too_long = "1" + "0" * amount_text_length_max
    assert str(amount_text_length_max) in assert_refused(too_long, cur).message
    assert_refused("1." + "0" * (amount_text_length_max - 1), cur)


@pytest.mark.parametrize("value", [1, 1.0, Decimal("1"), b"1", None, True, ["1"]])
def test_non_strings_are_refused_in_every_currency(value: object) -> None:
    for code in codes:
        assert_refused(value, currency(code))


# --- the GraphQL Money type ----------------------------------------------------------------------


@strawberry.type
class _Query:
    """What a resolver does with an amount and currency from an input, and how ``Money``
    comes back: the real type and helpers, no HTTP and no database."""

    @strawberry.field
    def echo(self, amount: str, currency_code: str) -> Money:
        cur = currency(currency_code, field="currency")
        return money(parse_amount(amount, cur, field="amount"), cur.code)

    @strawberry.field
    def shown(self, amount_minor: str, currency_code: str) -> Money:
        # A GraphQL Int is 32-bit: minor units beyond it arrive here as text.
        return money(int(amount_minor), currency_code)


graphql = strawberry.Schema(query=_Query)


@per_currency
def test_money_type_carries_the_formatted_amount_in_and_out(code: str) -> None:
    """Each edge amount, negative and zero too, out through ``Money``; each positive one in
    through an input's string and back out unchanged."""
    cur = currency(code)
    out = [*edge_amounts(cur), 0, -1, -cur.scale, -amount_minor_max]
    fields = [f'o{i}: shown(amountMinor: "{m}", currencyCode: "{code}") {{ amount currency }}'
              for i, m in enumerate(out)]
    fields += [f'i{i}: echo(amount: "{format_amount(m, cur)}", currencyCode: "{code}") '
               "{ amount currency }" for i, m in enumerate(edge_amounts(cur))]
    result = graphql.execute_sync("{ " + " ".join(fields) + " }")
    assert result.errors is None, result.errors
    assert result.data == {
        **{f"o{i}": {"amount": format_amount(m, cur), "currency": code}
           for i, m in enumerate(out)},
        **{f"i{i}": {"amount": format_amount(m, cur), "currency": code}
           for i, m in enumerate(edge_amounts(cur))}}
    for m in out:
        assert money(m, code) == Money(amount=format_amount(m, cur), currency=code)


echo = "query($a: String!, $c: String!) { echo(amount: $a, currencyCode: $c) { amount currency } }"


@per_currency
def test_money_input_refuses_too_many_decimals_by_field(code: str) -> None:
    cur = currency(code)
    text = format_amount(1, cur) + ("0" if cur.exponent else ".0")
    result = graphql.execute_sync(echo, variable_values={"a": text, "c": code})
    assert result.data is None
    assert result.errors is not None
    [error] = result.errors
    assert isinstance(error.original_error, InvalidInput)
    assert error.original_error.field == "amount"
