"""Stored money stays readable when the installed ISO 4217 table withdraws its currency."""

from __future__ import annotations

import pytest

from payments import currency as currency_module
from payments.currency import Currency, all_currencies, stored_currency
from payments.currency_history import accepted_exponents
from payments.errors import InvalidInput
from regions.webhooks import public_data
from schema.money import money

regenerate = ("add it to payments/currency_history.py (the snapshot only grows; an exponent "
              "never changes for a code, a redenomination gets a new code)")


def test_every_accepted_code_is_in_the_snapshot_with_its_exponent() -> None:
    for cur in all_currencies():
        assert accepted_exponents.get(cur.code) == cur.exponent, (cur, regenerate)


def test_a_withdrawn_code_is_refused_as_input_but_its_stored_money_reads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As if an iso4217 upgrade dropped EUR and KWD while rows hold them."""
    live = {c.code: c for c in all_currencies() if c.code not in ("EUR", "KWD")}
    monkeypatch.setattr(currency_module, "_table", lambda: live)
    with pytest.raises(InvalidInput, match="unknown currency 'EUR'"):
        currency_module.currency("EUR")
    assert stored_currency("EUR") == Currency("EUR", 2)
    assert money(1050, "EUR").amount == "10.50"
    assert money(1_234, "KWD").amount == "1.234"
    assert public_data({"amount_minor": 705, "currency": "EUR"})["amount"] == {
        "amount": "7.05", "currency": "EUR"}


def test_a_code_never_accepted_is_a_lookup_error() -> None:
    for code in ("XTS", "XXX", "XAU", "ZZZ", "eur", ""):
        with pytest.raises(LookupError, match="never accepted"):
            stored_currency(code)
