"""Control plane: the tenant directory and API keys (stored only as a keyed hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.errors import InvalidInput, NotFound
from payments.fx import spread_bps_max
from payments.principal import Environment, Principal, Role, Tenant
from payments.text import check_text
from policies import catalog
from regions.policy_gate import PolicyGate, check_onboarding
from regions.tables import api_keys, tenants
from regions.topology import Topology

key_prefix = "cor"
key_secret_bytes = 32
key_display_length = 16
key_length_max = 128
tenant_name_length_max = 200


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    key: str
    tenant_id: str
    role: Role


def key_hash(pepper: bytes, key: str) -> bytes:
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def choose_region(topo: Topology, jurisdiction: str, region: str | None) -> str:
    """The home region for a tenant: the one asked for, if it serves the jurisdiction."""
    serving = [r.code for r in topo.regions_for(jurisdiction)]
    if not serving:
        raise InvalidInput(f"no region serves jurisdiction {jurisdiction!r}", "jurisdiction")
    if region is None:
        return serving[0]
    if region not in serving:
        raise InvalidInput(
            f"region {region!r} does not serve jurisdiction {jurisdiction}; use one of {serving}",
            "region")
    return region


async def create_tenant(
    conn: AsyncConnection, topo: Topology, name: str, jurisdiction: str,
    region: str | None, environment: Environment, fx_spread_bps: int | None = None, *,
    gate: PolicyGate,
) -> Tenant:
    """A tenant homed where its jurisdiction's policy allows, its name screened."""
    check_text(name.strip(), "name", tenant_name_length_max, length_min=1)
    check_spread(fx_spread_bps)
    home = choose_region(topo, jurisdiction, region)
    check_onboarding(gate, name.strip(), jurisdiction, home)
    tenant = Tenant(ids.new_id("ten", home), name.strip(), jurisdiction, home, environment,
                    fx_spread_bps)
    await conn.execute(insert(tenants).values(
        id=tenant.id, name=tenant.name, jurisdiction=jurisdiction, home_region=home,
        environment=environment.value, status="active", fx_spread_bps=fx_spread_bps))
    return tenant


def check_spread(fx_spread_bps: int | None) -> None:
    if fx_spread_bps is not None and not 0 <= fx_spread_bps <= spread_bps_max:
        raise InvalidInput(f"fx spread must be 0 to {spread_bps_max} basis points",
                           "fxSpreadBps")


async def set_fx_spread(conn: AsyncConnection, tenant_id: str, fx_spread_bps: int | None) -> Tenant:
    """Set (or with None, clear back to the policy default) a tenant's FX spread.

    API processes see the change within the API key cache's lifetime (30 s).
    """
    check_spread(fx_spread_bps)
    done = await conn.execute(update(tenants).where(tenants.c.id == tenant_id)
                              .values(fx_spread_bps=fx_spread_bps))
    if done.rowcount != 1:
        raise NotFound("tenant", tenant_id)
    return await get_tenant(conn, tenant_id)


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> Tenant:
    row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    if row is None:
        raise NotFound("tenant", tenant_id)
    return Tenant(row.id, row.name, row.jurisdiction, row.home_region,
                  Environment(row.environment), row.fx_spread_bps)


def check_jurisdictions(role: Role, jurisdictions: Sequence[str]) -> frozenset[str]:
    """A compliance officer's key names the jurisdictions it acts on; no other key does."""
    if role is not Role.COMPLIANCE_OFFICER:
        if jurisdictions:
            raise InvalidInput("only compliance officer keys are scoped to jurisdictions",
                               "jurisdictions")
        return frozenset()
    unknown = sorted(set(jurisdictions) - set(catalog.codes()))
    if not jurisdictions or unknown:
        raise InvalidInput(f"a compliance officer key needs jurisdictions out of "
                           f"{catalog.codes()}" + (f"; unknown: {unknown}" if unknown else ""),
                           "jurisdictions")
    return frozenset(jurisdictions)


async def create_api_key(
    conn: AsyncConnection, pepper: bytes, tenant_id: str, role: Role,
    jurisdictions: Sequence[str] = (), **details: Any,
) -> IssuedKey:
    """A new key (shown once: only its keyed hash is stored). ``details``: label, expires_at,
    created_by, creation_key (see ``regions.api_keys``)."""
    scope = check_jurisdictions(role, jurisdictions)
    tenant = await get_tenant(conn, tenant_id)
    key = f"{key_prefix}_{tenant.environment.value}_{secrets.token_urlsafe(key_secret_bytes)}"
    key_id = ids.new_id("key", tenant.home_region)
    await conn.execute(insert(api_keys).values(
        id=key_id, tenant_id=tenant.id, role=role.value, key_hash=key_hash(pepper, key),
        key_prefix=key[:key_display_length], jurisdictions=sorted(scope) or None, **details))
    return IssuedKey(key_id, key, tenant.id, role)


def looks_like_key(key: str) -> bool:
    return (len(key) <= key_length_max
            and any(key.startswith(f"{key_prefix}_{e.value}_") for e in Environment))


async def authenticate(conn: AsyncConnection, pepper: bytes, key: str) -> Principal | None:
    """The principal for a presented key, or None when it is unknown, revoked or malformed."""
    if not looks_like_key(key):
        return None
    row = (await conn.execute(
        select(api_keys.c.id.label("key_id"), api_keys.c.role, api_keys.c.jurisdictions,
               api_keys.c.expires_at, tenants.c.id.label("tenant_id"),
               tenants.c.name, tenants.c.jurisdiction, tenants.c.home_region,
               tenants.c.environment, tenants.c.fx_spread_bps)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(api_keys.c.key_hash == key_hash(pepper, key), api_keys.c.revoked_at.is_(None),
               or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > func.now()),
               tenants.c.status == "active"))).first()
    if row is None:
        return None
    tenant = Tenant(row.tenant_id, row.name, row.jurisdiction, row.home_region,
                    Environment(row.environment), row.fx_spread_bps)
    return Principal(tenant, Role(row.role), row.key_id, frozenset(row.jurisdictions or ()),
                     row.expires_at)
