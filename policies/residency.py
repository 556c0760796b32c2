"""Which fields of a payment may leave its home region, and for where: the one question
cross-region settlement asks before anything crosses. Both ends' policies must allow a field;
a region a policy does not name receives nothing."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import Params


def _allowed(params: Params, region: str) -> frozenset[str]:
    table = params["exportable_fields"]
    assert isinstance(table, Mapping)
    return frozenset(table.get(region, frozenset()))


def fields_allowed(origin: Params, origin_region: str, destination: Params,
                   destination_region: str) -> frozenset[str]:
    """Fields the origin's policy lets go to ``destination_region`` and the destination's
    policy would let go back the other way (a sovereign destination that exports nothing
    receives only what its own rules could return: nothing personal)."""
    if origin_region == destination_region:
        raise ValueError("a payment that stays in its region does not cross")
    return _allowed(origin, destination_region) & _allowed(destination, origin_region)
