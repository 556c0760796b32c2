"""API keys that partner admins manage: create (the key is shown once), list, revoke.

A partner admin may issue partner_admin, partner_readonly and auditor keys for its own
tenant; operator roles (compliance_officer, sre) are issued by Corridor's operators with
``corridor apikey create``. Keys may expire. A revoked key stops working in every API process
within about a second (``api.auth.KeyCache`` watches the revocations); an expired one at its
expiry. The last-used time is written at most once a minute per key and process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import DomainError, IdempotencyConflict, InvalidInput, NotFound
from payments.principal import Principal, Role
from payments.text import check_text
from regions import events
from regions.tables import api_keys, tenants
from regions.tenants import create_api_key

partner_roles = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_READONLY, Role.AUDITOR})
keys_per_tenant_max = 100
label_length_max = 100
expiry_days_max = 3 * 366
last_used_write_s = 60


class TooManyKeys(DomainError):
    code = "LIMIT_EXCEEDED"


def check_request(role: Role, label: str | None, expires_at: datetime | None,
                  now: datetime) -> None:
    if role not in partner_roles:
        raise InvalidInput(f"a partner admin may issue {sorted(r.value for r in partner_roles)} "
                           "keys", "role")
    if label is not None:
        check_text(label, "label", label_length_max)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expiresAt needs a time zone", "expiresAt")
        if expires_at <= now:
            raise InvalidInput("expiresAt must be in the future", "expiresAt")
        if (expires_at - now).days > expiry_days_max:
            raise InvalidInput(f"expiresAt may be at most {expiry_days_max} days ahead",
                               "expiresAt")


def _active(tenant_id: str) -> Any:
    return (api_keys.c.tenant_id == tenant_id) & api_keys.c.revoked_at.is_(None) & or_(
        api_keys.c.expires_at.is_(None), api_keys.c.expires_at > func.now())


async def create(conn: AsyncConnection, pepper: bytes, who: Principal, role: Role,
                 label: str | None, expires_at: datetime | None, idempotency_key: str
                 ) -> tuple[str, str | None]:
    """The new key's id and the key itself; a replay of the same request answers the id and
    None (the key is never shown twice)."""
    earlier = (await conn.execute(select(api_keys).where(
        api_keys.c.created_by == who.key_id,
        api_keys.c.creation_key == idempotency_key))).first()
    if earlier is not None:
        if (earlier.role, earlier.label, earlier.expires_at) != (role.value, label, expires_at):
            raise IdempotencyConflict(idempotency_key)
        return str(earlier.id), None
    # The tenant's row serialises its key issuance, so the cap holds under concurrency.
    await conn.execute(select(tenants.c.id).where(tenants.c.id == who.tenant.id)
                       .with_for_update())
    active = (await conn.execute(select(func.count()).select_from(api_keys).where(
        _active(who.tenant.id)))).scalar_one()
    if active >= keys_per_tenant_max:
        raise TooManyKeys(f"a tenant may hold at most {keys_per_tenant_max} active keys; "
                          "revoke one first")
    issued = await create_api_key(conn, pepper, who.tenant.id, role, label=label,
                                  expires_at=expires_at, created_by=who.key_id,
                                  creation_key=idempotency_key)
    await events.record_control(conn, who.actor, "api_key.created", issued.id, {
        "role": role.value, "label": label,
        "expires_at": expires_at.isoformat() if expires_at else None}, tenant_id=who.tenant.id)
    return issued.id, issued.key


async def revoke(conn: AsyncConnection, who: Principal, key_id: str) -> None:
    """Revoke one of the tenant's keys (again: nothing changes)."""
    done = await conn.execute(update(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.tenant_id == who.tenant.id,
        api_keys.c.revoked_at.is_(None)).values(revoked_at=func.now()))
    if done.rowcount == 0 and await key_row(conn, who.tenant.id, key_id) is None:
        raise NotFound("API key", key_id)
    if done.rowcount:
        await events.record_control(conn, who.actor, "api_key.revoked", key_id, {},
                                    tenant_id=who.tenant.id)


async def key_row(conn: AsyncConnection, tenant_id: str, key_id: str) -> Row[Any] | None:
    return (await conn.execute(select(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.tenant_id == tenant_id))).first()


async def page(conn: AsyncConnection, tenant_id: str, first: int,
               after: str | None) -> list[Row[Any]]:
    q = select(api_keys).where(api_keys.c.tenant_id == tenant_id)
    if after is not None:
        q = q.where(api_keys.c.id > after)
    return list((await conn.execute(q.order_by(api_keys.c.id).limit(first + 1))).all())


async def touch(conn: AsyncConnection, key_id: str) -> None:
    """Record a use, at most once a minute (a key in use every request costs no write)."""
    await conn.execute(update(api_keys).where(
        api_keys.c.id == key_id,
        or_(api_keys.c.last_used_at.is_(None),
            api_keys.c.last_used_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0,
                                                                       last_used_write_s)))
        .values(last_used_at=func.now()))


async def revocations(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """A mark that changes whenever a key is revoked."""
    row = (await conn.execute(select(func.count(api_keys.c.revoked_at),
                                     func.max(api_keys.c.revoked_at)))).one()
    return int(row[0]), row[1]
