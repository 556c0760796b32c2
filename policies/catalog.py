"""The jurisdictions Corridor serves, and which of them an operation involves."""

from __future__ import annotations

from functools import cache

from policies import cn, eu, hk, sg, uk, us
from policies.common import crossing
from policies.model import Jurisdiction, Kind, Operation, Role, Rule

_all: dict[str, Jurisdiction] = {j.code: j for j in (eu.policy, uk.policy, us.policy, sg.policy,
                                                      hk.policy, cn.policy)}


def codes() -> list[str]:
    return list(_all)


def jurisdiction(code: str) -> Jurisdiction:
    return _all[code]


@cache
def of_country(country: str) -> str | None:
    """The served jurisdiction a country belongs to, if any."""
    for spec in _all.values():
        if country in spec.countries:
            return spec.code
    return None


@cache
def rules_for(code: str, kind: Kind, role: Role) -> tuple[Rule, ...]:
    """The rules of a jurisdiction that decide this kind of operation in this role."""
    return tuple(r for r in _all[code].rules if kind in r.kinds and role in r.roles)


@cache
def currencies_needed(code: str) -> frozenset[str]:
    return _all[code].currencies_needed()


def involved(op: Operation) -> tuple[tuple[str, Role], ...]:
    """The tenant's jurisdiction, and for money crossing the platform's edge the one at the
    other end when it is another served jurisdiction."""
    other = (of_country(op.counterparty_country)
             if op.kind in crossing and op.counterparty_country is not None else None)
    if other is None or other == op.jurisdiction:
        return ((op.jurisdiction, Role.ORIGIN),)
    return ((op.jurisdiction, Role.ORIGIN), (other, Role.DESTINATION))
