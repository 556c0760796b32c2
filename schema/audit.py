"""``auditEvents(first, after)``: the tenant's audit trail for auditors, newest first, each
row with its place in the region's hash chain once the chaining job has reached it (within
seconds). ``corridor audit verify`` proves the chain; this is the reading side."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.scalars import JSON
from strawberry.types import Info

from regions.tables import audit_chain, audit_events
from schema.access import only
from schema.accounts import utc
from schema.pagination import Connection, page_args, rows_connection
from schema.permissions import principal


@strawberry.type(description="One audited action: who did what to which resource, when.")
class AuditEvent:
    id: strawberry.ID
    action: str = strawberry.field(description="e.g. payout.created, policy.decided, "
                                               "review_case.released.")
    actor: str = strawberry.field(description="apikey:<key id>, worker:<name> or cli:<user>.")
    target: str | None
    detail: JSON
    origin: str | None = strawberry.field(description="The client address the request came "
                                                      "from; null for workers and the CLI.")
    created_at: datetime
    chain_seq: int | None = strawberry.field(
        description="Its place in the region's hash chain; null until chained (seconds).")
    chain_hash: str | None = strawberry.field(description="SHA-256 of the chain at this row, "
                                                          "hex.")


def event_from_row(row: Row[Any]) -> AuditEvent:
    return AuditEvent(id=strawberry.ID(row.id), action=row.action, actor=row.actor,
                      target=row.target, detail=row.detail, origin=row.origin,
                      created_at=utc(row.created_at),
                      chain_seq=row.seq, chain_hash=bytes(row.hash).hex() if row.hash else None)


async def resolve_audit_events(info: Info[Any, Any], first: int | None = None,
                               after: str | None = None) -> Connection[AuditEvent]:
    who = principal(info)
    limit, key = page_args(first, after, "aud")

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        q = (select(audit_events, audit_chain.c.seq, audit_chain.c.hash)
             .outerjoin(audit_chain, (audit_chain.c.region == audit_events.c.region)
                        & (audit_chain.c.event_id == audit_events.c.id))
             .where(audit_events.c.region == who.region,
                    audit_events.c.tenant_id == who.tenant.id))
        if key is not None:
            q = q.where(audit_events.c.id < key)
        return list((await conn.execute(q.order_by(audit_events.c.id.desc())
                                        .limit(limit + 1))).all())

    rows = await info.context.router.read(who.region, body)
    return rows_connection(rows, limit, "aud", event_from_row, lambda r: str(r.id))


audit_events_field = strawberry.field(resolver=resolve_audit_events,
                                      permission_classes=[only("auditEvents")])
