"""Mass payouts: ``createPayoutBatch`` (up to 10,000 items) and ``payoutBatch``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.errors import DomainError, InvalidInput
from payments.text import check_text
from regions import payout_batches as store
from regions import payouts as payout_store
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import not_found, own_id, utc
from schema.pagination import Connection, page_args, rows_connection
from schema.payouts import Payout, parse_fields, payout_from_row
from schema.permissions import principal


@strawberry.type
class PayoutBatchItemError(errors.Error):
    index: int
    field: str | None = strawberry.field(
        description="For a validation error, the input field at fault, e.g. items[3].amount.")


@strawberry.type(description="Payouts created together; workers process them in chunks.")
class PayoutBatch:
    id: strawberry.ID
    status: str = strawberry.field(description="PROCESSING until no payout of the batch waits "
                                               "for its rail or a review, then COMPLETED.")
    account_id: strawberry.ID
    item_count: int
    rejected: list[PayoutBatchItemError] = strawberry.field(description=(
        "Items refused up front (non-atomic batches), as answered by createPayoutBatch; "
        "empty when the batch is read back later."))
    pending: int
    processing: int
    succeeded: int
    failed: int
    held: int = strawberry.field(description="Held for review.")
    returned: int
    created_at: datetime
    completed_at: datetime | None

    @strawberry.field(description="The batch's payouts, in id order.")  # type: ignore[untyped-decorator]
    async def items(self, info: Info[Any, Any], first: int | None = None,
                    after: str | None = None) -> Connection[Payout]:
        who = principal(info)
        limit, after_id = page_args(first, after, "pay")

        async def body(conn: AsyncConnection) -> list[Row[Any]]:
            return await store.item_page(conn, who.region, who.tenant.id, str(self.id), limit,
                                         after_id)

        rows = await info.context.router.read(who.region, body)
        return rows_connection(rows, limit, "pay", payout_from_row, lambda r: str(r.id))


PayoutBatchResult = Annotated[PayoutBatch | errors.NotFound,
                              strawberry.union("PayoutBatchResult")]


async def _batch(info: Info[Any, Any], batch_id: str,
                 rejected: list[dict[str, Any]]) -> PayoutBatch | None:
    who = principal(info)
    owned = own_id(who.region, batch_id, "pbt", "id")
    if owned is None:
        return None

    async def body(conn: AsyncConnection) -> tuple[Row[Any] | None, dict[str, int]]:
        row = await store.batch_row(conn, who.region, who.tenant.id, owned)
        return row, (await store.status_counts(conn, who.region, owned) if row else {})

    row, counts = await info.context.router.read(who.region, body)
    if row is None:
        return None
    return PayoutBatch(
        id=strawberry.ID(row.id), status=row.status, account_id=strawberry.ID(row.account_id),
        item_count=row.item_count,
        rejected=[PayoutBatchItemError(index=r["index"], code=r["code"], message=r["message"],
                                       field=r.get("field")) for r in rejected],
        pending=counts.get("PENDING", 0), processing=counts.get("PROCESSING", 0),
        succeeded=counts.get("COMPLETED", 0), failed=counts.get("FAILED", 0),
        held=counts.get("HELD_FOR_REVIEW", 0), returned=counts.get("RETURNED", 0),
        created_at=utc(row.created_at),
        completed_at=utc(row.completed_at) if row.completed_at else None)


async def resolve_payout_batch(info: Info[Any, Any], id: strawberry.ID) -> PayoutBatchResult:
    found = await _batch(info, str(id), [])
    return found if found is not None else not_found("payout batch", str(id))


@strawberry.input
class PayoutBatchItemInput:
    beneficiary_id: strawberry.ID
    amount: str
    currency: str
    reference: str | None = None
    external_id: str | None = strawberry.field(
        default=None, description="Your id for the item; unique within the batch.")


@strawberry.input
class CreatePayoutBatchInput:
    account_id: strawberry.ID
    items: list[PayoutBatchItemInput]
    atomic: bool = strawberry.field(default=False, description=(
        "true: all items or none; false (default): the valid items are accepted and the "
        "rest reported in `rejected`."))
    idempotency_key: str


CreatePayoutBatchResult = Annotated[
    PayoutBatch | errors.ValidationError | errors.NotFound | errors.AccountNotActive
    | errors.PayoutBatchRejected | errors.IdempotencyConflict,
    strawberry.union("CreatePayoutBatchResult"),
]


def parse_batch(data: CreatePayoutBatchInput) -> store.CreatePayoutBatch:
    key = check_key(data.idempotency_key)
    ids.parse_id(str(data.account_id), "acc", "accountId")
    if not 1 <= len(data.items) <= store.batch_items_max:
        raise InvalidInput(f"a batch holds 1 to {store.batch_items_max} items, got "
                           f"{len(data.items)}", "items")
    items: list[payout_store.CreatePayout | DomainError] = []
    external_ids: list[str | None] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data.items):
        prefix = f"items[{index}]."
        try:
            ext = item.external_id
            if ext is not None:
                check_text(ext, f"{prefix}externalId", store.external_id_length_max,
                           length_min=1)
                if ext in seen:
                    raise InvalidInput(f"externalId {ext!r} repeats item {seen[ext]}",
                                       f"{prefix}externalId")
                seen[ext] = index
            items.append(parse_fields(str(data.account_id), item.beneficiary_id, item.amount,
                                      item.currency, item.reference, None, key, prefix))
        except DomainError as exc:
            items.append(exc)
            ext = None
        external_ids.append(ext)
    raw = tuple((str(i.beneficiary_id), i.amount, i.currency, i.reference, i.external_id)
                for i in data.items)
    return store.CreatePayoutBatch(str(data.account_id), tuple(items), tuple(external_ids),
                                   data.atomic, key, raw)


@errors.typed_errors
async def create_payout_batch(info: Info[Any, Any],
                              input: CreatePayoutBatchInput) -> CreatePayoutBatchResult:
    who = principal(info)
    cmd = parse_batch(input)
    sealer = info.context.keys()
    response = await info.context.router.run(
        who.region, lambda conn: store.create_batch_txn(conn, who, sealer, info.context.gate(),
                                                        cmd))
    found = await _batch(info, response["id"], response["rejected"])
    assert found is not None, response
    return found


payout_batch_field = strawberry.field(resolver=resolve_payout_batch,
                                      permission_classes=[only("payoutBatch")])
create_payout_batch_field = strawberry.mutation(resolver=create_payout_batch,
                                                permission_classes=[only("createPayoutBatch")])
