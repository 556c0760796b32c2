"""Incoming payments: money received on a virtual account, from a bank statement or the sandbox.

Each credit posts through the region's incoming clearing account to the account behind the
address. Money that cannot be credited (unknown address, closed account, currency mismatch,
a policy that wants a look) is never dropped: it posts to the region's incoming suspense
account and stays an open reconciliation item (status ``SUSPENSE``) until an operator assigns
it to an account or returns it. The bank's reference is unique per region: the same bank
entry received twice has one effect.

Sender names and account numbers are sealed under the tenant's data key (``suspense.<region>``
under the platform's while no tenant is known), bound to that key rather than to the tenant,
since an operator may later assign a suspended payment to a tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.bank_details import validate_bank_details
from payments.errors import DomainError, InvalidInput, NotFound, PolicyDenied
from payments.ledger import AccountStatus
from payments.principal import Principal
from policies.model import Kind, Operation
from regions import events, idempotency, review_cases, virtual_accounts
from regions.beneficiaries import CreateBeneficiary, insert_beneficiary
from regions.events import Event, Trail
from regions.ledger_store import (
    PlannedTransfer,
    internal_account,
    pick_shard,
    post_journal,
    sharded_account,
)
from regions.payouts import CreatePayout, create_payout
from regions.policy_gate import PolicyGate, Ruling, decide
from regions.sealing import Place, Sealer
from regions.tables import accounts, incoming_payments

platform_tenant = "platform"
table_name = "incoming_payments"


class NotInSuspense(DomainError):
    code = "NOT_IN_SUSPENSE"


@dataclass(frozen=True, slots=True)
class IncomingEntry:
    bank_reference: str
    source: str
    routing_key: str
    amount_minor: int
    currency: str
    sender_name: str | None
    sender_iban: str | None
    reference: str | None
    value_date: date


@dataclass(frozen=True, slots=True)
class Received:
    id: str
    status: str
    created: bool


@dataclass(frozen=True, slots=True)
class _Target:
    tenant_id: str | None
    account_id: str | None
    reason: str | None
    ruling: Ruling | None = None
    denied: Event | None = None
    """A refusal's decision record: the money stays in suspense, so it is recorded here."""


def operation(entry: IncomingEntry, tenant_id: str, jurisdiction: str, region: str,
              account_id: str) -> Operation:
    """An incoming payment as the policies see it: who sent it, from where, with what."""
    iban = entry.sender_iban or ""
    country = iban[:2] if len(iban) > 4 and iban[:2].isalpha() else None
    fields = {f for f, v in (("name", entry.sender_name), ("account", entry.sender_iban)) if v}
    return Operation(
        kind=Kind.INCOMING_PAYMENT, tenant_id=tenant_id, jurisdiction=jurisdiction,
        home_region=region, amount_minor=entry.amount_minor, currency=entry.currency,
        account_id=account_id, counterparty_country=country,
        counterparty_name=entry.sender_name, counterparty_fields=frozenset(fields))


async def _target(conn: AsyncConnection, gate: PolicyGate, region: str, inc_id: str,
                  entry: IncomingEntry, only_tenant: str | None,
                  jurisdictions: Mapping[str, str], actor: str) -> _Target:
    va = await virtual_accounts.by_routing_key(conn, region, entry.routing_key)
    if va is None or (only_tenant is not None and va.tenant_id != only_tenant):
        return _Target(None, None, "UNKNOWN_ACCOUNT")
    account = (await conn.execute(select(accounts).where(
        accounts.c.region == region, accounts.c.id == va.account_id))).one()
    if va.status != "ACTIVE" or account.status != AccountStatus.ACTIVE.value:
        return _Target(va.tenant_id, None, "ACCOUNT_CLOSED")
    if account.currency != entry.currency:
        return _Target(va.tenant_id, None, "CURRENCY_MISMATCH")
    op = operation(entry, va.tenant_id, jurisdictions[va.tenant_id], region, va.account_id)
    try:
        ruling = await decide(conn, gate, op, subject_id=inc_id, actor=actor)
    except PolicyDenied as exc:
        denied = exc.trail.event if isinstance(exc.trail, Trail) else None
        return _Target(va.tenant_id, None, "POLICY_DENIED", denied=denied)
    if ruling.held:
        return _Target(va.tenant_id, None, "POLICY_REVIEW", ruling)
    return _Target(va.tenant_id, va.account_id, None, ruling)


async def receive(conn: AsyncConnection, sealer: Sealer, gate: PolicyGate, region: str,
                  entry: IncomingEntry, *, actor: str, jurisdictions: Mapping[str, str],
                  only_tenant: str | None = None) -> Received:
    """Credit (or suspend) one bank entry, once. ``only_tenant``: the sandbox credits only the
    caller's own addresses; anything else lands in suspense like an unknown address.
    ``jurisdictions``: of the tenants the entries may belong to."""
    inc_id = ids.new_id("inc", region)
    target = await _target(conn, gate, region, inc_id, entry, only_tenant, jurisdictions, actor)
    credited = target.account_id is not None
    # Credited: sealed under the tenant's key (erased with the tenant). Suspense: under the
    # region's own suspense key, whoever the address belonged to, because the sender's details
    # are needed to return the money even after that tenant's erasure.
    owner = target.tenant_id if credited and target.tenant_id else platform_tenant
    key = await sealer.shared_key(
        conn, region, owner, owner if owner != platform_tenant else f"suspense.{region}",
        seals=sum(v is not None for v in (entry.sender_name, entry.sender_iban)))
    place = Place(key.id, table_name, inc_id)
    status = "CREDITED" if credited else "SUSPENSE"
    claimed = (await conn.execute(pg_insert(incoming_payments).values(
        region=region, id=inc_id, bank_reference=entry.bank_reference, source=entry.source,
        routing_key=entry.routing_key, tenant_id=target.tenant_id, account_id=target.account_id,
        amount_minor=entry.amount_minor, currency=entry.currency, data_key_id=key.id,
        sender_name_sealed=sealer.seal(key.key, place, "sender_name", entry.sender_name),
        sender_iban_sealed=sealer.seal(key.key, place, "sender_iban", entry.sender_iban),
        reference=entry.reference, value_date=entry.value_date, status=status,
        suspense_reason=target.reason,
    ).on_conflict_do_nothing().returning(incoming_payments.c.id))).first()
    if claimed is None:
        row = (await conn.execute(select(incoming_payments.c.id, incoming_payments.c.status)
               .where(incoming_payments.c.region == region,
                      incoming_payments.c.bank_reference == entry.bank_reference))).one()
        return Received(row.id, row.status, created=False)
    clearing = await sharded_account(conn, region, "incoming_clearing", entry.currency,
                                     pick_shard())
    internal = [clearing]
    credit = target.account_id
    if credit is None:
        credit = await internal_account(conn, region, "incoming_suspense", entry.currency)
        internal.append(credit)
    outcome = await post_journal(
        conn, region, target.tenant_id, "incoming_payment",
        [PlannedTransfer(clearing, credit, entry.amount_minor, entry.currency,
                         f"incoming {inc_id}")], internal_ids=internal)
    await conn.execute(update(incoming_payments).where(
        incoming_payments.c.region == region, incoming_payments.c.id == inc_id).values(
        transfer_id=outcome.transfer_ids[0]))
    topic = "incoming_payment.received" if credited else "incoming_payment.suspended"
    caused = [Event(topic, {
        "incoming_payment_id": inc_id, "amount_minor": entry.amount_minor,
        "currency": entry.currency, "status": status, "reason": target.reason}, inc_id)]
    caused.extend(await _policy_events(conn, region, inc_id, entry, target))
    await events.record(conn, region, target.tenant_id, actor, caused)
    return Received(inc_id, status, created=True)


async def _policy_events(conn: AsyncConnection, region: str, inc_id: str,
                         entry: IncomingEntry, target: _Target) -> list[Event]:
    if target.denied is not None:
        return [target.denied]
    if target.ruling is None:
        return []
    caused = [target.ruling.event]
    if target.ruling.held:
        assert target.tenant_id is not None
        caused.append(await review_cases.open_case(
            conn, region, target.tenant_id, target.ruling, "incoming_payment", inc_id,
            entry.amount_minor, entry.currency, ids.new_id("rvc", region)))
    return caused


async def _suspended(conn: AsyncConnection, region: str, inc_id: str) -> Row[Any]:
    row = (await conn.execute(select(incoming_payments).where(
        incoming_payments.c.region == region, incoming_payments.c.id == inc_id)
        .with_for_update())).first()
    if row is None:
        raise NotFound("incoming payment", inc_id)
    if row.status != "SUSPENSE":
        raise NotInSuspense(f"incoming payment {inc_id!r} is {row.status.lower()}, not in "
                            "suspense")
    return row


async def assign(conn: AsyncConnection, region: str, inc_id: str, account_id: str,
                 actor: str) -> None:
    """An operator credits a suspended payment to an account of the region (any tenant's)."""
    row = await _suspended(conn, region, inc_id)
    account = (await conn.execute(select(accounts).where(
        accounts.c.region == region, accounts.c.id == account_id,
        accounts.c.kind == "customer"))).first()
    if account is None:
        raise NotFound("account", account_id)
    suspense = await internal_account(conn, region, "incoming_suspense", row.currency)
    outcome = await post_journal(
        conn, region, account.tenant_id, "incoming_assignment",
        [PlannedTransfer(suspense, account_id, row.amount_minor, row.currency,
                         f"incoming {inc_id}")], internal_ids=[suspense])
    await _resolve(conn, row, "ASSIGNED", outcome.transfer_ids[0], tenant_id=account.tenant_id,
                   account_id=account_id)
    await events.emit(conn, region, account.tenant_id, "incoming_payment.assigned", {
        "incoming_payment_id": inc_id, "account_id": account_id,
        "amount_minor": row.amount_minor, "currency": row.currency}, actor=actor, target=inc_id)


async def release(conn: AsyncConnection, region: str, inc_id: str, actor: str) -> None:
    """An officer released a payment held for review: it is credited where it was sent."""
    row = await _suspended(conn, region, inc_id)
    va = await virtual_accounts.by_routing_key(conn, region, row.routing_key)
    assert va is not None, inc_id
    await assign(conn, region, inc_id, va.account_id, actor)


async def reject(conn: AsyncConnection, region: str, inc_id: str, actor: str) -> None:
    """An officer rejected a payment held for review: it stays in suspense, frozen, until an
    operator returns it (or the authorities say otherwise); the partner is told."""
    row = await _suspended(conn, region, inc_id)
    await conn.execute(update(incoming_payments).where(
        incoming_payments.c.region == region, incoming_payments.c.id == inc_id).values(
        suspense_reason="POLICY_REJECTED", updated_at=func.now()))
    await events.emit(conn, region, row.tenant_id, "incoming_payment.rejected", {
        "incoming_payment_id": inc_id, "amount_minor": row.amount_minor,
        "currency": row.currency}, actor=actor, target=inc_id)


async def send_back(conn: AsyncConnection, region: str, inc_id: str, actor: str) -> None:
    """An operator returns a suspended payment to the sender's bank."""
    row = await _suspended(conn, region, inc_id)
    suspense = await internal_account(conn, region, "incoming_suspense", row.currency)
    returns = await internal_account(conn, region, "incoming_returns", row.currency)
    outcome = await post_journal(
        conn, region, None, "incoming_return",
        [PlannedTransfer(suspense, returns, row.amount_minor, row.currency,
                         f"return {inc_id}")], internal_ids=[suspense, returns])
    await _resolve(conn, row, "RETURNED", outcome.transfer_ids[0])
    await events.emit(conn, region, row.tenant_id, "incoming_payment.returned", {
        "incoming_payment_id": inc_id, "amount_minor": row.amount_minor,
        "currency": row.currency}, actor=actor, target=inc_id)


async def _resolve(conn: AsyncConnection, row: Row[Any], status: str, transfer_id: str | None,
                   **values: Any) -> None:
    await conn.execute(update(incoming_payments).where(
        incoming_payments.c.region == row.region, incoming_payments.c.id == row.id).values(
        status=status, resolution_transfer_id=transfer_id, updated_at=func.now(), **values))


async def page(conn: AsyncConnection, region: str, first: int, after: str | None, *,
               tenant_id: str | None = None, suspense_only: bool = False) -> list[Row[Any]]:
    """Newest first: a tenant's incoming payments, or the region's open suspense items."""
    q = select(incoming_payments).where(incoming_payments.c.region == region)
    if tenant_id is not None:
        q = q.where(incoming_payments.c.tenant_id == tenant_id)
    if suspense_only:
        q = q.where(incoming_payments.c.status == "SUSPENSE")
    if after is not None:
        q = q.where(incoming_payments.c.id < after)
    return list((await conn.execute(q.order_by(incoming_payments.c.id.desc())
                                    .limit(first + 1))).all())


async def sender_of(conn: AsyncConnection, sealer: Sealer, row: Row[Any]
                    ) -> tuple[str | None, str | None]:
    """The sender's name and IBAN, opened."""
    key = await sealer.key(conn, row.region, row.data_key_id)
    place = Place(row.data_key_id, table_name, row.id)
    return (sealer.open(key, place, "sender_name", row.sender_name_sealed),
            sealer.open(key, place, "sender_iban", row.sender_iban_sealed))


class NotRefundable(DomainError):
    code = "NOT_REFUNDABLE"


@dataclass(frozen=True, slots=True)
class RefundIncoming:
    incoming_payment_id: str
    idempotency_key: str


async def refund_txn(conn: AsyncConnection, who: Principal, sealer: Sealer, gate: PolicyGate,
                     cmd: RefundIncoming) -> dict[str, Any]:
    """Pay a credited payment back to its sender: a beneficiary from the sender's details and
    a payout of the whole amount, without a fee, from the account it was credited to."""
    async def effect() -> tuple[dict[str, Any], list[Event]]:
        row = (await conn.execute(select(incoming_payments).where(
            incoming_payments.c.region == who.region,
            incoming_payments.c.tenant_id == who.tenant.id,
            incoming_payments.c.id == cmd.incoming_payment_id).with_for_update())).first()
        if row is None:
            raise NotFound("incoming payment", cmd.incoming_payment_id)
        if row.status not in ("CREDITED", "ASSIGNED"):
            raise NotRefundable(f"incoming payment {row.id!r} is {row.status.lower()}")
        name, iban = await sender_of(conn, sealer, row)
        try:
            details = validate_bank_details((iban or "")[:2], iban=iban, bic=None,
                                            account_number=None, bank_code=None)
        except InvalidInput as exc:
            raise NotRefundable(f"incoming payment {row.id!r} has no sender account to refund "
                                f"to ({exc.message})") from exc
        ben_id, ben_event = await insert_beneficiary(conn, who, sealer, CreateBeneficiary(
            name or "sender", row.currency, details, None, cmd.idempotency_key))
        payout_id, payout_events = await create_payout(conn, who, sealer, gate, CreatePayout(
            row.account_id, ben_id, row.amount_minor, row.currency, f"refund {row.id}", None,
            cmd.idempotency_key), charge_fee=False)
        await conn.execute(update(incoming_payments).where(
            incoming_payments.c.region == who.region, incoming_payments.c.id == row.id).values(
            status="REFUNDED", refund_payout_id=payout_id, updated_at=func.now()))
        return {"type": "Payout", "id": payout_id}, [ben_event, *payout_events, Event(
            "incoming_payment.refunded", {"incoming_payment_id": row.id,
                                          "payout_id": payout_id}, row.id)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "refundIncomingPayment",
                                  {"incomingPaymentId": cmd.incoming_payment_id}, effect)


async def rows_by_id(conn: AsyncConnection, region: str, inc_ids: list[str],
                     tenant_id: str | None) -> list[Row[Any]]:
    q = select(incoming_payments).where(incoming_payments.c.region == region,
                                        incoming_payments.c.id.in_(inc_ids))
    if tenant_id is not None:
        q = q.where(incoming_payments.c.tenant_id == tenant_id)
    return list((await conn.execute(q)).all())
