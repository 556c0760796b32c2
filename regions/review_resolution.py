"""A compliance officer resolves a review case: release lets the held operation go on (the
money moves once), reject voids what it held; either way the partner hears through the
operation's own events, and the case and its resolution are audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.principal import Principal
from regions import events, idempotency, incoming, payouts
from regions.events import Event
from regions.review_cases import CaseStatus, Resolution, close, locked_open


@dataclass(frozen=True, slots=True)
class ResolveCase:
    case_id: str
    region: str
    resolution: Resolution
    note: str | None
    idempotency_key: str


async def _apply(conn: AsyncConnection, who: Principal, row: Any,
                 resolution: Resolution, note: str | None) -> list[Event]:
    if row.kind == "payout":
        if resolution is Resolution.RELEASE:
            return await payouts.release(conn, row.region, row.subject_id, row.id)
        return await payouts.reject(conn, row.region, row.subject_id, note)
    assert row.kind == "incoming_payment", row.kind
    if resolution is Resolution.RELEASE:
        await incoming.release(conn, row.region, row.subject_id, who.actor)
    else:
        await incoming.reject(conn, row.region, row.subject_id, who.actor)
    return []


async def resolve_txn(conn: AsyncConnection, who: Principal, cmd: ResolveCase) -> dict[str, Any]:
    async def effect() -> tuple[dict[str, Any], list[Event]]:
        row = await locked_open(conn, who, cmd.region, cmd.case_id)
        caused = await _apply(conn, who, row, cmd.resolution, cmd.note)
        status = (CaseStatus.RELEASED if cmd.resolution is Resolution.RELEASE
                  else CaseStatus.REJECTED)
        caused.append(await close(conn, who, row, status, cmd.note))
        # The operation's events belong to its tenant (webhooks go there), not the officer's.
        await events.record(conn, cmd.region, row.tenant_id, who.actor, caused)
        return {"type": "ReviewCase", "id": row.id, "region": cmd.region}, []

    return await idempotency.once(conn, who, cmd.idempotency_key, "resolveReviewCase",
                                  {"caseId": cmd.case_id, "decision": cmd.resolution.value,
                                   "note": cmd.note}, effect, region=cmd.region)
