"""API keys for partner admins: ``apiKeys``, ``createApiKey`` (the key is shown once) and
``revokeApiKey`` (effective in every API process within about a second)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.principal import Role
from regions import api_keys
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import utc
from schema.pagination import Connection, page_args, rows_connection
from schema.permissions import principal


@strawberry.enum(description="Roles a partner admin may issue keys for.")
class PartnerRole(Enum):
    PARTNER_ADMIN = "partner_admin"
    PARTNER_READONLY = "partner_readonly"
    AUDITOR = "auditor"


@strawberry.type
class ApiKey:
    id: strawberry.ID
    role: str
    prefix: str = strawberry.field(description="The key's first characters, to recognise it.")
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = strawberry.field(
        description="Within a minute or so: uses are written at most once a minute.")
    revoked_at: datetime | None


@strawberry.type(description="A new key: `key` is shown here once; a replay shows null.")
class ApiKeySecret:
    api_key: ApiKey
    key: str | None


def _when(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def key_from_row(row: Row[Any]) -> ApiKey:
    return ApiKey(id=strawberry.ID(row.id), role=row.role, prefix=row.key_prefix,
                  label=row.label, created_at=utc(row.created_at),
                  expires_at=_when(row.expires_at), last_used_at=_when(row.last_used_at),
                  revoked_at=_when(row.revoked_at))


async def _key(info: Info[Any, Any], key_id: str) -> ApiKey:
    tenant_id = principal(info).tenant.id

    async def body(conn: AsyncConnection) -> Row[Any] | None:
        return await api_keys.key_row(conn, tenant_id, key_id)

    row = await info.context.router.read_control(body)
    assert row is not None, key_id
    return key_from_row(row)


async def resolve_api_keys(info: Info[Any, Any], first: int | None = None,
                           after: str | None = None) -> Connection[ApiKey]:
    who = principal(info)
    limit, key = page_args(first, after, "key")

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return await api_keys.page(conn, who.tenant.id, limit, key)

    rows = await info.context.router.read_control(body)
    return rows_connection(rows, limit, "key", key_from_row, lambda r: str(r.id))


@strawberry.input
class CreateApiKeyInput:
    role: PartnerRole
    label: str | None = None
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working (at most about three years "
                                  "ahead); none: until revoked.")
    idempotency_key: str


CreateApiKeyResult = Annotated[
    ApiKeySecret | errors.ValidationError | errors.LimitExceeded | errors.IdempotencyConflict,
    strawberry.union("CreateApiKeyResult"),
]


@errors.typed_errors
async def create_api_key(info: Info[Any, Any], input: CreateApiKeyInput) -> CreateApiKeyResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    role = Role(input.role.value)
    api_keys.check_request(role, input.label, input.expires_at, datetime.now(UTC))
    pepper = info.context.pepper

    async def body(conn: AsyncConnection) -> tuple[str, str | None]:
        return await api_keys.create(conn, pepper, who, role, input.label, input.expires_at,
                                     key)

    key_id, secret = await info.context.router.run_control(body)
    return ApiKeySecret(api_key=await _key(info, key_id), key=secret)


@strawberry.input
class RevokeApiKeyInput:
    key_id: strawberry.ID
    idempotency_key: str


RevokeApiKeyResult = Annotated[
    ApiKey | errors.ValidationError | errors.NotFound,
    strawberry.union("RevokeApiKeyResult"),
]


@errors.typed_errors
async def revoke_api_key(info: Info[Any, Any], input: RevokeApiKeyInput) -> RevokeApiKeyResult:
    """Revoking twice is the same as once: the key stays revoked at its first time."""
    who = principal(info)
    check_key(input.idempotency_key)
    key_id = str(input.key_id)
    ids.parse_id(key_id, "key", "keyId")
    await info.context.router.run_control(lambda conn: api_keys.revoke(conn, who, key_id))
    return await _key(info, key_id)


api_keys_field = strawberry.field(resolver=resolve_api_keys, permission_classes=[only("apiKeys")])
create_api_key_field = strawberry.mutation(resolver=create_api_key,
                                           permission_classes=[only("createApiKey")])
revoke_api_key_field = strawberry.mutation(resolver=revoke_api_key,
                                           permission_classes=[only("revokeApiKey")])
