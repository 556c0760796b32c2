"""Money at the API edge: decimal strings in major units, exactly the currency's exponent."""

from __future__ import annotations

import strawberry

from payments.currency import stored_currency as lookup_currency
from payments.money import format_amount


@strawberry.type(description='An amount, e.g. { amount: "10.50", currency: "EUR" }.')
class Money:
    amount: str = strawberry.field(
        description="Decimal string in major units with exactly the currency's decimals.")
    currency: str = strawberry.field(description="ISO 4217 code.")


def money(amount_minor: int, currency_code: str) -> Money:
    return Money(amount=format_amount(amount_minor, lookup_currency(currency_code)),
                 currency=currency_code)
