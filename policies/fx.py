"""FX parameters per jurisdiction: pure data, read by quoting and the rate refresh.

These are Corridor's commercial and risk defaults, not figures from a regulation: no rule in the
served jurisdictions fixes an FX spread or a reference-rate age. The jurisdiction-policy work
moves them into the versioned parameter store behind maker-checker approval.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FxParameters:
    spread_bps_default: int
    """Spread over the mid rate when the tenant has no setting of its own."""
    rate_age_s_max: int
    """Rates older than this are stale, and quotes on them are refused."""
    quote_validity_s_default: int
    quote_validity_s_max: int
    rate_jump_bps_max: int
    """A new rate this far from the last one is held for review, not used."""


_default = FxParameters(
    spread_bps_default=50,
    rate_age_s_max=3_600,
    quote_validity_s_default=30,
    quote_validity_s_max=1_800,
    rate_jump_bps_max=1_000,
)

_by_jurisdiction: dict[str, FxParameters] = {}


def fx_parameters(jurisdiction: str) -> FxParameters:
    return _by_jurisdiction.get(jurisdiction, _default)


def global_parameters() -> FxParameters:
    """Parameters of the global rate refresh, which serves every jurisdiction."""
    return _default
