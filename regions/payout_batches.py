"""Mass payouts: up to 10,000 payouts from one account, validated, held and recorded at once.

Every item is checked up front (beneficiary, currency, rail, policies, funds) and gets its own
outcome: an atomic batch is all or nothing (``PayoutBatchItemRejected`` names the first item
at fault); a non-atomic one records the valid items and reports the rest. The holds are one
journal and the payouts one set-based insert, so a 10,000-item batch is a handful of
statements. One ``payout_batch.created`` event hands the batch to the payout worker, which
processes it in chunks (``workers.payouts.process_batch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.errors import (
    AccountNotActive,
    BatchItemRejected,
    CurrencyMismatch,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    PolicyDenied,
)
from payments.ledger import AccountStatus
from payments.principal import Principal
from regions import beneficiaries, idempotency, xr_dispatch
from regions.events import Event, Trail
from regions.ledger_store import (
    PlannedTransfer,
    lock_accounts,
    pick_shard,
    post_journal,
    sharded_account,
)
from regions.payouts import (
    CreatePayout,
    Plan,
    Route,
    clearing_purpose,
    created_event,
    plan,
    policy_events,
    route,
)
from regions.policy_gate import PolicyGate
from regions.sealing import Sealer
from regions.tables import payout_batches, payouts

batch_items_max = 10_000
external_id_length_max = 64

Response = dict[str, Any]


class PayoutBatchItemRejected(BatchItemRejected):
    """An atomic payout batch stopped at one item; nothing of the batch was written."""


@dataclass(frozen=True, slots=True)
class CreatePayoutBatch:
    account_id: str
    items: tuple[CreatePayout | DomainError, ...]
    """Each item parsed, or the reason it could not be (kept in place for its index)."""
    external_ids: tuple[str | None, ...]
    atomic: bool
    idempotency_key: str
    raw: tuple[tuple[str | None, ...], ...]
    """Each item's fields as given, for the idempotency hash (an item that failed to parse
    has no parsed form to hash)."""


@dataclass(frozen=True, slots=True)
class _Routed:
    index: int
    cmd: CreatePayout
    route: Route
    external_id: str | None


@dataclass(frozen=True, slots=True)
class _Accepted:
    index: int
    cmd: CreatePayout
    plan: Plan
    external_id: str | None
    payout_id: str


def _request(cmd: CreatePayoutBatch) -> dict[str, Any]:
    return {"accountId": cmd.account_id, "atomic": cmd.atomic, "items": [list(r) for r in cmd.raw]}


def _route(cmd: CreatePayoutBatch, who: Principal, gate: PolicyGate,
           bens: Mapping[str, Row[Any]]) -> tuple[list[_Routed], dict[int, DomainError]]:
    """Each item's route, or its error (an item whose payee may not go to its rail's region
    included)."""
    routed: list[_Routed] = []
    rejected: dict[int, DomainError] = {}
    for index, item in enumerate(cmd.items):
        try:
            if isinstance(item, DomainError):
                raise item
            way = route(who, item, bens.get(item.beneficiary_id))
            if way.rail.region != who.region:
                xr_dispatch.fields_for(gate, who.tenant.jurisdiction, who.region,
                                       way.rail.region)
            routed.append(_Routed(index, item, way, cmd.external_ids[index]))
        except InvalidInput as exc:
            prefix = f"items[{index}]."
            field = exc.field if exc.field is None or exc.field.startswith(prefix) else (
                prefix + exc.field)
            rejected[index] = InvalidInput(exc.message, field)
        except DomainError as exc:
            rejected[index] = exc
    return routed, rejected


async def _rule(conn: AsyncConnection, gate: PolicyGate, who: Principal, sealer: Sealer,
                routed: list[_Routed], bens: Mapping[str, Row[Any]]
                ) -> tuple[list[_Accepted], dict[int, DomainError], list[Event]]:
    """The policies on each funded item: accepted (allowed or held), or refused with its
    decision's audit record."""
    keys = await beneficiaries.keys_of(conn, sealer, who.region, list(bens.values()))
    names = {b.id: beneficiaries.opened(sealer, b, keys[b.data_key_id]).name
             for b in bens.values()}
    accepted: list[_Accepted] = []
    refused: dict[int, DomainError] = {}
    trails: list[Event] = []
    for r in routed:
        payout_id = ids.new_id("pay", who.region)
        ben = bens[r.cmd.beneficiary_id]
        try:
            planned = await plan(conn, gate, who, r.cmd, ben, names.get(ben.id), payout_id,
                                 r.route)
        except PolicyDenied as exc:
            refused[r.index] = exc
            if isinstance(exc.trail, Trail):
                trails.append(exc.trail.event)
            continue
        accepted.append(_Accepted(r.index, r.cmd, planned, r.external_id, payout_id))
    return accepted, refused, trails


def _afford(routed: list[_Routed], available_minor: int, account_id: str
            ) -> tuple[list[_Routed], dict[int, DomainError]]:
    """Items in order while the account can hold amount and fee; the rest are short."""
    kept: list[_Routed] = []
    short: dict[int, DomainError] = {}
    for a in routed:
        cost = a.cmd.amount_minor + a.route.fee_minor
        if cost <= available_minor:
            available_minor -= cost
            kept.append(a)
        else:
            short[a.index] = InsufficientFunds(account_id)
    return kept, short


_insert_payouts = text("""
    INSERT INTO payouts (region, id, tenant_id, account_id, beneficiary_id, amount_minor,
                         fee_minor, currency, reference, rail, rail_region, status,
                         hold_transfer_id, fee_transfer_id, batch_id, external_id)
    SELECT :region, u.id, :tenant_id, :account_id, u.ben, u.amount, u.fee, :currency, u.ref,
           u.rail, u.rail_region, u.status, u.hold, u.fee_transfer, :batch_id, u.ext
    FROM unnest(CAST(:p_id AS TEXT[]), CAST(:p_ben AS TEXT[]), CAST(:p_amount AS BIGINT[]),
                CAST(:p_fee AS BIGINT[]), CAST(:p_ref AS TEXT[]), CAST(:p_rail AS TEXT[]),
                CAST(:p_rail_region AS TEXT[]), CAST(:p_status AS TEXT[]),
                CAST(:p_hold AS TEXT[]), CAST(:p_fee_transfer AS TEXT[]), CAST(:p_ext AS TEXT[]))
         AS u(id, ben, amount, fee, ref, rail, rail_region, status, hold, fee_transfer, ext)
""")


async def _write(conn: AsyncConnection, who: Principal, account_id: str, currency: str,
                 batch_id: str, accepted: list[_Accepted]) -> list[Event]:
    """The holds as one pending journal, then every payout in one statement; returns each
    payout's created event."""
    shard = pick_shard()
    clearing = {purpose: await sharded_account(conn, who.region, purpose, currency, shard)
                for purpose in sorted({clearing_purpose(who.region, a.plan.rail.region)
                                       for a in accepted})}
    fees = await sharded_account(conn, who.region, "fees", currency, shard)
    payout_ids = [a.payout_id for a in accepted]
    planned = []
    for payout_id, a in zip(payout_ids, accepted, strict=True):
        planned.append(PlannedTransfer(
            account_id, clearing[clearing_purpose(who.region, a.plan.rail.region)],
            a.cmd.amount_minor, currency, f"payout {payout_id}"))
        if a.plan.fee_minor > 0:
            planned.append(PlannedTransfer(account_id, fees, a.plan.fee_minor, currency,
                                           f"payout fee {payout_id}"))
    outcome = await post_journal(conn, who.region, who.tenant.id, "payout_batch_hold", planned,
                                 internal_ids=[*clearing.values(), fees], pending=True)
    transfer_ids = iter(outcome.transfer_ids)
    holds, fee_transfers = [], []
    for a in accepted:
        holds.append(next(transfer_ids))
        fee_transfers.append(next(transfer_ids) if a.plan.fee_minor > 0 else None)
    await conn.execute(_insert_payouts, {
        "region": who.region, "tenant_id": who.tenant.id, "account_id": account_id,
        "currency": currency, "batch_id": batch_id, "p_id": payout_ids,
        "p_ben": [a.cmd.beneficiary_id for a in accepted],
        "p_amount": [a.cmd.amount_minor for a in accepted],
        "p_fee": [a.plan.fee_minor for a in accepted],
        "p_ref": [a.cmd.reference for a in accepted],
        "p_rail": [a.plan.rail.name for a in accepted],
        "p_rail_region": [a.plan.rail.region for a in accepted],
        "p_status": [a.plan.status.value for a in accepted],
        "p_hold": holds, "p_fee_transfer": fee_transfers,
        "p_ext": [a.external_id for a in accepted]})
    caused = [created_event(a.payout_id, a.cmd, a.plan, batch_id) for a in accepted]
    for a in accepted:
        if a.plan.ruling.held:
            caused.extend(await policy_events(conn, who.region, who.tenant.id, a.payout_id,
                                              a.cmd.amount_minor, currency, a.plan.ruling))
    return caused


async def create_batch_txn(conn: AsyncConnection, who: Principal, sealer: Sealer,
                           gate: PolicyGate, cmd: CreatePayoutBatch) -> Response:
    assert 1 <= len(cmd.items) <= batch_items_max

    async def effect() -> tuple[Response, list[Event]]:
        locked = await lock_accounts(conn, who.region, who.tenant.id, [cmd.account_id])
        account = locked.accounts.get(cmd.account_id)
        if account is None:
            raise NotFound("account", cmd.account_id)
        if account.status != AccountStatus.ACTIVE:
            raise AccountNotActive(account.id, account.status)
        wanted = [i.beneficiary_id for i in cmd.items if isinstance(i, CreatePayout)]
        bens = await beneficiaries.rows_by_id(conn, who.region, who.tenant.id, wanted)
        routed, rejected = _route(cmd, who, gate, bens)
        for r in [r for r in routed if r.cmd.currency != account.currency]:
            rejected[r.index] = CurrencyMismatch(account.id, account.currency, r.cmd.currency)
        routed, short = _afford([r for r in routed if r.index not in rejected],
                                account.available, account.id)
        rejected |= short
        if cmd.atomic and rejected:
            first = min(rejected)
            raise PayoutBatchItemRejected(first, rejected[first])
        accepted, refused, trails = await _rule(conn, gate, who, sealer, routed, bens)
        rejected |= refused
        if cmd.atomic and refused:
            first = min(refused)
            raise PayoutBatchItemRejected(first, refused[first])
        batch_id = ids.new_id("pbt", who.region)
        created = (await _write(conn, who, account.id, account.currency, batch_id, accepted)
                   if accepted else [])
        await conn.execute(insert(payout_batches).values(
            region=who.region, id=batch_id, tenant_id=who.tenant.id, account_id=account.id,
            currency=account.currency, item_count=len(cmd.items), rejected_count=len(rejected),
            status="PROCESSING" if accepted else "COMPLETED",
            completed_at=None if accepted else func.now()))
        response = {"type": "PayoutBatch", "id": batch_id, "rejected": [
            {"index": i, "code": e.code, "message": e.message,
             "field": e.field if isinstance(e, InvalidInput) else None}
            for i, e in sorted(rejected.items())]}
        held = sum(1 for a in accepted if a.plan.ruling.held)
        return response, [Event("payout_batch.created", {
            "batch_id": batch_id, "item_count": len(cmd.items), "accepted": len(accepted),
            "rejected": len(rejected), "held_for_review": held,
            "policy_versions": _versions(accepted)}, batch_id), *created, *trails]

    return await idempotency.once(conn, who, cmd.idempotency_key, "createPayoutBatch",
                                  _request(cmd), effect)


def _versions(accepted: list[_Accepted]) -> dict[str, int]:
    """The policy versions the batch's items were decided under (the items allowed are not
    recorded one by one: the batch's event stands for their decisions)."""
    return {code: version for a in accepted
            for code, version in a.plan.ruling.decision.versions.items()}


async def batch_row(conn: AsyncConnection, region: str, tenant_id: str, batch_id: str
                    ) -> Any:
    return (await conn.execute(select(payout_batches).where(
        payout_batches.c.region == region, payout_batches.c.tenant_id == tenant_id,
        payout_batches.c.id == batch_id))).first()


async def status_counts(conn: AsyncConnection, region: str, batch_id: str) -> dict[str, int]:
    rows = await conn.execute(select(payouts.c.status, func.count()).where(
        payouts.c.region == region, payouts.c.batch_id == batch_id).group_by(payouts.c.status))
    return {status: int(n) for status, n in rows}


async def item_page(conn: AsyncConnection, region: str, tenant_id: str, batch_id: str,
                    first: int, after: str | None) -> list[Any]:
    q = select(payouts).where(payouts.c.region == region, payouts.c.tenant_id == tenant_id,
                              payouts.c.batch_id == batch_id)
    if after is not None:
        q = q.where(payouts.c.id > after)
    return list((await conn.execute(q.order_by(payouts.c.id).limit(first + 1))).all())
