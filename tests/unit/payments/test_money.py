"""Amounts as integers of minor units and their decimal strings at the API edge.

``decimal.Decimal`` serves as the exact oracle here; floats appear only as rejected input.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from payments.currency import Currency, all_currencies, currency
from payments.errors import InvalidInput
from payments.money import amount_minor_max, amount_text_length_max, format_amount, parse_amount

eur = currency("EUR")
jpy = currency("JPY")
kwd = currency("KWD")
currencies = all_currencies()
# One representative per exponent keeps parametrised cases readable; hypothesis covers them all.
by_exponent = {c.exponent: c for c in reversed(currencies)}
currency_st = st.sampled_from(currencies)
minor_st = st.integers(min_value=1, max_value=amount_minor_max)


def parse_or_error(text: object, cur: Currency, field: str) -> int | InvalidInput:
    try:
        return parse_amount(text, cur, field=field)
    except InvalidInput as error:
        return error


def exact_minor(text: str, cur: Currency) -> int:
    """What a correct parser returns, computed with exact decimals."""
    value = Decimal(text) * cur.scale
    assert value == value.to_integral_value()
    return int(value)


# Round trip and output shape.


@pytest.mark.parametrize("exponent", [0, 2, 3, 4])
@pytest.mark.parametrize("minor", [1, 7, 10, 99, 100, 101, 1000, 1050, 123_456, amount_minor_max])
def test_round_trip_per_exponent(exponent: int, minor: int) -> None:
    cur = by_exponent[exponent]
    text = format_amount(minor, cur)
    assert parse_amount(text, cur) == minor


@settings(max_examples=300)
@given(minor_st, currency_st)
@example(1, eur)
@example(amount_minor_max, eur)
@example(amount_minor_max, jpy)
@example(amount_minor_max, kwd)
def test_parse_inverts_format(minor: int, cur: Currency) -> None:
    assert parse_amount(format_amount(minor, cur), cur) == minor


@settings(max_examples=300)
@given(st.integers(min_value=-amount_minor_max, max_value=amount_minor_max), currency_st)
def test_format_has_exactly_exponent_decimals(minor: int, cur: Currency) -> None:
    text = format_amount(minor, cur)
    if cur.exponent == 0:
        assert re.fullmatch(r"-?(0|[1-9][0-9]*)", text), text
    else:
        assert re.fullmatch(rf"-?(0|[1-9][0-9]*)\.[0-9]{{{cur.exponent}}}", text), text
    assert Decimal(text) * cur.scale == minor


@pytest.mark.parametrize(
    ("minor", "cur", "text"),
    [
        (1050, eur, "10.50"),
        (1, eur, "0.01"),
        (100, eur, "1.00"),
        (0, eur, "0.00"),
        (-1050, eur, "-10.50"),
        (-1, eur, "-0.01"),
        (5, jpy, "5"),
        (0, jpy, "0"),
        (1, kwd, "0.001"),
        (1_000, kwd, "1.000"),
        (amount_minor_max, eur, "9999999999999.99"),
        (amount_minor_max, jpy, "999999999999999"),
    ],
)
def test_format_examples(minor: int, cur: Currency, text: str) -> None:
    assert format_amount(minor, cur) == text


# Accepted input.


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [
        ("10.5", eur, 1050),  # fewer decimals than the exponent is fine
        ("10", eur, 1000),
        ("10.50", eur, 1050),
        ("0.01", eur, 1),
        ("0.5", kwd, 500),
        ("1.23", kwd, 1230),
        ("1500", jpy, 1500),
        ("9999999999999.99", eur, amount_minor_max),
        ("999999999999.999", kwd, amount_minor_max),
        ("999999999999999", jpy, amount_minor_max),
    ],
)
def test_parse_accepts(text: str, cur: Currency, minor: int) -> None:
    assert parse_amount(text, cur) == minor


def test_parse_is_exact_where_floats_are_not() -> None:
    assert 0.1 + 0.2 != 0.3  # the trap this module exists to avoid
    assert parse_amount("0.30", eur) == 30
    assert parse_amount("0.1", eur) + parse_amount("0.2", eur) == parse_amount("0.3", eur) == 30
    assert parse_amount("1.15", eur) == 115  # int(1.15 * 100) == 114
    assert parse_amount("4.35", eur) == 435  # int(4.35 * 100) == 434
    assert parse_amount("999999999999.999", kwd) == 999_999_999_999_999


@settings(max_examples=300)
@given(st.from_regex(r"(0|[1-9][0-9]{0,17})(\.[0-9]{1,5})?", fullmatch=True), currency_st)
def test_parse_matches_exact_decimal_or_rejects(text: str, cur: Currency) -> None:
    """Every plain decimal string either parses to its exact value or is refused for a reason."""
    fraction = text.partition(".")[2]
    minor = parse_or_error(text, cur, field="amount")
    if isinstance(minor, InvalidInput):
        assert minor.field == "amount"
        too_precise = len(fraction) > cur.exponent
        assert too_precise or not 0 < exact_minor(text, cur) <= amount_minor_max
    else:
        assert len(fraction) <= cur.exponent
        assert minor == exact_minor(text, cur)
        assert 0 < minor <= amount_minor_max
        assert format_amount(minor, cur) == normalise(text, cur)


def normalise(text: str, cur: Currency) -> str:
    units, _, fraction = text.partition(".")
    return units if cur.exponent == 0 else f"{units}.{fraction.ljust(cur.exponent, '0')}"


# Rejected input.


def assert_rejected(text: object, cur: Currency, field: str = "sourceAmount") -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        parse_amount(text, cur, field=field)
    assert raised.value.field == field
    assert raised.value.code == "VALIDATION_ERROR"
    return raised.value


@pytest.mark.parametrize(
    ("text", "cur"),
    [
        ("1.001", eur),  # too many decimals for the currency
        ("1.5", jpy),
        ("1.0", jpy),
        ("0.0001", kwd),
        ("1.000", eur),  # trailing zeros still count as decimals
        ("-1", eur),  # negative
        ("-0.01", eur),
        ("-0", eur),
        ("0", eur),  # zero
        ("0.00", eur),
        ("0.0", eur),
        ("0", jpy),
        ("0.000", kwd),
        ("1" + "0" * 30, eur),  # absurdly large
        ("10000000000000.00", eur),  # amount_minor_max + 1 minor unit
        ("1000000000000000", jpy),
        ("1000000000000.000", kwd),
        ("1e5", eur),  # exponent notation
        ("1E5", eur),
        ("1.5e2", eur),
        ("+1", eur),  # leading plus
        ("+1.00", eur),
        (" 1", eur),  # whitespace
        ("1 ", eur),
        ("1\n", eur),
        ("\t1.00", eur),
        ("1 000", eur),
        ("1\u00a0000", eur),
        ("", eur),  # empty
        ("01.00", eur),  # leading zeros
        ("00", jpy),
        ("007", jpy),
        ("1.", eur),  # point with no digits after it
        (".5", eur),  # point with no digits before it
        (".", eur),
        ("1..0", eur),
        ("1.0.0", eur),
        ("1,00", eur),  # decimal comma
        ("1,000.00", eur),  # group separators
        ("1_000", eur),  # int() would accept this
        ("0x10", eur),
        ("NaN", eur),
        ("Infinity", eur),
        ("inf", eur),
        ("\u0661\u0662", jpy),  # Arabic-Indic "12": str.isdigit() and int() accept it
        ("\u0661.\u0662\u0663", eur),
        ("\uff11\uff12", jpy),  # full-width "12"
        ("1\u0662", jpy),  # an ASCII digit followed by a non-ASCII one
        ("1.\u0662\u0663", eur),
        ("1.2\uff13", kwd),
        ("€10", eur),
        ("10 EUR", eur),
    ],
)
def test_parse_rejects(text: str, cur: Currency) -> None:
    assert_rejected(text, cur)


@pytest.mark.parametrize("value", [10, 10.5, 0.1, None, Decimal("10.50"), b"10.50", ["10.50"]])
def test_parse_rejects_non_strings(value: object) -> None:
    assert_rejected(value, eur)


def test_parse_rejects_text_longer_than_limit() -> None:
    # Valid digits otherwise, so only the length can be the reason.
    text = "1." + "0" * (amount_text_length_max - 1)
    assert len(text) == amount_text_length_max + 1
    error = assert_rejected(text, eur)
    assert str(amount_text_length_max) in error.message
    assert_rejected("9" * 10_000, jpy)


def test_error_messages_name_the_problem() -> None:
    assert "positive" in assert_rejected("-1", eur).message
    assert "zero" in assert_rejected("0.00", eur).message
    assert "decimal places" in assert_rejected("1.001", eur).message
    assert format_amount(amount_minor_max, eur) in assert_rejected("1" + "0" * 30, eur).message


def test_field_defaults_to_amount() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_amount("0", eur)
    assert raised.value.field == "amount"


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=50), st.none(), st.integers(), st.floats()), currency_st)
def test_parse_never_returns_out_of_range_or_raises_anything_else(
    text: object, cur: Currency
) -> None:
    minor = parse_or_error(text, cur, field="f")
    if isinstance(minor, InvalidInput):
        assert minor.field == "f"
    else:
        assert isinstance(text, str)
        assert type(minor) is int
        assert 0 < minor <= amount_minor_max
        assert text.isascii()
        assert exact_minor(text, cur) == minor
