"""Review cases: an operation a policy sent to review waits, its money held, until a compliance
officer of one of the jurisdictions involved releases or rejects it.

A case lives in the home region of the operation it holds, beside it, and names the
jurisdictions whose officers may resolve it. At most one case is open per operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import DomainError, NotFound
from payments.principal import Principal, Role
from regions.events import Event
from regions.policy_gate import Ruling, reasons_json
from regions.tables import review_cases

note_length_max = 1_000


class CaseStatus(StrEnum):
    OPEN = "OPEN"
    RELEASED = "RELEASED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"
    """The partner cancelled the operation while it waited."""


class Resolution(StrEnum):
    RELEASE = "RELEASE"
    REJECT = "REJECT"


class CaseNotOpen(DomainError):
    code = "CASE_NOT_OPEN"

    def __init__(self, case_id: str, status: str) -> None:
        super().__init__(f"review case {case_id!r} is {status.lower()}, not open")


async def open_case(conn: AsyncConnection, region: str, tenant_id: str, ruling: Ruling,
                    kind: str, subject_id: str, amount_minor: int, currency: str,
                    case_id: str) -> Event:
    """Record the case; returns its audit event (not published: partners hear of the held
    operation through its own event)."""
    jurisdictions = sorted(ruling.decision.versions)
    await conn.execute(insert(review_cases).values(
        region=region, id=case_id, tenant_id=tenant_id, decision_id=ruling.decision_id,
        kind=kind, subject_id=subject_id, jurisdictions=jurisdictions,
        amount_minor=amount_minor, currency=currency,
        reasons=reasons_json(ruling.decision.reasons)))
    return Event("review_case.opened", {"case_id": case_id, "kind": kind,
                                        "subject_id": subject_id,
                                        "decision_id": ruling.decision_id,
                                        "jurisdictions": jurisdictions}, case_id,
                 published=False)


def in_scope(who: Principal, row: Row[Any] | None) -> bool:
    return (row is not None and who.role is Role.COMPLIANCE_OFFICER
            and bool(who.jurisdictions.intersection(row.jurisdictions)))


async def locked_open(conn: AsyncConnection, who: Principal, region: str,
                      case_id: str) -> Row[Any]:
    """The open case, locked; another jurisdiction's case reads as absent."""
    row = (await conn.execute(select(review_cases).where(
        review_cases.c.region == region, review_cases.c.id == case_id).with_for_update())).first()
    if row is None or not in_scope(who, row):
        raise NotFound("review case", case_id)
    if row.status != CaseStatus.OPEN:
        raise CaseNotOpen(case_id, row.status)
    return row


async def close(conn: AsyncConnection, who: Principal, row: Row[Any], status: CaseStatus,
                note: str | None) -> Event:
    await conn.execute(update(review_cases).where(
        review_cases.c.region == row.region, review_cases.c.id == row.id).values(
        status=status.value, resolved_by=who.key_id, resolved_at=func.now(), note=note))
    return Event(f"review_case.{status.value.lower()}",
                 {"case_id": row.id, "kind": row.kind, "subject_id": row.subject_id,
                  "note": note}, row.id, published=False)


async def case_row(conn: AsyncConnection, region: str, case_id: str) -> Row[Any] | None:
    return (await conn.execute(select(review_cases).where(
        review_cases.c.region == region, review_cases.c.id == case_id))).first()


async def open_case_of(conn: AsyncConnection, region: str, subject_id: str) -> Row[Any] | None:
    return (await conn.execute(select(review_cases).where(
        review_cases.c.region == region, review_cases.c.subject_id == subject_id,
        review_cases.c.status == CaseStatus.OPEN.value))).first()


async def page(conn: AsyncConnection, region: str, jurisdictions: Sequence[str],
               status: CaseStatus | None, limit: int, after: str | None) -> list[Row[Any]]:
    """Up to ``limit`` cases of the region that concern ``jurisdictions``, oldest first."""
    q = select(review_cases).where(review_cases.c.region == region,
                                   review_cases.c.jurisdictions.overlap(list(jurisdictions)))
    if status is not None:
        q = q.where(review_cases.c.status == status.value)
    if after is not None:
        q = q.where(review_cases.c.id > after)
    q = q.order_by(review_cases.c.id).limit(limit)
    return list((await conn.execute(q)).all())
