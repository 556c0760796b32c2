"""ISO 4217 currencies and their minor-unit exponents.

The table comes from the ``iso4217`` package, which ships the ISO maintenance agency's list.
Every code with a minor unit is money here, funds codes included (CLF and UYW with four
decimals, BOV, CHE, CHW, COU, MXV, USN, UYI); the units without one (SDR, the bond-market units,
precious metals) and the testing codes XTS and XXX are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import iso4217

from payments.currency_history import accepted_exponents
from payments.errors import InvalidInput

code_length = 3


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int

    @property
    def scale(self) -> int:
        """Minor units per major unit: 100 for EUR, 1 for JPY, 1000 for KWD."""
        return int(10**self.exponent)


@cache
def _table() -> dict[str, Currency]:
    return {
        c.code: Currency(code=c.code, exponent=c.exponent)
        for c in iso4217.Currency
        if c.exponent is not None and c.code not in {"XTS", "XXX"}
    }


def currency(code: str, field: str = "currency") -> Currency:
    """The currency for an ISO 4217 code, or ``InvalidInput`` naming ``field``."""
    if not isinstance(code, str) or len(code) != code_length or not code.isupper():
        raise InvalidInput(f"currency must be a three-letter ISO 4217 code, got {code!r}", field)
    found = _table().get(code)
    if found is None:
        raise InvalidInput(f"unknown currency {code!r}", field)
    return found


def stored_currency(code: str) -> Currency:
    """The currency of money already stored, for output: the installed table, else the
    snapshot of every code ever accepted (an ``iso4217`` upgrade may withdraw a code that rows
    still hold). ``LookupError`` for a code never accepted: the row did not come through
    ``currency()``."""
    found = _table().get(code)
    if found is not None:
        return found
    exponent = accepted_exponents.get(code)
    if exponent is None:
        raise LookupError(f"stored money in {code!r}, a code Corridor never accepted")
    return Currency(code=code, exponent=exponent)


def all_currencies() -> list[Currency]:
    return sorted(_table().values(), key=lambda c: c.code)
