"""Payouts as a pure state machine, and which rail carries a payout.

A payout holds its amount (and fee) on the customer's account, then a rail settles it:
``PENDING -> PROCESSING -> COMPLETED | FAILED``; a completed payout may come back
``RETURNED`` days later; a payout not yet processing may be ``CANCELLED``; a payout a policy
sends to review waits as ``HELD_FOR_REVIEW`` with its money held, until an officer releases
it (back to PENDING) or rejects it (FAILED); the worker's own policy check may hold or fail a
PENDING payout before it reaches the rail. Money follows status: the
hold is posted on COMPLETED, voided on FAILED and CANCELLED, and a RETURNED payout's amount
comes back by a reversal journal (the fee is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from payments.errors import DomainError, InvalidInput


class PayoutStatus(StrEnum):
    PENDING = "PENDING"
    HELD_FOR_REVIEW = "HELD_FOR_REVIEW"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RETURNED = "RETURNED"
    CANCELLED = "CANCELLED"


_next: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    PayoutStatus.PENDING: frozenset({PayoutStatus.PROCESSING, PayoutStatus.CANCELLED,
                                     PayoutStatus.HELD_FOR_REVIEW, PayoutStatus.FAILED}),
    PayoutStatus.HELD_FOR_REVIEW: frozenset({PayoutStatus.PENDING, PayoutStatus.CANCELLED,
                                             PayoutStatus.FAILED}),
    PayoutStatus.PROCESSING: frozenset({PayoutStatus.COMPLETED, PayoutStatus.FAILED}),
    PayoutStatus.COMPLETED: frozenset({PayoutStatus.RETURNED}),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.RETURNED: frozenset(),
    PayoutStatus.CANCELLED: frozenset(),
}
final_statuses = frozenset(s for s, after in _next.items() if not after) | {
    PayoutStatus.COMPLETED}
"""Statuses a payout may end in (a COMPLETED payout ends there unless it is returned)."""


def can_move(current: PayoutStatus, new: PayoutStatus) -> bool:
    return new in _next[current]


class PayoutNotCancellable(DomainError):
    code = "PAYOUT_NOT_CANCELLABLE"

    def __init__(self, payout_id: str, status: PayoutStatus) -> None:
        super().__init__(f"payout {payout_id!r} is {status.value.lower()}; only pending or "
                         "held payouts can be cancelled")
        self.payout_id = payout_id


class RailUnavailable(DomainError):
    code = "RAIL_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class Rail:
    name: str
    currency: str
    region: str
    """The region whose bank connection carries the rail."""
    countries: frozenset[str]
    """Beneficiary countries the rail reaches."""
    amount_minor_max: int | None = None
    """Largest payout the rail takes, in minor units; None: no scheme limit."""


sepa_countries = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
    "CH", "GB", "MC", "SM", "VA", "AD"})

# In order of preference: the first rail for the currency that takes the amount and reaches
# the beneficiary's country is used. Scheme maxima are Corridor's routing choices where a
# scheme has none of its own.
rails: tuple[Rail, ...] = (
    Rail("SEPA_INSTANT", "EUR", "eu-central", sepa_countries, 10_000_000),
    Rail("SEPA_CT", "EUR", "eu-central", sepa_countries),
    Rail("UK_FPS", "GBP", "uk-south", frozenset({"GB"}), 100_000_000),
    Rail("ACH", "USD", "us-east", frozenset({"US"}), 10_000_000),
    Rail("FEDWIRE", "USD", "us-east", frozenset({"US"})),
    Rail("FAST", "SGD", "ap-southeast", frozenset({"SG"}), 20_000_000),
    Rail("HK_FPS", "HKD", "ap-southeast", frozenset({"HK"})),
    Rail("CNAPS", "CNY", "cn-east", frozenset({"CN"})),
)


def choose_rail(currency: str, country: str, amount_minor: int) -> Rail:
    """The rail for a payout, or ``RailUnavailable`` saying why none fits."""
    for_currency = [r for r in rails if r.currency == currency]
    if not for_currency:
        raise RailUnavailable(f"Corridor has no payout rail for {currency}")
    reaching = [r for r in for_currency if country in r.countries]
    if not reaching:
        names = ", ".join(r.name for r in for_currency)
        raise RailUnavailable(f"{currency} payouts ({names}) do not reach {country}")
    for r in reaching:
        if r.amount_minor_max is None or amount_minor <= r.amount_minor_max:
            return r
    raise RailUnavailable(f"the amount exceeds every {currency} rail's maximum")


purpose_code_length_max = 4


def check_purpose_code(code: str | None) -> str | None:
    """ISO 20022 external purpose codes are four uppercase letters (e.g. SALA, SUPP)."""
    if code is None:
        return None
    if len(code) != purpose_code_length_max or not (code.isascii() and code.isupper()
                                                    and code.isalpha()):
        raise InvalidInput("purposeCode must be an ISO 20022 purpose code of four capital "
                           "letters, such as SALA or SUPP", "purposeCode")
    return code
