"""Amounts as integers of minor units, and their decimal-string form at the API edge.

Amounts never pass through floats. The API's decimal string has at most the currency's
exponent of digits after the point; on output it has exactly that many.
"""

from __future__ import annotations

import re

from payments.currency import Currency
from payments.errors import InvalidInput

# The largest single amount, in minor units: 15 digits keeps every sum of a thousand-item batch
# inside a signed 64-bit column while allowing a quadrillion yen.
amount_minor_max = 999_999_999_999_999
amount_text_length_max = 40

_decimal = re.compile(r"(?P<units>0|[1-9][0-9]*)(?:\.(?P<fraction>[0-9]+))?")


def parse_amount(text: object, cur: Currency, field: str = "amount") -> int:
    """Minor units of a positive decimal string such as ``"1234.50"``.

    Rejects negatives, zero, signs, exponents, spaces, too many decimals and amounts above
    ``amount_minor_max``, each with a message naming the problem.
    """
    if not isinstance(text, str):
        raise InvalidInput("amount must be a decimal string such as \"10.50\"", field)
    if len(text) > amount_text_length_max:
        raise InvalidInput(f"amount is longer than {amount_text_length_max} characters", field)
    if text.startswith("-"):
        raise InvalidInput("amount must be positive", field)
    match = _decimal.fullmatch(text)
    if match is None:
        raise InvalidInput(f"amount {text!r} is not a decimal number such as \"10.50\"", field)
    fraction = match.group("fraction") or ""
    if len(fraction) > cur.exponent:
        raise InvalidInput(
            f"{cur.code} allows {cur.exponent} decimal places, {text!r} has {len(fraction)}",
            field,
        )
    minor = int(match.group("units")) * cur.scale + int(fraction.ljust(cur.exponent, "0") or "0")
    if minor == 0:
        raise InvalidInput("amount must be greater than zero", field)
    if minor > amount_minor_max:
        raise InvalidInput(f"amount exceeds the maximum of {format_amount(amount_minor_max, cur)}",
                           field)
    return minor


def format_amount(minor: int, cur: Currency) -> str:
    """The decimal string with exactly the currency's exponent of digits: 1050 EUR -> "10.50"."""
    sign = "-" if minor < 0 else ""
    units, fraction = divmod(abs(minor), cur.scale)
    if cur.exponent == 0:
        return f"{sign}{units}"
    return f"{sign}{units}.{fraction:0{cur.exponent}d}"
