"""Handlers for the ledger's mutations: verbs that run as one transaction in the home region.

Each ``*_txn`` body records the idempotency key, the business rows, the outbox event and the
audit event together, and returns a small JSON response (ids, or per-item errors) that a replay
of the same key returns again. Inputs arrive parsed and validated (see ``schema``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import BatchItemRejected, DomainError, PolicyDenied
from payments.principal import Principal
from policies.model import Kind, Operation
from regions import events, idempotency, ledger_queries
from regions.events import Event
from regions.ledger_store import (
    JournalOutcome,
    PlannedTransfer,
    insert_account,
    internal_account,
    post_journal,
)
from regions.policy_gate import PolicyGate, Ruling, batch_event, decide

batch_transfers_max = 1_000
reference_length_max = 140
label_length_max = 100

Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateAccount:
    currency: str
    label: str | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class TransferItem:
    from_account_id: str
    to_account_id: str
    amount_minor: int
    currency: str
    reference: str | None

    def planned(self) -> PlannedTransfer:
        return PlannedTransfer(self.from_account_id, self.to_account_id, self.amount_minor,
                               self.currency, self.reference)


@dataclass(frozen=True, slots=True)
class CreateTransfer:
    item: TransferItem
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class CreateTransferBatch:
    items: tuple[TransferItem, ...]
    atomic: bool
    idempotency_key: str


def _item(i: TransferItem) -> list[Any]:
    return [i.from_account_id, i.to_account_id, i.amount_minor, i.currency, i.reference]


def _request(cmd: CreateAccount | CreateTransfer | CreateTransferBatch) -> dict[str, Any]:
    """The request as hashed for idempotency: every field but the key (built by hand, since
    ``asdict`` over a thousand items costs milliseconds)."""
    if isinstance(cmd, CreateTransferBatch):
        return {"items": [_item(i) for i in cmd.items], "atomic": cmd.atomic}
    if isinstance(cmd, CreateTransfer):
        return {"item": _item(cmd.item)}
    return {"currency": cmd.currency, "label": cmd.label}


async def create_account_txn(conn: AsyncConnection, who: Principal, cmd: CreateAccount) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        account_id = await insert_account(conn, who.region, who.tenant.id, cmd.currency, cmd.label)
        return {"type": "Account", "id": account_id}, [Event(
            "account.created", {"account_id": account_id, "currency": cmd.currency}, account_id)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "createAccount",
                                  _request(cmd), effect)


def transfer_request(cmd: CreateTransfer) -> dict[str, Any]:
    """A single transfer's request as hashed for its idempotency key."""
    return _request(cmd)


def transfer_events(transfer_id: str, item: TransferItem, ruling: Ruling) -> list[Event]:
    """What a posted transfer records: its event, and the policy decision naming it."""
    return [Event("transfer.created", {"transfer_id": transfer_id,
                                       "amount_minor": item.amount_minor,
                                       "currency": item.currency}, transfer_id),
            ruling.about(transfer_id)]


def transfer_operation(who: Principal, item: TransferItem) -> Operation:
    return Operation(kind=Kind.TRANSFER, tenant_id=who.tenant.id,
                     jurisdiction=who.tenant.jurisdiction, home_region=who.region,
                     amount_minor=item.amount_minor, currency=item.currency,
                     account_id=item.from_account_id)


async def create_transfer_txn(
    conn: AsyncConnection, who: Principal, gate: PolicyGate, cmd: CreateTransfer
) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        ruling = await decide(conn, gate, transfer_operation(who, cmd.item), subject_id=None,
                              actor=who.actor, reviewable=False)
        outcome = await post_journal(conn, who.region, who.tenant.id, "transfer",
                                     [cmd.item.planned()])
        transfer_id = outcome.transfer_ids[0]
        assert transfer_id is not None
        return ({"type": "Transfer", "id": transfer_id},
                transfer_events(transfer_id, cmd.item, ruling))

    return await idempotency.once(conn, who, cmd.idempotency_key, "createTransfer",
                                  _request(cmd), effect)


async def create_transfer_row_txn(conn: AsyncConnection, who: Principal, gate: PolicyGate,
                                  cmd: CreateTransfer) -> Row[Any]:
    """The transfer, made or replayed, and its row in the same transaction (no second round
    of BEGIN/COMMIT to read it back)."""
    response = await create_transfer_txn(conn, who, gate, cmd)
    [row] = await ledger_queries.transfer_rows(conn, who.region, who.tenant.id,
                                               [response["id"]])
    return row


def _batch_response(outcome: JournalOutcome) -> Response:
    items: list[dict[str, Any]] = []
    for transfer_id, error in zip(outcome.transfer_ids, outcome.errors, strict=True):
        items.append({"transferId": transfer_id} if error is None
                     else {"code": error.code, "message": error.message})
    return {"type": "TransferBatch", "id": outcome.journal_id, "items": items}


async def _refused(conn: AsyncConnection, who: Principal, gate: PolicyGate,
                   cmd: CreateTransferBatch) -> tuple[dict[int, PolicyDenied], dict[str, int]]:
    """The items the policies refuse, by index, and the versions they were decided under.
    An atomic batch fails at its first refused item; so does a batch they refuse whole.

    The rules on book transfers are monotone in the amount (a larger amount is refused
    whenever a smaller one is), so when the batch's largest item in a currency passes, every
    item in that currency does, and only a currency whose largest item is refused is decided
    item by item (``tests/unit/policies`` hold the rules to that)."""
    refused: dict[int, PolicyDenied] = {}
    versions: dict[str, int] = {}
    largest: dict[str, TransferItem] = {}
    for item in cmd.items:
        kept = largest.get(item.currency)
        if kept is None or item.amount_minor > kept.amount_minor:
            largest[item.currency] = item
    doubtful: set[str] = set()
    for currency, item in largest.items():
        try:
            ruling = await decide(conn, gate, transfer_operation(who, item), subject_id=None,
                                  actor=who.actor, reviewable=False)
            versions |= ruling.decision.versions
        except PolicyDenied:
            doubtful.add(currency)
    for index, item in enumerate(cmd.items):
        if item.currency not in doubtful:
            continue
        try:
            await decide(conn, gate, transfer_operation(who, item), subject_id=None,
                         actor=who.actor, reviewable=False)
        except PolicyDenied as exc:
            if cmd.atomic:
                raise BatchItemRejected(index, exc) from exc
            refused[index] = exc
    if len(refused) == len(cmd.items):
        raise BatchItemRejected(0, refused[0])
    return refused, versions


def _merge(outcome: JournalOutcome, refused: dict[int, PolicyDenied], size: int
           ) -> JournalOutcome:
    """The journal's per-item results with the refused items put back in their places."""
    posted, errors = iter(outcome.transfer_ids), iter(outcome.errors)
    transfer_ids: list[str | None] = []
    merged: list[DomainError | None] = []
    for index in range(size):
        if index in refused:
            transfer_ids.append(None)
            merged.append(refused[index])
        else:
            transfer_ids.append(next(posted))
            merged.append(next(errors))
    return JournalOutcome(outcome.journal_id, transfer_ids, merged)


async def create_transfer_batch_txn(
    conn: AsyncConnection, who: Principal, gate: PolicyGate, cmd: CreateTransferBatch
) -> Response:
    """One journal for the whole batch; atomic batches post all items or none."""
    assert 1 <= len(cmd.items) <= batch_transfers_max

    async def effect() -> tuple[Response, list[Event]]:
        refused, versions = await _refused(conn, who, gate, cmd)
        kept = [i.planned() for n, i in enumerate(cmd.items) if n not in refused]
        outcome = _merge(await post_journal(conn, who.region, who.tenant.id, "transfer_batch",
                                            kept, atomic=cmd.atomic, itemized=True),
                         refused, len(cmd.items))
        posted = sum(1 for t in outcome.transfer_ids if t is not None)
        return _batch_response(outcome), [Event(
            "transfer_batch.created", {"journal_id": outcome.journal_id,
                                       "item_count": len(cmd.items), "posted": posted},
            outcome.journal_id), batch_event(Kind.TRANSFER, outcome.journal_id, versions,
                                             len(cmd.items) - len(refused), refused)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "createTransferBatch",
                                  _request(cmd), effect)


async def fund_account_txn(
    conn: AsyncConnection, region: str, tenant_id: str, account_id: str, amount_minor: int,
    currency: str, actor: str,
) -> str:
    """Credit a customer account from the region's incoming-funds account (seeding, sandbox).

    The incoming account is internal and may go negative: it mirrors money held at the bank.
    """
    incoming = await internal_account(conn, region, "incoming", currency)
    outcome = await post_journal(
        conn, region, tenant_id, "funding",
        [PlannedTransfer(incoming, account_id, amount_minor, currency, "funding")],
        internal_ids=[incoming])
    transfer_id = outcome.transfer_ids[0]
    assert transfer_id is not None
    await events.emit(conn, region, tenant_id, "account.funded",
                      {"transfer_id": transfer_id, "account_id": account_id,
                       "amount_minor": amount_minor, "currency": currency},
                      actor=actor, target=account_id)
    return transfer_id


