"""Payouts in storage: the partner's mutations and the worker's steps, each one transaction.

``create_payout_txn`` asks the policies, holds the amount (and the rail's fee) on the customer
account against the region's payout clearing and fee accounts, and records the payout with a
``payout.created`` event that the outbox relay hands to the payout worker. The worker's steps
(``begin_processing_txn``, ``finish_txn``, ``return_txn``) move the status under the payout's
row lock, so a redelivered message or a second worker finds the status moved on and does
nothing; the hold is posted or voided exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.bank_details import BankDetails
from payments.errors import InvalidInput, NotFound, PolicyDenied
from payments.ledger import TransferStatus
from payments.payouts import (
    PayoutNotCancellable,
    PayoutStatus,
    Rail,
    choose_rail,
)
from payments.principal import Principal
from policies.model import Kind, Operation
from policies.payouts import payout_parameters
from regions import beneficiaries, events, idempotency, review_cases, xr_dispatch
from regions.events import Event, Trail
from regions.holds import settle
from regions.ledger_store import PlannedTransfer, pick_shard, post_journal, sharded_account
from regions.policy_gate import PolicyGate, Ruling, decide
from regions.sealing import Sealer
from regions.tables import message_inbox, payouts

reference_length_max = 140
failure_message_length_max = 500
worker_actor = "worker:payouts"

Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreatePayout:
    account_id: str
    beneficiary_id: str
    amount_minor: int
    currency: str
    reference: str | None
    purpose_code: str | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class CancelPayout:
    payout_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Instruction:
    """What a rail needs to pay: opened only in the worker, never stored in clear."""

    payout_id: str
    rail: str
    amount_minor: int
    currency: str
    payee_name: str
    payee: BankDetails
    reference: str | None
    purpose_code: str | None


@dataclass(frozen=True, slots=True)
class RailOutcome:
    completed: bool
    rail_reference: str | None
    failure_code: str | None = None
    failure_message: str | None = None
    return_after_s: int | None = None
    """A completed payout the bank will return this many seconds later (sandbox)."""


def _request(cmd: CreatePayout) -> dict[str, Any]:
    return {"accountId": cmd.account_id, "beneficiaryId": cmd.beneficiary_id,
            "amount": cmd.amount_minor, "currency": cmd.currency, "reference": cmd.reference,
            "purposeCode": cmd.purpose_code}


def operation(tenant_id: str, jurisdiction: str, region: str, amount_minor: int, currency: str,
              account_id: str, ben: Row[Any], payee_name: str | None) -> Operation:
    """A payout as the policies see it: the payee's name and country, and which details
    about the payee travel with the money."""
    fields = {"name", "account"} | ({"address"} if ben.address_sealed is not None else set())
    return Operation(
        kind=Kind.PAYOUT, tenant_id=tenant_id, jurisdiction=jurisdiction, home_region=region,
        amount_minor=amount_minor, currency=currency, account_id=account_id,
        beneficiary_id=ben.id, counterparty_country=ben.country,
        counterparty_name=payee_name, counterparty_fields=frozenset(fields))


@dataclass(frozen=True, slots=True)
class Route:
    rail: Rail
    fee_minor: int


def route(who: Principal, cmd: CreatePayout, ben: Row[Any] | None, *,
          charge_fee: bool = True) -> Route:
    """The checks every payout passes before the policies, and what it will cost: the
    beneficiary, its currency, the rail and the fee."""
    if ben is None or ben.status != "ACTIVE":
        raise NotFound("beneficiary", cmd.beneficiary_id)
    if ben.currency != cmd.currency:
        raise InvalidInput(f"beneficiary {cmd.beneficiary_id!r} receives {ben.currency}, "
                           f"not {cmd.currency}", "currency")
    rail = choose_rail(cmd.currency, ben.country, cmd.amount_minor)
    fee_minor = (payout_parameters(who.tenant.jurisdiction).rail_fee_minor.get(rail.name, 0)
                 if charge_fee else 0)
    return Route(rail, fee_minor)


@dataclass(frozen=True, slots=True)
class Plan:
    rail: Rail
    fee_minor: int
    status: PayoutStatus
    ruling: Ruling

    @property
    def reasons(self) -> list[str]:
        return self.ruling.decision.reason_texts()


async def plan(conn: AsyncConnection, gate: PolicyGate, who: Principal, cmd: CreatePayout,
               ben: Row[Any], payee_name: str | None, payout_id: str, way: Route) -> Plan:
    """A routed payout put to the policies (deny raises ``PolicyDenied``)."""
    op = operation(who.tenant.id, who.tenant.jurisdiction, who.region, cmd.amount_minor,
                   cmd.currency, cmd.account_id, ben, payee_name)
    ruling = await decide(conn, gate, op, subject_id=payout_id, actor=who.actor)
    status = PayoutStatus.HELD_FOR_REVIEW if ruling.held else PayoutStatus.PENDING
    return Plan(way.rail, way.fee_minor, status, ruling)


def created_event(payout_id: str, cmd: CreatePayout, planned: Plan,
                  batch_id: str | None = None) -> Event:
    """A batch item's event names its batch; the batch's own event drives its processing
    and stands for it in the audit log."""
    topic = ("payout.created" if planned.status is PayoutStatus.PENDING
             else "payout.held_for_review")
    return Event(topic, payout_payload(payout_id, planned.status, cmd.amount_minor,
                                       cmd.currency, reasons=planned.reasons,
                                       batch_id=batch_id), payout_id, audited=batch_id is None)


async def policy_events(conn: AsyncConnection, region: str, tenant_id: str, payout_id: str,
                        amount_minor: int, currency: str, ruling: Ruling) -> list[Event]:
    """The decision's audit record, and for a held payout its review case."""
    caused = [ruling.event]
    if ruling.held:
        caused.append(await review_cases.open_case(
            conn, region, tenant_id, ruling, "payout", payout_id, amount_minor, currency,
            ids.new_id("rvc", region)))
    return caused


async def create_payout(conn: AsyncConnection, who: Principal, sealer: Sealer, gate: PolicyGate,
                        cmd: CreatePayout, *, charge_fee: bool = True
                        ) -> tuple[str, list[Event]]:
    """Check, ask the policies, hold the money and record the payout; its id and events.

    ``charge_fee`` is off for refunds, which send back the whole amount received.
    """
    ben = await beneficiaries.beneficiary_row(conn, who.region, who.tenant.id,
                                              cmd.beneficiary_id, lock=True)
    name = (await beneficiaries.open_row(conn, sealer, ben)).name if ben is not None else None
    way = route(who, cmd, ben, charge_fee=charge_fee)
    assert ben is not None
    if way.rail.region != who.region:
        xr_dispatch.fields_for(gate, who.tenant.jurisdiction, who.region, way.rail.region)
    payout_id = ids.new_id("pay", who.region)
    planned = await plan(conn, gate, who, cmd, ben, name, payout_id, way)
    hold, fee = await _hold(conn, who, cmd, payout_id, planned.fee_minor, planned.rail.region)
    await conn.execute(insert(payouts).values(
        region=who.region, id=payout_id, tenant_id=who.tenant.id,
        account_id=cmd.account_id, beneficiary_id=cmd.beneficiary_id,
        amount_minor=cmd.amount_minor, fee_minor=planned.fee_minor, currency=cmd.currency,
        reference=cmd.reference, purpose_code=cmd.purpose_code, rail=planned.rail.name,
        rail_region=planned.rail.region, status=planned.status.value, hold_transfer_id=hold,
        fee_transfer_id=fee))
    return payout_id, [created_event(payout_id, cmd, planned), *await policy_events(
        conn, who.region, who.tenant.id, payout_id, cmd.amount_minor, cmd.currency,
        planned.ruling)]


async def create_payout_txn(
    conn: AsyncConnection, who: Principal, sealer: Sealer, gate: PolicyGate, cmd: CreatePayout
) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        payout_id, caused = await create_payout(conn, who, sealer, gate, cmd)
        return {"type": "Payout", "id": payout_id}, caused

    return await idempotency.once(conn, who, cmd.idempotency_key, "createPayout",
                                  _request(cmd), effect)


def clearing_purpose(region: str, rail_region: str) -> str:
    """Where a payout's amount goes: the region's payout clearing when its own rail pays it,
    else what the region owes the rail's region (``due_to:<region>``)."""
    return "payout_clearing" if rail_region == region else f"due_to:{rail_region}"


async def _hold(conn: AsyncConnection, who: Principal, cmd: CreatePayout, payout_id: str,
                fee_minor: int, rail_region: str) -> tuple[str, str | None]:
    """Hold the amount and fee on the customer account; returns the two transfer ids."""
    shard = pick_shard()
    clearing = await sharded_account(conn, who.region, clearing_purpose(who.region, rail_region),
                                     cmd.currency, shard)
    planned = [PlannedTransfer(cmd.account_id, clearing, cmd.amount_minor, cmd.currency,
                               f"payout {payout_id}")]
    internal = [clearing]
    if fee_minor > 0:
        fees = await sharded_account(conn, who.region, "fees", cmd.currency, shard)
        planned.append(PlannedTransfer(cmd.account_id, fees, fee_minor, cmd.currency,
                                       f"payout fee {payout_id}"))
        internal.append(fees)
    outcome = await post_journal(conn, who.region, who.tenant.id, "payout_hold", planned,
                                 internal_ids=internal, pending=True)
    hold = outcome.transfer_ids[0]
    assert hold is not None
    return hold, outcome.transfer_ids[1] if fee_minor > 0 else None


def payout_payload(payout_id: str, status: PayoutStatus, amount_minor: int, currency: str,
             **extra: Any) -> dict[str, Any]:
    return {"payout_id": payout_id, "status": status.value, "amount_minor": amount_minor,
            "currency": currency, **{k: v for k, v in extra.items() if v}}


def held_ids(row: Row[Any]) -> list[str]:
    return [row.hold_transfer_id, *([row.fee_transfer_id] if row.fee_transfer_id else [])]


async def locked_payout(conn: AsyncConnection, region: str, payout_id: str,
                  tenant_id: str | None = None) -> Row[Any] | None:
    q = select(payouts).where(payouts.c.region == region, payouts.c.id == payout_id)
    if tenant_id is not None:
        q = q.where(payouts.c.tenant_id == tenant_id)
    return (await conn.execute(q.with_for_update())).first()


async def move_payout(conn: AsyncConnection, row: Row[Any], status: PayoutStatus,
                **values: Any) -> None:
    await conn.execute(update(payouts).where(
        payouts.c.region == row.region, payouts.c.id == row.id).values(
        status=status.value, updated_at=func.now(), **values))


async def cancel_payout_txn(conn: AsyncConnection, who: Principal, cmd: CancelPayout) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        row = await locked_payout(conn, who.region, cmd.payout_id, who.tenant.id)
        if row is None:
            raise NotFound("payout", cmd.payout_id)
        status = PayoutStatus(row.status)
        if status not in (PayoutStatus.PENDING, PayoutStatus.HELD_FOR_REVIEW):
            raise PayoutNotCancellable(cmd.payout_id, status)
        await settle(conn, who.region, held_ids(row), TransferStatus.VOIDED)
        await move_payout(conn, row, PayoutStatus.CANCELLED)
        caused = [Event("payout.cancelled", payout_payload(
            row.id, PayoutStatus.CANCELLED, row.amount_minor, row.currency), row.id)]
        case = await review_cases.open_case_of(conn, who.region, row.id)
        if case is not None:
            caused.append(await review_cases.close(conn, who, case,
                                                   review_cases.CaseStatus.WITHDRAWN, None))
        return {"type": "Payout", "id": row.id}, caused

    return await idempotency.once(conn, who, cmd.idempotency_key, "cancelPayout",
                                  {"payoutId": cmd.payout_id}, effect)


JurisdictionOf = Callable[[str], Awaitable[str]]


async def begin_processing_txn(conn: AsyncConnection, sealer: Sealer, gate: PolicyGate,
                               region: str, payout_id: str,
                               jurisdiction_of: JurisdictionOf) -> Instruction | None:
    """PENDING -> PROCESSING and the rail instruction, after the policies are asked again (a
    sanctions list may have changed since the payout was accepted); a payout already
    PROCESSING (a redelivery after a crash or a rail time-out) resumes; any other status:
    None. A payout whose rail is another region's leaves as a sealed instruction for that
    region in this transaction, and None is returned: the rail's region answers later."""
    row = await locked_payout(conn, region, payout_id)
    if row is None:
        return None
    status = PayoutStatus(row.status)
    if status not in (PayoutStatus.PENDING, PayoutStatus.PROCESSING):
        return None
    ben = await beneficiaries.beneficiary_row(conn, region, row.tenant_id, row.beneficiary_id)
    assert ben is not None, row
    found = instruction(sealer, row, ben, await sealer.key(conn, region, ben.data_key_id))
    crosses = row.rail_region != region
    if status is PayoutStatus.PENDING:
        jurisdiction = await jurisdiction_of(row.tenant_id)
        stop = await recheck(conn, gate, row, ben, found.payee_name, jurisdiction)
        if not stop and crosses:
            stop = await send_across(conn, sealer, gate, row, found, jurisdiction)
        if stop:
            await events.record(conn, region, row.tenant_id, worker_actor, stop)
            return None
        await move_payout(conn, row, PayoutStatus.PROCESSING)
        await events.emit(conn, region, row.tenant_id, "payout.processing", payout_payload(
            row.id, PayoutStatus.PROCESSING, row.amount_minor, row.currency, rail=row.rail),
            actor=worker_actor, target=row.id)
    return None if crosses else found


async def send_across(conn: AsyncConnection, sealer: Sealer, gate: PolicyGate, row: Row[Any],
                       found: Instruction, jurisdiction: str) -> list[Event]:
    """Send the payout to its rail's region; if the payee may no longer cross (a policy
    changed since it was accepted), fail it here and return its events."""
    try:
        fields = xr_dispatch.fields_for(gate, jurisdiction, row.region, row.rail_region)
    except PolicyDenied as exc:
        return await fail(conn, row, xr_dispatch.residency_code, "; ".join(exc.reasons))
    await xr_dispatch.send_instruction(conn, sealer, row, found.payee_name, found.payee,
                                       fields)
    return []


async def recheck(conn: AsyncConnection, gate: PolicyGate, row: Row[Any], ben: Row[Any],
                  payee_name: str, jurisdiction: str) -> list[Event]:
    """The worker's policy check of a PENDING payout: nothing when it may go on; else the
    payout is failed (deny: hold voided) or held for review here, and these are its events.
    A payout an officer released is not asked again: the officer's decision stands."""
    if row.review_case_id is not None:
        return []
    op = operation(row.tenant_id, jurisdiction, row.region, row.amount_minor, row.currency,
                   row.account_id, ben, payee_name)
    try:
        ruling = await decide(conn, gate, op, subject_id=row.id, actor=worker_actor,
                              count_usage=False)
    except PolicyDenied as exc:
        trail = [exc.trail.event] if isinstance(exc.trail, Trail) else []
        return [*trail, *await fail(conn, row, "POLICY_DENIED", "; ".join(exc.reasons))]
    if not ruling.held:
        return []
    await move_payout(conn, row, PayoutStatus.HELD_FOR_REVIEW)
    held = Event("payout.held_for_review", payout_payload(
        row.id, PayoutStatus.HELD_FOR_REVIEW, row.amount_minor, row.currency,
        reasons=ruling.decision.reason_texts(), batch_id=row.batch_id), row.id)
    return [held, *await policy_events(conn, row.region, row.tenant_id, row.id,
                                       row.amount_minor, row.currency, ruling)]


async def fail(conn: AsyncConnection, row: Row[Any], code: str, message: str) -> list[Event]:
    """A payout that will not be paid: its hold voided, FAILED with ``code``."""
    await settle(conn, row.region, held_ids(row), TransferStatus.VOIDED)
    await move_payout(conn, row, PayoutStatus.FAILED, failure_code=code,
                failure_message=message[:failure_message_length_max])
    return [Event("payout.failed", payout_payload(
        row.id, PayoutStatus.FAILED, row.amount_minor, row.currency, failure_code=code,
        batch_id=row.batch_id), row.id)]


async def release(conn: AsyncConnection, region: str, payout_id: str,
                  case_id: str) -> list[Event]:
    """An officer released the held payout: it goes to the rail (HELD_FOR_REVIEW -> PENDING)."""
    row = await locked_payout(conn, region, payout_id)
    assert row is not None, payout_id
    assert row.status == PayoutStatus.HELD_FOR_REVIEW.value, payout_id
    await move_payout(conn, row, PayoutStatus.PENDING, review_case_id=case_id)
    return [Event("payout.created", payout_payload(
        row.id, PayoutStatus.PENDING, row.amount_minor, row.currency, released=True), row.id)]


async def reject(conn: AsyncConnection, region: str, payout_id: str, note: str | None
                 ) -> list[Event]:
    """An officer rejected the held payout: its hold is voided and it fails."""
    row = await locked_payout(conn, region, payout_id)
    assert row is not None, payout_id
    assert row.status == PayoutStatus.HELD_FOR_REVIEW.value, payout_id
    return await fail(conn, row, "REVIEW_REJECTED",
                      "a compliance review rejected the payout" + (f": {note}" if note else ""))


def instruction(sealer: Sealer, row: Row[Any], ben: Row[Any], key: bytes | None
                ) -> Instruction:
    """The rail instruction of a payout, its beneficiary opened under ``key``."""
    return Instruction(row.id, row.rail, row.amount_minor, row.currency,
                       beneficiaries.opened(sealer, ben, key).name or "",
                       beneficiaries.payee_details(sealer, ben, key), row.reference,
                       row.purpose_code)


async def finish_txn(conn: AsyncConnection, region: str, payout_id: str, result: RailOutcome,
                     message_id: str) -> bool:
    """PROCESSING -> COMPLETED (hold posted) or FAILED (hold voided); False if not processing."""
    row = await locked_payout(conn, region, payout_id)
    if row is None or PayoutStatus(row.status) is not PayoutStatus.PROCESSING:
        return False
    await _inbox(conn, region, message_id)
    if result.completed:
        await settle(conn, region, held_ids(row), TransferStatus.POSTED)
        due = (func.now() + timedelta(seconds=result.return_after_s)
               if result.return_after_s is not None else None)
        await move_payout(conn, row, PayoutStatus.COMPLETED, rail_reference=result.rail_reference,
                    return_due_at=due)
        status = PayoutStatus.COMPLETED
    else:
        await settle(conn, region, held_ids(row), TransferStatus.VOIDED)
        await move_payout(conn, row, PayoutStatus.FAILED, rail_reference=result.rail_reference,
                    failure_code=result.failure_code, failure_message=result.failure_message)
        status = PayoutStatus.FAILED
    await events.emit(conn, region, row.tenant_id, f"payout.{status.value.lower()}",
                      payout_payload(row.id, status, row.amount_minor, row.currency,
                                     failure_code=result.failure_code),
                      actor=worker_actor, target=row.id)
    return True


async def return_txn(conn: AsyncConnection, region: str, payout_id: str, code: str,
                     message: str) -> bool:
    """COMPLETED -> RETURNED: the amount comes back by a reversal journal; the fee is kept."""
    row = await locked_payout(conn, region, payout_id)
    if row is None or PayoutStatus(row.status) is not PayoutStatus.COMPLETED:
        return False
    clearing = await sharded_account(conn, region, "payout_clearing", row.currency,
                                     pick_shard())
    outcome = await post_journal(
        conn, region, row.tenant_id, "payout_return",
        [PlannedTransfer(clearing, row.account_id, row.amount_minor, row.currency,
                         f"return {row.id}")], internal_ids=[clearing])
    await move_payout(conn, row, PayoutStatus.RETURNED, return_transfer_id=outcome.transfer_ids[0],
                failure_code=code, failure_message=message, return_due_at=None)
    await events.emit(conn, region, row.tenant_id, "payout.returned", payout_payload(
        row.id, PayoutStatus.RETURNED, row.amount_minor, row.currency, failure_code=code),
        actor=worker_actor, target=row.id)
    return True


async def due_returns(conn: AsyncConnection, region: str, limit: int) -> list[str]:
    rows = await conn.execute(select(payouts.c.id).where(
        payouts.c.region == region, payouts.c.status == PayoutStatus.COMPLETED.value,
        payouts.c.return_due_at <= func.now()).order_by(payouts.c.return_due_at).limit(limit))
    return [r.id for r in rows]


async def _inbox(conn: AsyncConnection, region: str, message_id: str) -> None:
    await conn.execute(pg_insert(message_inbox).values(
        region=region, consumer="payouts", message_id=message_id).on_conflict_do_nothing())


async def payout_page(conn: AsyncConnection, region: str, tenant_id: str, first: int,
                      after: str | None, status: PayoutStatus | None) -> list[Row[Any]]:
    q = select(payouts).where(payouts.c.region == region, payouts.c.tenant_id == tenant_id)
    if status is not None:
        q = q.where(payouts.c.status == status.value)
    if after is not None:
        q = q.where(payouts.c.id < after)
    return list((await conn.execute(q.order_by(payouts.c.id.desc()).limit(first + 1))).all())


async def payout_row(conn: AsyncConnection, region: str, tenant_id: str,
                     payout_id: str) -> Row[Any] | None:
    return (await conn.execute(select(payouts).where(
        payouts.c.region == region, payouts.c.tenant_id == tenant_id,
        payouts.c.id == payout_id))).first()
