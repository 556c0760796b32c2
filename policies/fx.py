"""FX parameters as the quoting and the rate refresh read them, from a policy version.

The figures live in the versioned parameter store with every other policy parameter (declared
in ``policies.common.fx_params``): commercial and risk defaults, since no rule in the served
jurisdictions fixes an FX spread or a reference rate's age.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from policies.model import Params


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


def _int(p: Params, name: str) -> int:
    value = p[name]
    assert isinstance(value, int), name
    return value


def fx_parameters(p: Params) -> FxParameters:
    return FxParameters(
        spread_bps_default=_int(p, "fx_spread_bps_default"),
        rate_age_s_max=_int(p, "fx_rate_age_s_max"),
        quote_validity_s_default=_int(p, "fx_quote_validity_s_default"),
        quote_validity_s_max=_int(p, "fx_quote_validity_s_max"),
        rate_jump_bps_max=_int(p, "fx_rate_jump_bps_max"),
    )


def refresh_jump_bps_max(versions: Iterable[Params]) -> int:
    """The global rate refresh serves every jurisdiction: the strictest jump bound holds."""
    return min(_int(p, "fx_rate_jump_bps_max") for p in versions)
