"""Payout and virtual-account parameters per jurisdiction: pure data.

Which countries a tenant may issue virtual account details in follows from where its region's
issuing bank partners hold licences; fees are Corridor's price list, not a regulation. Both
move into the versioned parameter store with the policies work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PayoutParameters:
    issuable_countries: frozenset[str]
    """Countries whose virtual account details the jurisdiction's tenants may be issued."""
    rail_fee_minor: Mapping[str, int]
    """Fee per payout by rail, in minor units of the payout's currency (absent: no fee)."""


_eu_iban_countries = frozenset({"DE", "FR", "NL", "ES", "IT", "BE", "IE"})
_fees = {"SEPA_CT": 20, "SEPA_INSTANT": 35, "UK_FPS": 25, "ACH": 25, "FEDWIRE": 1_500,
         "FAST": 50, "HK_FPS": 300, "CNAPS": 500}

_by_jurisdiction = {
    "EU": PayoutParameters(_eu_iban_countries, _fees),
    "UK": PayoutParameters(frozenset({"GB"}), _fees),
    "US": PayoutParameters(frozenset({"US"}), _fees),
    "SG": PayoutParameters(frozenset({"SG"}), _fees),
    "HK": PayoutParameters(frozenset({"HK"}), _fees),
    "CN": PayoutParameters(frozenset({"CN"}), _fees),
}


def payout_parameters(jurisdiction: str) -> PayoutParameters:
    return _by_jurisdiction[jurisdiction]
