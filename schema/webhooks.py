"""Webhooks: ``registerWebhookEndpoint``, ``webhookEndpoints``, ``disableWebhookEndpoint``,
``rotateWebhookSecret`` and ``webhookDeliveries``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.principal import Environment
from payments.webhooks import check_event_types, check_url, new_secret
from regions import webhooks as store
from regions.idempotency import check_key
from regions.tables import webhook_deliveries, webhook_endpoints
from schema import errors
from schema.access import only
from schema.accounts import utc
from schema.pagination import Connection, page_args, rows_connection
from schema.permissions import principal


@strawberry.type
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str] = strawberry.field(description='Event types, or ["*"] for all.')
    status: str = strawberry.field(description="ACTIVE or DISABLED.")
    secret_rotating_until: datetime | None = strawberry.field(
        description="While set, the previous secret signs too (a second v1= value).")
    created_at: datetime


@strawberry.type(description="The endpoint and its signing secret. The secret is shown only "
                             "in the answer that created it; a replay shows null.")
class WebhookEndpointSecret:
    endpoint: WebhookEndpoint
    secret: str | None


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_id: str
    event_type: str
    status: str = strawberry.field(description="PENDING (retrying), DELIVERED or FAILED.")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


def endpoint_from_row(row: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=strawberry.ID(row.id), url=row.url, events=list(row.events), status=row.status,
        secret_rotating_until=utc(row.previous_expires_at) if row.previous_expires_at else None,
        created_at=utc(row.created_at))


async def _rows(info: Info[Any, Any], table: Any, first: int | None, after: str | None,
                kind: str, extra: Any = None) -> tuple[list[Row[Any]], int]:
    who = principal(info)
    limit, after_id = page_args(first, after, kind)
    q = select(table).where(table.c.region == who.region, table.c.tenant_id == who.tenant.id)
    if extra is not None:
        q = q.where(extra)
    if after_id is not None:
        q = q.where(table.c.id < after_id)

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return list(await conn.execute(q.order_by(table.c.id.desc()).limit(limit + 1)))

    return await info.context.router.read(who.region, body), limit


async def resolve_endpoints(info: Info[Any, Any], first: int | None = None,
                            after: str | None = None) -> Connection[WebhookEndpoint]:
    rows, limit = await _rows(info, webhook_endpoints, first, after, "whe")
    return rows_connection(rows, limit, "whe", endpoint_from_row, lambda r: str(r.id))


async def resolve_deliveries(info: Info[Any, Any], first: int | None = None,
                             after: str | None = None) -> Connection[WebhookDelivery]:
    """The tenant's webhook deliveries, newest first."""
    rows, limit = await _rows(info, webhook_deliveries, first, after, "whd")
    return rows_connection(rows, limit, "whd", delivery_from_row, lambda r: str(r.id))


def delivery_from_row(r: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=strawberry.ID(r.id), endpoint_id=strawberry.ID(r.endpoint_id), event_id=r.event_id,
        event_type=r.event_type, status=r.status, attempts=r.attempts,
        last_status_code=r.last_status_code, last_error=r.last_error,
        next_attempt_at=utc(r.next_attempt_at) if r.status == "PENDING" else None,
        created_at=utc(r.created_at),
        delivered_at=utc(r.delivered_at) if r.delivered_at else None)


@strawberry.input
class RegisterWebhookEndpointInput:
    url: str = strawberry.field(description="https for live keys; never a private address.")
    events: list[str]
    idempotency_key: str


@strawberry.input
class WebhookEndpointActionInput:
    endpoint_id: strawberry.ID
    idempotency_key: str


WebhookEndpointSecretResult = Annotated[
    WebhookEndpointSecret | errors.ValidationError | errors.NotFound | errors.LimitExceeded
    | errors.IdempotencyConflict,
    strawberry.union("WebhookEndpointSecretResult"),
]
WebhookEndpointResult = Annotated[
    WebhookEndpoint | errors.ValidationError | errors.NotFound | errors.IdempotencyConflict,
    strawberry.union("WebhookEndpointResult"),
]


async def _endpoint(info: Info[Any, Any], endpoint_id: str) -> WebhookEndpoint:
    who = principal(info)

    async def body(conn: AsyncConnection) -> Row[Any]:
        return (await conn.execute(select(webhook_endpoints).where(
            webhook_endpoints.c.region == who.region, webhook_endpoints.c.id == endpoint_id)
        )).one()

    return endpoint_from_row(await info.context.router.read(who.region, body))


async def _with_secret(info: Info[Any, Any], response: dict[str, Any],
                       secret: str) -> WebhookEndpointSecret:
    """The endpoint, with the secret drawn for this request unless the answer is a replay
    (whose secret was shown once already and is not shown again)."""
    fresh = response.get("secretDigest") == store.secret_digest(secret)
    return WebhookEndpointSecret(endpoint=await _endpoint(info, response["id"]),
                                 secret=secret if fresh else None)


@errors.typed_errors
async def register_webhook_endpoint(
    info: Info[Any, Any], input: RegisterWebhookEndpointInput
) -> WebhookEndpointSecretResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    url = check_url(input.url, live=who.tenant.environment is Environment.LIVE)
    cmd = store.RegisterEndpoint(url, tuple(check_event_types(input.events)), key)
    secret = new_secret()
    sealer = info.context.keys()
    response = await info.context.router.run(
        who.region, lambda conn: store.register_txn(conn, who, sealer, cmd, secret))
    return await _with_secret(info, response, secret)


@errors.typed_errors
async def rotate_webhook_secret(
    info: Info[Any, Any], input: WebhookEndpointActionInput
) -> WebhookEndpointSecretResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.endpoint_id), "whe", "endpointId")
    secret = new_secret()
    sealer = info.context.keys()
    response = await info.context.router.run(who.region, lambda conn: store.rotate_txn(
        conn, who, sealer, str(input.endpoint_id), key, secret))
    return await _with_secret(info, response, secret)


@errors.typed_errors
async def disable_webhook_endpoint(
    info: Info[Any, Any], input: WebhookEndpointActionInput
) -> WebhookEndpointResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.endpoint_id), "whe", "endpointId")
    response = await info.context.router.run(who.region, lambda conn: store.disable_txn(
        conn, who, str(input.endpoint_id), key))
    return await _endpoint(info, response["id"])


webhook_endpoints_field = strawberry.field(resolver=resolve_endpoints,
                                           permission_classes=[only("webhookEndpoints")])
webhook_deliveries_field = strawberry.field(resolver=resolve_deliveries,
                                            permission_classes=[only("webhookDeliveries")])
register_webhook_endpoint_field = strawberry.mutation(resolver=register_webhook_endpoint,
                                                      permission_classes=[only("registerWebhookEndpoint")])
rotate_webhook_secret_field = strawberry.mutation(resolver=rotate_webhook_secret,
                                                  permission_classes=[only("rotateWebhookSecret")])
disable_webhook_endpoint_field = strawberry.mutation(resolver=disable_webhook_endpoint,
                                                     permission_classes=[only("disableWebhookEndpoint")])
