"""Operators' view of cross-region settlement: ``settlementBatches`` (their region's side of
each netted batch) and ``reconciliation(regionA, regionB, currency)`` (both sides compared)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments.currency import currency as lookup_currency
from payments.errors import InvalidInput, shown
from regions import netting, reconciliation
from schema.access import only
from schema.accounts import utc
from schema.errors import bad_input
from schema.money import Money, money
from schema.pagination import Connection, page_args, rows_connection
from schema.permissions import principal


@strawberry.enum(description="PENDING: cleared by the coordinator, not yet confirmed by the "
                             "peer; SETTLED: cleared on both sides; DISPUTED: the peer could not "
                             "match it (see dispute).")
class SettlementBatchStatus(Enum):
    PENDING = "PENDING"
    SETTLED = "SETTLED"
    DISPUTED = "DISPUTED"


@strawberry.type(description="One region's side of the obligations it and a peer netted in a "
                             "currency for a window.")
class SettlementBatch:
    id: strawberry.ID
    region: str
    peer: str
    currency: str
    coordinator: str = strawberry.field(description="The region that made the batch.")
    status: SettlementBatchStatus
    window_start: datetime = strawberry.field(description=(
        "The window's start, or its earliest obligation's time if earlier (an obligation "
        "recorded late is netted with the next window): every obligation is in "
        "[windowStart, windowEnd)."))
    window_end: datetime
    payable: Money = strawberry.field(description="What this region owed the peer.")
    receivable: Money = strawberry.field(description="What the peer owed this region.")
    net: Money = strawberry.field(description="payable - receivable: what this region pays "
                                              "(negative: receives).")
    obligations: int
    dispute: str | None
    created_at: datetime
    settled_at: datetime | None


def _batch(r: Row[Any]) -> SettlementBatch:
    return SettlementBatch(
        id=strawberry.ID(r.id), region=r.region, peer=r.peer, currency=r.currency,
        coordinator=r.coordinator, status=SettlementBatchStatus(r.status),
        window_start=utc(r.window_start), window_end=utc(r.window_end),
        payable=money(r.payable_minor, r.currency),
        receivable=money(r.receivable_minor, r.currency),
        net=money(r.payable_minor - r.receivable_minor, r.currency),
        obligations=r.obligations, dispute=r.dispute, created_at=utc(r.created_at),
        settled_at=utc(r.settled_at) if r.settled_at else None)


async def resolve_settlement_batches(info: Info[Any, Any], first: int | None = None,
                                     after: str | None = None) -> Connection[SettlementBatch]:
    """The operator's region's side of its settlement batches, latest window first."""
    who = principal(info)
    limit, after_id = page_args(first, after, "stb")

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return await netting.batch_page(conn, who.region, limit, after_id)

    rows = await info.context.router.read(who.region, body)
    return rows_connection(rows, limit, "stb", _batch, lambda r: str(r.id))


@strawberry.type
class ReconciliationBreak:
    kind: str = strawberry.field(description=(
        "OBLIGATION_MISSING, OBLIGATION_MISMATCH, BATCH_MISSING, BATCH_MISMATCH, "
        "BATCH_DISPUTED, BALANCE_MISMATCH or STREAM_STUCK."))
    detail: str
    obligation_id: str | None
    batch_id: str | None


@strawberry.type(description="Both regions' views of what they owe each other in a currency; "
                             "zero breaks and mirrored totals when they agree.")
class Reconciliation:
    region_a: str
    region_b: str
    currency: str
    breaks: list[ReconciliationBreak]
    in_flight: int = strawberry.field(description="Obligations or batches one side will have "
                                                  "once messages on their way are applied.")
    quiet: bool = strawberry.field(description="Every message between the two applied.")
    payable_a: Money
    receivable_a: Money
    payable_b: Money
    receivable_b: Money
    due_to_a: Money = strawberry.field(description="What A owes B, not yet settled.")
    due_from_a: Money = strawberry.field(description="What B owes A, not yet settled.")
    due_to_b: Money
    due_from_b: Money


def _check(info: Info[Any, Any], region_a: str, region_b: str, currency: str) -> str:
    topology = info.context.router.topology
    for field, code in (("regionA", region_a), ("regionB", region_b)):
        if not topology.has_region(code):
            raise bad_input(InvalidInput(f"{shown(code)} is not a region", field))
    if region_a == region_b:
        raise bad_input(InvalidInput("regionA and regionB must differ", "regionB"))
    if principal(info).region not in (region_a, region_b):
        raise bad_input(InvalidInput("an operator reconciles the pairs of its own region",
                                     "regionA"))
    try:
        return lookup_currency(currency.upper()).code
    except InvalidInput as exc:
        raise bad_input(exc) from exc


async def resolve_reconciliation(info: Info[Any, Any], region_a: str, region_b: str,
                                 currency: str) -> Reconciliation:
    """Read both sides now and compare them."""
    code = _check(info, region_a, region_b, currency)
    r = await reconciliation.reconcile(info.context.router, region_a, region_b, code)
    return Reconciliation(
        region_a=r.region_a, region_b=r.region_b, currency=r.currency,
        breaks=[ReconciliationBreak(kind=b.kind, detail=b.detail, obligation_id=b.obligation_id,
                                    batch_id=b.batch_id) for b in r.breaks],
        in_flight=r.in_flight, quiet=r.quiet,
        payable_a=money(r.payable_a_minor, code), receivable_a=money(r.receivable_a_minor, code),
        payable_b=money(r.payable_b_minor, code), receivable_b=money(r.receivable_b_minor, code),
        due_to_a=money(r.due_to_a_minor, code), due_from_a=money(r.due_from_a_minor, code),
        due_to_b=money(r.due_to_b_minor, code), due_from_b=money(r.due_from_b_minor, code))


settlement_batches_field = strawberry.field(resolver=resolve_settlement_batches,
                                            permission_classes=[only("settlementBatches")])
reconciliation_field = strawberry.field(resolver=resolve_reconciliation,
                                        permission_classes=[only("reconciliation")])
