"""Incoming payments: ``incomingPayments``, ``simulateIncomingPayment`` (sandbox keys only),
``refundIncomingPayment``, and for operators (sre) the region's open suspense items with
``assignIncomingPayment`` and ``returnIncomingPayment``."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.bank_details import mask
from payments.currency import currency as lookup_currency
from payments.money import parse_amount
from payments.principal import Environment, Principal
from payments.text import check_text
from regions import commands, idempotency, incoming
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import utc
from schema.money import Money, money
from schema.pagination import Connection, connection, page_args
from schema.payouts import Payout, payout_answer
from schema.permissions import principal

sender_name_length_max = 140
address_length_max = 64


@strawberry.type(description="Money received on one of the tenant's account details.")
class IncomingPayment:
    id: strawberry.ID
    status: str = strawberry.field(description=(
        "CREDITED, SUSPENSE (held in the region's suspense account: see suspenseReason), "
        "ASSIGNED (credited by an operator), RETURNED (sent back) or REFUNDED."))
    amount: Money
    account_id: strawberry.ID | None
    address: str = strawberry.field(description="The IBAN or local account it was sent to.")
    sender_name: str | None
    sender_account_masked: str | None
    reference: str | None
    bank_reference: str
    suspense_reason: str | None = strawberry.field(description=(
        "UNKNOWN_ACCOUNT, ACCOUNT_CLOSED, CURRENCY_MISMATCH, POLICY_REVIEW (waiting for a "
        "compliance review), POLICY_DENIED or POLICY_REJECTED (frozen by policy or by a "
        "review)."))
    value_date: date
    created_at: datetime


async def _answer(info: Info[Any, Any], region: str, rows: list[Row[Any]]
                  ) -> list[IncomingPayment]:
    sealer = info.context.keys()

    async def body(conn: AsyncConnection) -> list[tuple[str | None, str | None]]:
        return [await incoming.sender_of(conn, sealer, r) for r in rows]

    senders = await info.context.router.read(region, body)
    return [IncomingPayment(
        id=strawberry.ID(r.id), status=r.status, amount=money(r.amount_minor, r.currency),
        account_id=strawberry.ID(r.account_id) if r.account_id else None,
        address=r.routing_key, sender_name=name,
        sender_account_masked=mask(iban) if iban else None, reference=r.reference,
        bank_reference=r.bank_reference, suspense_reason=r.suspense_reason,
        value_date=r.value_date, created_at=utc(r.created_at))
        for r, (name, iban) in zip(rows, senders, strict=True)]


async def _page(info: Info[Any, Any], first: int | None, after: str | None, *,
                suspense_only: bool) -> Connection[IncomingPayment]:
    who = principal(info)
    limit, after_id = page_args(first, after, "inc")

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return await incoming.page(conn, who.region, limit, after_id,
                                   tenant_id=None if suspense_only else who.tenant.id,
                                   suspense_only=suspense_only)

    rows = await info.context.router.read(who.region, body)
    nodes = await _answer(info, who.region, rows[:limit])
    return connection(nodes, [n.id for n in nodes], "inc", len(rows) > limit)


async def resolve_incoming_payments(info: Info[Any, Any], first: int | None = None,
                                    after: str | None = None) -> Connection[IncomingPayment]:
    """The tenant's incoming payments, newest first."""
    return await _page(info, first, after, suspense_only=False)


async def resolve_reconciliation_items(info: Info[Any, Any], first: int | None = None,
                                       after: str | None = None) -> Connection[IncomingPayment]:
    """Operators: the region's incoming payments held in suspense, newest first."""
    return await _page(info, first, after, suspense_only=True)


@strawberry.input
class SimulateIncomingPaymentInput:
    iban: str = strawberry.field(description="The IBAN, or for local details the address "
                                             "`COUNTRY:BANKCODE:ACCOUNT` as issued.")
    amount: str
    currency: str
    sender_name: str
    sender_iban: str | None = strawberry.field(
        default=None, description="The sender's IBAN, needed to refund the payment later.")
    reference: str | None = None
    idempotency_key: str


SimulateIncomingPaymentResult = Annotated[
    IncomingPayment | errors.ValidationError | errors.IdempotencyConflict,
    strawberry.union("SimulateIncomingPaymentResult"),
]


def _entry(who: Principal, data: SimulateIncomingPaymentInput, key: str
           ) -> incoming.IncomingEntry:
    cur = lookup_currency(data.currency)
    address = check_text(data.iban.replace(" ", "").upper(), "iban", address_length_max,
                         length_min=1)
    name = check_text(data.sender_name, "senderName", sender_name_length_max, length_min=1)
    if data.reference is not None:
        check_text(data.reference, "reference", commands.reference_length_max)
    sender_iban = None
    if data.sender_iban is not None:
        sender_iban = check_text(data.sender_iban.replace(" ", "").upper(), "senderIban",
                                 address_length_max)
    digest = hashlib.sha256(f"{who.tenant.id}\x00{key}".encode()).hexdigest()[:40]
    return incoming.IncomingEntry(
        bank_reference=f"SIM-{digest}", source="SIMULATED", routing_key=address,
        amount_minor=parse_amount(data.amount, cur), currency=cur.code, sender_name=name,
        sender_iban=sender_iban, reference=data.reference, value_date=datetime.now(UTC).date())


@errors.typed_errors
async def simulate_incoming_payment(
    info: Info[Any, Any], input: SimulateIncomingPaymentInput
) -> SimulateIncomingPaymentResult:
    who = principal(info)
    if who.tenant.environment is not Environment.TEST:
        raise errors.PublicError("simulateIncomingPayment is for test keys only", "FORBIDDEN")
    key = check_key(input.idempotency_key)
    entry = _entry(who, input, key)
    sealer = info.context.keys()

    async def body(conn: AsyncConnection) -> dict[str, Any]:
        async def effect() -> tuple[dict[str, Any], list[Any]]:
            got = await incoming.receive(conn, sealer, info.context.gate(), who.region, entry,
                                         actor=who.actor, only_tenant=who.tenant.id,
                                         jurisdictions={who.tenant.id: who.tenant.jurisdiction})
            return {"type": "IncomingPayment", "id": got.id}, []

        request = {"iban": entry.routing_key, "amount": entry.amount_minor,
                   "currency": entry.currency, "senderName": entry.sender_name,
                   "senderIban": entry.sender_iban, "reference": entry.reference}
        return await idempotency.once(conn, who, key, "simulateIncomingPayment", request,
                                      effect)

    response = await info.context.router.run(who.region, body)
    return (await _by_id(info, who, response["id"], tenant_scoped=False))[0]


async def _by_id(info: Info[Any, Any], who: Principal, inc_id: str, *,
                 tenant_scoped: bool) -> list[IncomingPayment]:
    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return await incoming.rows_by_id(conn, who.region, [inc_id],
                                         who.tenant.id if tenant_scoped else None)

    return await _answer(info, who.region, await info.context.router.read(who.region, body))


@strawberry.input
class RefundIncomingPaymentInput:
    incoming_payment_id: strawberry.ID
    idempotency_key: str


RefundIncomingPaymentResult = Annotated[
    Payout | errors.ValidationError | errors.NotFound | errors.NotRefundable
    | errors.InsufficientFunds | errors.AccountNotActive | errors.PolicyDenied
    | errors.RailUnavailable | errors.IdempotencyConflict,
    strawberry.union("RefundIncomingPaymentResult"),
]


@errors.typed_errors
async def refund_incoming_payment(
    info: Info[Any, Any], input: RefundIncomingPaymentInput
) -> RefundIncomingPaymentResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.incoming_payment_id), "inc", "incomingPaymentId")
    cmd = incoming.RefundIncoming(str(input.incoming_payment_id), key)
    sealer, gate = info.context.keys(), info.context.gate()
    response = await info.context.router.run(
        who.region, lambda conn: incoming.refund_txn(conn, who, sealer, gate, cmd))
    return await payout_answer(info, response)


@strawberry.input
class AssignIncomingPaymentInput:
    incoming_payment_id: strawberry.ID
    account_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class ReturnIncomingPaymentInput:
    incoming_payment_id: strawberry.ID
    idempotency_key: str


ResolveIncomingPaymentResult = Annotated[
    IncomingPayment | errors.ValidationError | errors.NotFound | errors.NotInSuspense
    | errors.AccountNotActive | errors.CurrencyMismatch | errors.IdempotencyConflict,
    strawberry.union("ResolveIncomingPaymentResult"),
]


async def _resolve(info: Info[Any, Any], inc_id: str, key: str, operation: str,
                   account_id: str | None) -> IncomingPayment:
    """Run an operator's resolution in the operator's region, once per key."""
    who = principal(info)

    async def body(conn: AsyncConnection) -> dict[str, Any]:
        async def effect() -> tuple[dict[str, Any], list[Any]]:
            if account_id is None:
                await incoming.send_back(conn, who.region, inc_id, who.actor)
            else:
                await incoming.assign(conn, who.region, inc_id, account_id, who.actor)
            return {"type": "IncomingPayment", "id": inc_id}, []

        return await idempotency.once(conn, who, key, operation, {
            "incomingPaymentId": inc_id, "accountId": account_id}, effect)

    await info.context.router.run(who.region, body)
    return (await _by_id(info, who, inc_id, tenant_scoped=False))[0]


@errors.typed_errors
async def assign_incoming_payment(
    info: Info[Any, Any], input: AssignIncomingPaymentInput
) -> ResolveIncomingPaymentResult:
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.incoming_payment_id), "inc", "incomingPaymentId")
    ids.parse_id(str(input.account_id), "acc", "accountId")
    return await _resolve(info, str(input.incoming_payment_id), key, "assignIncomingPayment",
                          str(input.account_id))


@errors.typed_errors
async def return_incoming_payment(
    info: Info[Any, Any], input: ReturnIncomingPaymentInput
) -> ResolveIncomingPaymentResult:
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.incoming_payment_id), "inc", "incomingPaymentId")
    return await _resolve(info, str(input.incoming_payment_id), key, "returnIncomingPayment",
                          None)


incoming_payments_field = strawberry.field(resolver=resolve_incoming_payments,
                                           permission_classes=[only("incomingPayments")])
reconciliation_items_field = strawberry.field(resolver=resolve_reconciliation_items,
                                              permission_classes=[only("reconciliationItems")])
simulate_incoming_payment_field = strawberry.mutation(resolver=simulate_incoming_payment,
                                                      permission_classes=[only("simulateIncomingPayment")])
refund_incoming_payment_field = strawberry.mutation(resolver=refund_incoming_payment,
                                                    permission_classes=[only("refundIncomingPayment")])
assign_incoming_payment_field = strawberry.mutation(resolver=assign_incoming_payment,
                                                    permission_classes=[only("assignIncomingPayment")])
return_incoming_payment_field = strawberry.mutation(resolver=return_incoming_payment,
                                                    permission_classes=[only("returnIncomingPayment")])
