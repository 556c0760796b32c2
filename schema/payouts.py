"""Payouts: ``createPayout``, ``cancelPayout``, ``payout`` and ``payouts``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.currency import currency as lookup_currency
from payments.money import parse_amount
from payments.payouts import PayoutStatus as DomainPayoutStatus
from payments.payouts import check_purpose_code
from payments.text import check_text
from regions import payouts as store
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import not_found, own_id, utc
from schema.beneficiaries import Beneficiary, load_beneficiary
from schema.money import Money, money
from schema.pagination import Connection, page_args, rows_connection
from schema.permissions import principal

PayoutStatus = strawberry.enum(DomainPayoutStatus, name="PayoutStatus")


@strawberry.type(description="Money paid out of an account to a beneficiary over a rail.")
class Payout:
    id: strawberry.ID
    status: PayoutStatus  # type: ignore[valid-type]
    amount: Money
    fee: Money = strawberry.field(description="Charged with the payout; kept if it is returned.")
    account_id: strawberry.ID
    beneficiary_id: strawberry.ID
    rail: str = strawberry.field(description="SEPA_INSTANT, SEPA_CT, UK_FPS, ACH, FEDWIRE, "
                                             "FAST, HK_FPS or CNAPS.")
    reference: str | None
    purpose_code: str | None
    failure_code: str | None = strawberry.field(
        description="ISO 20022 reason code of a FAILED or RETURNED payout.")
    failure_message: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def beneficiary(self, info: Info[Any, Any]) -> Beneficiary | None:
        return await load_beneficiary(info, str(self.beneficiary_id))


def payout_from_row(row: Row[Any]) -> Payout:
    return Payout(
        id=strawberry.ID(row.id), status=DomainPayoutStatus(row.status),
        amount=money(row.amount_minor, row.currency), fee=money(row.fee_minor, row.currency),
        account_id=strawberry.ID(row.account_id),
        beneficiary_id=strawberry.ID(row.beneficiary_id), rail=row.rail,
        reference=row.reference, purpose_code=row.purpose_code,
        failure_code=row.failure_code, failure_message=row.failure_message,
        created_at=utc(row.created_at), updated_at=utc(row.updated_at))


PayoutResult = Annotated[Payout | errors.NotFound, strawberry.union("PayoutResult")]


async def _payout_row(info: Info[Any, Any], payout_id: str) -> Row[Any] | None:
    who = principal(info)
    owned = own_id(who.region, payout_id, "pay", "id")
    if owned is None:
        return None

    async def body(conn: AsyncConnection) -> Row[Any] | None:
        return await store.payout_row(conn, who.region, who.tenant.id, owned)

    row: Row[Any] | None = await info.context.router.read(who.region, body)
    return row


async def resolve_payout(info: Info[Any, Any], id: strawberry.ID) -> PayoutResult:
    row = await _payout_row(info, str(id))
    return payout_from_row(row) if row is not None else not_found("payout", str(id))


async def resolve_payouts(
    info: Info[Any, Any], first: int | None = None, after: str | None = None,
    status: PayoutStatus | None = None,  # type: ignore[valid-type]
) -> Connection[Payout]:
    """The tenant's payouts, newest first, optionally of one status."""
    who = principal(info)
    limit, after_id = page_args(first, after, "pay")

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return await store.payout_page(conn, who.region, who.tenant.id, limit, after_id,
                                       DomainPayoutStatus(status) if status else None)

    rows = await info.context.router.read(who.region, body)
    return rows_connection(rows, limit, "pay", payout_from_row, lambda r: str(r.id))


@strawberry.input
class CreatePayoutInput:
    account_id: strawberry.ID
    beneficiary_id: strawberry.ID
    amount: str = strawberry.field(description='Decimal string in major units, e.g. "10.50".')
    currency: str
    reference: str | None = None
    purpose_code: str | None = strawberry.field(
        default=None, description="ISO 20022 purpose code, e.g. SALA or SUPP.")
    idempotency_key: str


CreatePayoutResult = Annotated[
    Payout | errors.ValidationError | errors.NotFound | errors.InsufficientFunds
    | errors.CurrencyMismatch | errors.AccountNotActive | errors.PolicyDenied
    | errors.RailUnavailable | errors.IdempotencyConflict,
    strawberry.union("CreatePayoutResult"),
]


def parse_fields(account_id: str, beneficiary_id: str, amount: str, currency: str,
                 reference: str | None, purpose_code: str | None, key: str,
                 prefix: str = "") -> store.CreatePayout:
    """A payout's fields checked; ``prefix`` names a batch item (``items[3].``)."""
    cur = lookup_currency(currency, f"{prefix}currency")
    ids.parse_id(account_id, "acc", "accountId")
    ids.parse_id(str(beneficiary_id), "ben", f"{prefix}beneficiaryId")
    if reference is not None:
        check_text(reference, f"{prefix}reference", store.reference_length_max)
    return store.CreatePayout(
        account_id=account_id, beneficiary_id=str(beneficiary_id),
        amount_minor=parse_amount(amount, cur, f"{prefix}amount"), currency=cur.code,
        reference=reference, purpose_code=check_purpose_code(purpose_code),
        idempotency_key=key)


def parse_create(data: CreatePayoutInput) -> store.CreatePayout:
    key = check_key(data.idempotency_key)
    return parse_fields(str(data.account_id), str(data.beneficiary_id), data.amount,
                        data.currency, data.reference, data.purpose_code, key)


async def payout_answer(info: Info[Any, Any], response: dict[str, Any]) -> Payout:
    row = await _payout_row(info, response["id"])
    assert row is not None, response
    return payout_from_row(row)


@errors.typed_errors
async def create_payout(info: Info[Any, Any], input: CreatePayoutInput) -> CreatePayoutResult:
    who = principal(info)
    cmd = parse_create(input)
    sealer, gate = info.context.keys(), info.context.gate()
    response = await info.context.router.run(
        who.region, lambda conn: store.create_payout_txn(conn, who, sealer, gate, cmd))
    return await payout_answer(info, response)


@strawberry.input
class CancelPayoutInput:
    payout_id: strawberry.ID
    idempotency_key: str


CancelPayoutResult = Annotated[
    Payout | errors.ValidationError | errors.NotFound | errors.PayoutNotCancellable
    | errors.IdempotencyConflict,
    strawberry.union("CancelPayoutResult"),
]


@errors.typed_errors
async def cancel_payout(info: Info[Any, Any], input: CancelPayoutInput) -> CancelPayoutResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.payout_id), "pay", "payoutId")
    cmd = store.CancelPayout(str(input.payout_id), key)
    response = await info.context.router.run(
        who.region, lambda conn: store.cancel_payout_txn(conn, who, cmd))
    return await payout_answer(info, response)


payout_field = strawberry.field(resolver=resolve_payout, permission_classes=[only("payout")])
payouts_field = strawberry.field(resolver=resolve_payouts, permission_classes=[only("payouts")])
create_payout_field = strawberry.mutation(resolver=create_payout,
                                          permission_classes=[only("createPayout")])
cancel_payout_field = strawberry.mutation(resolver=cancel_payout,
                                          permission_classes=[only("cancelPayout")])
