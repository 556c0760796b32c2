"""ISO 4217 codes: which ones are money here, their exponents, and how bad codes are refused."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.currency import Currency, all_currencies, code_length, currency
from payments.errors import InvalidInput

known_codes = {c.code for c in all_currencies()}


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("EUR", 2), ("JPY", 0), ("KWD", 3), ("CNY", 2), ("SGD", 2), ("GBP", 2), ("USD", 2)],
)
def test_currency_has_iso_exponent(code: str, exponent: int) -> None:
    found = currency(code)
    assert found == Currency(code=code, exponent=exponent)
    assert found.scale == 10**exponent


@pytest.mark.parametrize(
    "code",
    [
        "eur",  # ISO codes are upper case; we do not guess.
        "Eur",
        "EURO",
        "EU",
        "",
        " EUR",
        "EUR ",
        "XXX",  # "no currency"
        "XTS",  # reserved for testing
        "XAU",  # gold: no minor unit, not money here
        "XAG",
        "XDR",
        "ABC",
        "\uff25\uff35\uff32",  # full-width "EUR": upper case to str.isupper(), not ISO
    ],
)
def test_currency_rejects_code(code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        currency(code, field="sourceCurrency")
    assert raised.value.field == "sourceCurrency"
    assert raised.value.code == "VALIDATION_ERROR"


@pytest.mark.parametrize("value", [None, 978, 2.0, b"EUR", ["EUR"], ("E", "U", "R")])
def test_currency_rejects_non_string(value: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        currency(value, field="targetCurrency")  # type: ignore[arg-type]
    assert raised.value.field == "targetCurrency"


def test_currency_field_defaults_to_currency() -> None:
    with pytest.raises(InvalidInput) as raised:
        currency("XXX")
    assert raised.value.field == "currency"


def test_all_currencies_is_sorted_and_lookup_consistent() -> None:
    listed = all_currencies()
    codes = [c.code for c in listed]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    for c in listed:
        assert len(c.code) == code_length
        assert c.code.isascii()
        assert c.code.isupper()
        assert c.exponent in {0, 2, 3, 4}
        assert currency(c.code) == c
    assert {"XXX", "XTS", "XAU", "XAG", "XPT", "XPD"}.isdisjoint(codes)
    # The suite's exponent coverage relies on these all being present.
    assert {c.exponent for c in listed} >= {0, 2, 3}


@given(st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3))
def test_any_three_letters_either_known_or_rejected(code: str) -> None:
    if code in known_codes:
        assert currency(code, field="f").code == code
    else:
        with pytest.raises(InvalidInput) as raised:
            currency(code, field="f")
        assert raised.value.field == "f"


@given(st.text(max_size=6).filter(lambda s: s not in known_codes))
def test_arbitrary_text_that_is_not_a_code_is_rejected(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        currency(text, field="f")
    assert raised.value.field == "f"
