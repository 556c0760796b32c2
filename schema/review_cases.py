"""Review cases for compliance officers: ``reviewCases(status)`` and ``resolveReviewCase``.

A case lives in the home region of the operation it holds; an officer sees the cases of every
region that serves one of its jurisdictions, region by region, oldest first within a region
(case ids sort by creation time).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.errors import InvalidInput, NotFound
from payments.principal import Principal
from payments.text import check_text
from regions import review_cases
from regions.idempotency import check_key
from regions.review_cases import CaseStatus, Resolution
from regions.review_resolution import ResolveCase, resolve_txn
from regions.tables import review_cases as review_cases_table
from schema import errors
from schema.access import only
from schema.accounts import utc
from schema.money import Money, money
from schema.pagination import Connection, connection, page_args
from schema.permissions import principal
from schema.policies import PolicyReason


@strawberry.type(description="An operation a policy sent to review, waiting for an officer.")
class ReviewCase:
    id: strawberry.ID
    region: str
    kind: str = strawberry.field(description="payout or incoming_payment.")
    subject_id: strawberry.ID = strawberry.field(description="The payout or incoming payment.")
    tenant_id: strawberry.ID
    jurisdictions: list[str]
    amount: Money
    reasons: list[PolicyReason]
    status: str = strawberry.field(description="OPEN, RELEASED, REJECTED or WITHDRAWN (the "
                                               "partner cancelled the operation).")
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    created_at: datetime


def case_from_row(row: Row[Any]) -> ReviewCase:
    return ReviewCase(
        id=strawberry.ID(row.id), region=row.region, kind=row.kind,
        subject_id=strawberry.ID(row.subject_id), tenant_id=strawberry.ID(row.tenant_id),
        jurisdictions=list(row.jurisdictions), amount=money(row.amount_minor, row.currency),
        reasons=[PolicyReason(jurisdiction=r["jurisdiction"], version=r["version"],
                              rule=r["rule"], outcome=r["outcome"], code=r["code"],
                              message=r["message"]) for r in row.reasons],
        status=row.status, resolved_by=row.resolved_by,
        resolved_at=utc(row.resolved_at) if row.resolved_at else None, note=row.note,
        created_at=utc(row.created_at))


def _regions(info: Info[Any, Any], who: Principal) -> list[str]:
    topo = info.context.router.topology
    return sorted({r.code for j in who.jurisdictions for r in topo.regions_for(j)})


async def resolve_cases(info: Info[Any, Any], status: str | None = None,
                        first: int | None = None, after: str | None = None
                        ) -> Connection[ReviewCase]:
    who = principal(info)
    limit, key = page_args(first, after, "rvc")
    try:
        wanted = CaseStatus(status) if status is not None else None
    except ValueError:
        raise errors.bad_input(InvalidInput(
            f"status must be one of {[s.value for s in CaseStatus]}", "status")) from None
    try:
        start_region = ids.parse_id(key, "rvc", "after").region if key else None
    except InvalidInput as exc:
        raise errors.bad_input(exc) from exc
    rows: list[Row[Any]] = []
    for region in _regions(info, who):
        if start_region is not None and region < start_region:
            continue
        since = key if region == start_region else None

        async def body(conn: AsyncConnection, region: str = region, since: str | None = since
                       ) -> list[Row[Any]]:
            return await review_cases.page(conn, region, sorted(who.jurisdictions), wanted,
                                           limit + 1 - len(rows), since)

        rows.extend(await info.context.router.read(region, body))
        if len(rows) > limit:
            break
    page = rows[:limit]
    return connection([case_from_row(r) for r in page], [r.id for r in page], "rvc",
                      len(rows) > limit)


@strawberry.enum
class ReviewDecision(Enum):
    RELEASE = "RELEASE"
    REJECT = "REJECT"


@strawberry.input
class ResolveReviewCaseInput:
    case_id: strawberry.ID
    decision: ReviewDecision = strawberry.field(description=(
        "RELEASE lets the operation go on (a payout goes to its rail; an incoming payment is "
        "credited); REJECT voids a payout's hold (it fails) or freezes an incoming payment in "
        "suspense. Either way the partner hears through the operation's events."))
    note: str | None = None
    idempotency_key: str


ResolveReviewCaseResult = Annotated[
    ReviewCase | errors.ValidationError | errors.NotFound | errors.CaseNotOpen
    | errors.IdempotencyConflict,
    strawberry.union("ResolveReviewCaseResult"),
]


@errors.typed_errors
async def resolve_review_case(info: Info[Any, Any], input: ResolveReviewCaseInput
                              ) -> ResolveReviewCaseResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    region = ids.parse_id(str(input.case_id), "rvc", "caseId").region
    if input.note is not None:
        check_text(input.note, "note", review_cases.note_length_max)
    if region not in _regions(info, who):
        raise NotFound("review case", str(input.case_id))
    cmd = ResolveCase(str(input.case_id), region, Resolution(input.decision.value), input.note,
                      key)
    await info.context.router.run(region, lambda conn: resolve_txn(conn, who, cmd))

    async def body(conn: AsyncConnection) -> Row[Any] | None:
        return (await conn.execute(select(review_cases_table).where(
            review_cases_table.c.region == region,
            review_cases_table.c.id == cmd.case_id))).first()

    row = await info.context.router.read(region, body)
    assert row is not None, cmd
    return case_from_row(row)


review_cases_field = strawberry.field(resolver=resolve_cases,
                                      permission_classes=[only("reviewCases")])
resolve_review_case_field = strawberry.mutation(resolver=resolve_review_case,
                                                permission_classes=[only("resolveReviewCase")])
