"""Transfers: ``transfer``, ``transfers``, ``createTransfer`` and ``createTransferBatch``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.currency import currency as lookup_currency
from payments.errors import InvalidInput, NotFound
from payments.ledger import TransferStatus as LedgerTransferStatus
from payments.money import parse_amount
from payments.principal import Principal
from payments.text import check_text
from regions import commands, ledger_queries
from regions.coalescer import Overloaded, ShuttingDown, TransferCoalescer
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import not_found, own_id, utc
from schema.money import Money, money
from schema.pagination import Connection, connection, page_args
from schema.permissions import principal

TransferStatus = strawberry.enum(LedgerTransferStatus, name="TransferStatus")


@strawberry.type
class Transfer:
    id: strawberry.ID
    from_account_id: strawberry.ID
    to_account_id: strawberry.ID
    amount: Money
    status: TransferStatus  # type: ignore[valid-type]
    reference: str | None
    created_at: datetime


def transfer_from_row(row: Row[Any]) -> Transfer:
    return Transfer(
        id=strawberry.ID(row.id), from_account_id=strawberry.ID(row.debit_account_id),
        to_account_id=strawberry.ID(row.credit_account_id),
        amount=money(row.amount_minor, row.currency), status=LedgerTransferStatus(row.status),
        reference=row.reference, created_at=utc(row.created_at))


TransferResult = Annotated[Transfer | errors.NotFound, strawberry.union("TransferResult")]


async def resolve_transfer(info: Info[Any, Any], id: strawberry.ID) -> TransferResult:
    who = principal(info)
    transfer_id = own_id(who.region, str(id), "trf", "id")
    row = await info.context.transfer_row(transfer_id) if transfer_id else None
    return transfer_from_row(row) if row is not None else not_found("transfer", str(id))


async def resolve_transfers(
    info: Info[Any, Any], account_id: strawberry.ID | None = None, first: int | None = None,
    after: str | None = None,
) -> Connection[Transfer]:
    """The tenant's transfers, newest first; with ``accountId``, those touching that account."""
    who = principal(info)
    limit, after_id = page_args(first, after, "trf")
    if account_id is not None:
        owned = own_id(who.region, str(account_id), "acc", "accountId")
        if owned is None or await info.context.account_row(owned) is None:
            raise errors.PublicError(NotFound("account", str(account_id)).message,
                                     NotFound.code)

    async def body(conn: AsyncConnection) -> ledger_queries.Page[Row[Any]]:
        return await ledger_queries.transfer_page(
            conn, who.region, who.tenant.id, limit, after_id,
            str(account_id) if account_id is not None else None)

    page = await info.context.router.read(who.region, body)
    return connection([transfer_from_row(r) for r in page.items], [r.id for r in page.items],
                      "trf", page.has_next)


@strawberry.input
class CreateTransferInput:
    from_account_id: strawberry.ID
    to_account_id: strawberry.ID
    amount: str = strawberry.field(description='Decimal string in major units, e.g. "10.50".')
    currency: str
    reference: str | None = None
    idempotency_key: str


@strawberry.input
class TransferBatchItemInput:
    from_account_id: strawberry.ID
    to_account_id: strawberry.ID
    amount: str
    currency: str
    reference: str | None = None


@strawberry.input
class CreateTransferBatchInput:
    transfers: list[TransferBatchItemInput]
    atomic: bool = strawberry.field(
        default=True,
        description="All items or none (default); false posts the items that can be posted.")
    idempotency_key: str


def parse_item(data: CreateTransferInput | TransferBatchItemInput, prefix: str = ""
               ) -> commands.TransferItem:
    cur = lookup_currency(data.currency, f"{prefix}currency")
    for field, value in (("fromAccountId", data.from_account_id),
                         ("toAccountId", data.to_account_id)):
        ids.parse_id(str(value), "acc", f"{prefix}{field}")
    if data.from_account_id == data.to_account_id:
        raise InvalidInput("a transfer needs two different accounts", f"{prefix}toAccountId")
    if data.reference is not None:
        check_text(data.reference, f"{prefix}reference", commands.reference_length_max)
    return commands.TransferItem(
        from_account_id=str(data.from_account_id), to_account_id=str(data.to_account_id),
        amount_minor=parse_amount(data.amount, cur, f"{prefix}amount"), currency=cur.code,
        reference=data.reference)


CreateTransferResult = Annotated[
    Transfer | errors.ValidationError | errors.NotFound | errors.InsufficientFunds
    | errors.CurrencyMismatch | errors.AccountNotActive | errors.PolicyDenied
    | errors.IdempotencyConflict,
    strawberry.union("CreateTransferResult"),
]


@errors.typed_errors
async def create_transfer(
    info: Info[Any, Any], input: CreateTransferInput
) -> CreateTransferResult:
    who = principal(info)
    cmd = commands.CreateTransfer(parse_item(input), check_key(input.idempotency_key))
    if info.context.coalescer is not None:
        return transfer_from_row(await _grouped(info.context.coalescer, who, cmd))

    return transfer_from_row(await info.context.router.run(
        who.region, lambda conn: commands.create_transfer_row_txn(
            conn, who, info.context.gate(), cmd)))


async def _grouped(coalescer: TransferCoalescer, who: Principal,
                   cmd: commands.CreateTransfer) -> Row[Any]:
    """The transfer through group commit; what stopped it before it ran is a public error the
    caller may retry with the same key (nothing was written)."""
    try:
        return await coalescer.submit(who, cmd)
    except TimeoutError:
        raise errors.PublicError("The transfer did not run before the request's time limit; "
                                 "it wrote nothing.", errors.timeout_code) from None
    except (Overloaded, ShuttingDown) as exc:
        raise errors.PublicError(f"{exc}; the transfer wrote nothing: send it again.",
                                 errors.unavailable_code) from None


@strawberry.type
class TransferBatchItemError(errors.Error):
    pass


@strawberry.type
class TransferBatchItem:
    index: int
    transfer: Transfer | None
    error: TransferBatchItemError | None


@strawberry.type(description="A batch of transfers committed as one journal.")
class TransferBatch:
    id: strawberry.ID
    atomic: bool
    item_count: int
    succeeded: int
    failed: int
    outcomes: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field(description="Each item's transfer or error, in input order. Loaded "  # type: ignore[untyped-decorator]
                                  "only when selected.")
    async def items(self, info: Info[Any, Any]) -> list[TransferBatchItem]:
        wanted = [o["transferId"] for o in self.outcomes if "transferId" in o]
        rows = {r.id: r for r in await info.context.transfer_rows(wanted) if r is not None}
        return [
            TransferBatchItem(index=index, transfer=transfer_from_row(rows[o["transferId"]]),
                              error=None)
            if "transferId" in o else
            TransferBatchItem(index=index, transfer=None, error=TransferBatchItemError(
                code=o["code"], message=o["message"]))
            for index, o in enumerate(self.outcomes)
        ]


CreateTransferBatchResult = Annotated[
    TransferBatch | errors.TransferBatchRejected | errors.ValidationError
    | errors.IdempotencyConflict | errors.NotFound | errors.InsufficientFunds
    | errors.CurrencyMismatch | errors.AccountNotActive,
    strawberry.union("CreateTransferBatchResult"),
]


def parse_batch(data: CreateTransferBatchInput) -> commands.CreateTransferBatch:
    key = check_key(data.idempotency_key)
    if not 1 <= len(data.transfers) <= commands.batch_transfers_max:
        raise InvalidInput(
            f"a batch holds 1 to {commands.batch_transfers_max} transfers, "
            f"got {len(data.transfers)}", "transfers")
    items = tuple(parse_item(t, f"transfers[{i}].") for i, t in enumerate(data.transfers))
    return commands.CreateTransferBatch(items=items, atomic=data.atomic, idempotency_key=key)


@errors.typed_errors
async def create_transfer_batch(
    info: Info[Any, Any], input: CreateTransferBatchInput
) -> CreateTransferBatchResult:
    who = principal(info)
    cmd = parse_batch(input)
    response = await info.context.router.run(
        who.region, lambda conn: commands.create_transfer_batch_txn(conn, who, info.context.gate(),
                                                                     cmd))
    outcomes = response["items"]
    succeeded = sum(1 for o in outcomes if "transferId" in o)
    return TransferBatch(id=strawberry.ID(response["id"]), atomic=cmd.atomic,
                         item_count=len(outcomes), succeeded=succeeded,
                         failed=len(outcomes) - succeeded, outcomes=outcomes)


transfer_field = strawberry.field(resolver=resolve_transfer, permission_classes=[only("transfer")])
transfers_field = strawberry.field(resolver=resolve_transfers,
                                   permission_classes=[only("transfers")])
create_transfer_field = strawberry.mutation(resolver=create_transfer,
                                            permission_classes=[only("createTransfer")])
create_transfer_batch_field = strawberry.mutation(resolver=create_transfer_batch,
                                                  permission_classes=[only("createTransferBatch")])
