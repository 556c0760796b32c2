"""Payout fees per jurisdiction: Corridor's price list, not a regulation, so they stay in
code (compliance parameters, such as the countries account details may be issued in, live in
the versioned policy store)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PayoutParameters:
    rail_fee_minor: Mapping[str, int]
    """Fee per payout by rail, in minor units of the payout's currency (absent: no fee)."""


_fees = {"SEPA_CT": 20, "SEPA_INSTANT": 35, "UK_FPS": 25, "ACH": 25, "FEDWIRE": 1_500,
         "FAST": 50, "HK_FPS": 300, "CNAPS": 500}

_by_jurisdiction = {code: PayoutParameters(_fees) for code in ("EU", "UK", "US", "SG", "HK",
                                                               "CN")}


def payout_parameters(jurisdiction: str) -> PayoutParameters:
    return _by_jurisdiction[jurisdiction]
