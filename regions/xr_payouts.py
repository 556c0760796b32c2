"""Payouts paid by another region's rail, on both sides, and the obligations they leave.

The home region (the origin) holds the customer's money against ``due_to:<rail region>`` and
sends a sealed instruction (``regions.xr_dispatch``). The rail's region (the destination)
applies it: it holds ``due_from:<origin>`` against its payout clearing, records the payout in
``xr_payouts`` and hands it to its own payout worker (event ``xr_payout.accepted``). When the
rail answers, the destination posts or voids its hold, records what the origin owes it
(``settlement_obligations``, RECEIVABLE) and tells the origin, whose payout then completes
(hold posted, PAYABLE obligation) or fails (hold voided). A bank return later runs the other
way: the destination owes the amount back (``due_to:<origin>``), the origin credits the
customer from ``due_from:<destination>``.

Each message is applied by ``regions.xr.receive_txn`` exactly once and in order per stream;
every step also checks the payout's state under its row lock, so a message that finds the state
moved on does nothing.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.bank_details import BankDetails
from payments.ledger import TransferStatus
from payments.payouts import PayoutStatus
from regions import events, payout_chunks, xr
from regions.erasure import destroy_keys
from regions.holds import settle
from regions.keyring import WrappedKey
from regions.ledger_store import PlannedTransfer, pick_shard, post_journal, sharded_account
from regions.payouts import (
    Instruction,
    RailOutcome,
    failure_message_length_max,
    held_ids,
    locked_payout,
    move_payout,
    payout_payload,
)
from regions.sealing import Place, Sealer
from regions.tables import settlement_obligations, xr_payouts
from regions.xr_dispatch import (
    erase_kind,
    instruct_kind,
    outcome_kind,
    payee_column,
    returned_kind,
    table_name,
)

accepted_topic = "xr_payout.accepted"
xr_actor = "worker:settlement"
returns_batch_max = 500


kinds = frozenset({instruct_kind, outcome_kind, returned_kind, erase_kind})


async def apply(conn: AsyncConnection, sealer: Sealer, envelope: xr.Envelope) -> None:
    """Apply one payout message in the receiving region."""
    if envelope.kind == instruct_kind:
        await accept_instruction(conn, sealer, envelope)
    elif envelope.kind == outcome_kind:
        await apply_outcome(conn, envelope)
    elif envelope.kind == erase_kind:
        await apply_erasure(conn, envelope)
    else:
        assert envelope.kind == returned_kind, envelope.kind
        await apply_return(conn, envelope)


async def _account(conn: AsyncConnection, region: str, purpose: str, currency: str) -> str:
    return await sharded_account(conn, region, purpose, currency, pick_shard())


async def _obligation(conn: AsyncConnection, region: str, peer: str, obligation_id: str,
                      direction: str, row: Row[Any], occurred_at: datetime) -> None:
    await conn.execute(insert(settlement_obligations).values(
        region=region, id=obligation_id, peer=peer, direction=direction,
        currency=row.currency, amount_minor=row.amount_minor, payout_id=row.id,
        occurred_at=occurred_at))


def return_obligation_id(payout_id: str) -> str:
    return f"{payout_id}:return"


# --- the destination: paying on its rail for another region ---------------------------------


async def accept_instruction(conn: AsyncConnection, sealer: Sealer,
                             envelope: xr.Envelope) -> None:
    """Hold what the origin will owe, store the sealed payee with its data key, and queue the
    payout for this region's rail."""
    region, origin, p = envelope.destination, envelope.origin, envelope.payload
    payout_id = str(p["payout_id"])
    key = await sealer.adopt_key(conn, region, str(p["tenant_id"]), f"xr:{payout_id}",
                                 WrappedKey(str(p["kek_id"]),
                                            base64.b64decode(p["wrapped_key"])))
    claim = await _account(conn, region, f"due_from:{origin}", str(p["currency"]))
    clearing = await _account(conn, region, "payout_clearing", str(p["currency"]))
    outcome = await post_journal(
        conn, region, None, "xr_payout_hold",
        [PlannedTransfer(claim, clearing, int(p["amount_minor"]), str(p["currency"]),
                         f"payout {payout_id} for {origin}")],
        internal_ids=[claim, clearing], pending=True)
    hold = outcome.transfer_ids[0]
    assert hold is not None
    await conn.execute(insert(xr_payouts).values(
        region=region, id=payout_id, origin=origin, origin_tenant_id=str(p["tenant_id"]),
        amount_minor=int(p["amount_minor"]), currency=str(p["currency"]), rail=str(p["rail"]),
        reference=p.get("reference"), purpose_code=p.get("purpose_code"),
        fields=list(p["fields"]), data_key_id=key.id,
        payee_sealed=base64.b64decode(p["payee_sealed"]), status="ACCEPTED",
        hold_transfer_id=hold))
    await events.emit(conn, region, None, accepted_topic,
                      {"payout_id": payout_id, "origin": origin, "rail": p["rail"],
                       "amount_minor": int(p["amount_minor"]), "currency": p["currency"]},
                      actor=xr_actor, target=payout_id)


async def _locked_xr(conn: AsyncConnection, region: str, payout_id: str) -> Row[Any] | None:
    return (await conn.execute(select(xr_payouts).where(
        xr_payouts.c.region == region, xr_payouts.c.id == payout_id).with_for_update())).first()


async def _move_xr(conn: AsyncConnection, row: Row[Any], status: str, **values: Any) -> None:
    await conn.execute(update(xr_payouts).where(
        xr_payouts.c.region == row.region, xr_payouts.c.id == row.id).values(
        status=status, updated_at=func.now(), **values))


async def begin_txn(conn: AsyncConnection, sealer: Sealer, region: str,
                    payout_id: str) -> Instruction | None:
    """ACCEPTED -> PROCESSING and the rail instruction, the payee opened under the key that came
    with it; a payout already PROCESSING resumes; any other status: None."""
    row = await _locked_xr(conn, region, payout_id)
    if row is None or row.status not in ("ACCEPTED", "PROCESSING"):
        return None
    key = await sealer.key(conn, region, row.data_key_id)
    opened = Sealer.open(key, Place(row.origin_tenant_id, table_name, row.id), payee_column,
                         row.payee_sealed)
    if opened is None:
        raise LookupError(f"the payee of {payout_id} does not open in {region}")
    payee = json.loads(opened)
    if row.status == "ACCEPTED":
        await _move_xr(conn, row, "PROCESSING")
    return Instruction(row.id, row.rail, row.amount_minor, row.currency, payee["name"],
                       BankDetails(**payee["account"]), row.reference, row.purpose_code)


async def _now(conn: AsyncConnection) -> datetime:
    return (await conn.execute(select(func.now()))).scalar_one()


async def finish_txn(conn: AsyncConnection, region: str, payout_id: str,
                     result: RailOutcome) -> bool:
    """PROCESSING -> COMPLETED (hold posted; the origin owes the amount from now) or FAILED
    (hold voided); the origin is told either way. False if not processing."""
    row = await _locked_xr(conn, region, payout_id)
    if row is None or row.status != "PROCESSING":
        return False
    at = await _now(conn)
    if result.completed:
        await settle(conn, region, [row.hold_transfer_id], TransferStatus.POSTED)
        due = (func.now() + timedelta(seconds=result.return_after_s)
               if result.return_after_s is not None else None)
        await _move_xr(conn, row, "COMPLETED", rail_reference=result.rail_reference,
                       return_due_at=due)
        await _obligation(conn, region, row.origin, row.id, "RECEIVABLE", row, at)
    else:
        await settle(conn, region, [row.hold_transfer_id], TransferStatus.VOIDED)
        await _move_xr(conn, row, "FAILED", rail_reference=result.rail_reference,
                       failure_code=result.failure_code,
                       failure_message=(result.failure_message or "")[
                           :failure_message_length_max] or None)
    await xr.send(conn, region, row.origin, outcome_kind, {
        "payout_id": row.id, "status": "COMPLETED" if result.completed else "FAILED",
        "rail_reference": result.rail_reference, "failure_code": result.failure_code,
        "failure_message": result.failure_message, "occurred_at": at.isoformat()})
    return True


async def return_txn(conn: AsyncConnection, region: str, payout_id: str, code: str,
                     message: str) -> bool:
    """COMPLETED -> RETURNED: the bank gave the money back, so this region owes it to the
    origin (``due_to:<origin>``); the origin is told. False if not completed."""
    row = await _locked_xr(conn, region, payout_id)
    if row is None or row.status != "COMPLETED":
        return False
    clearing = await _account(conn, region, "payout_clearing", row.currency)
    owed = await _account(conn, region, f"due_to:{row.origin}", row.currency)
    outcome = await post_journal(
        conn, region, None, "xr_payout_return",
        [PlannedTransfer(clearing, owed, row.amount_minor, row.currency, f"return {row.id}")],
        internal_ids=[clearing, owed])
    at = await _now(conn)
    await _move_xr(conn, row, "RETURNED", return_transfer_id=outcome.transfer_ids[0],
                   failure_code=code, failure_message=message, return_due_at=None)
    await _obligation(conn, region, row.origin, return_obligation_id(row.id), "PAYABLE", row,
                      at)
    await xr.send(conn, region, row.origin, returned_kind, {
        "payout_id": row.id, "failure_code": code, "failure_message": message,
        "occurred_at": at.isoformat()})
    return True


async def due_returns(conn: AsyncConnection, region: str, limit: int = returns_batch_max
                      ) -> list[str]:
    rows = await conn.execute(select(xr_payouts.c.id).where(
        xr_payouts.c.region == region, xr_payouts.c.status == "COMPLETED",
        xr_payouts.c.return_due_at <= func.now()).order_by(xr_payouts.c.return_due_at)
        .limit(limit))
    return [r.id for r in rows]


async def apply_erasure(conn: AsyncConnection, envelope: xr.Envelope) -> None:
    """The payout's tenant, or its beneficiary, was erased in its home region: destroy the
    data keys of the payees this region holds for those payouts, and drop the ciphertexts."""
    region, p = envelope.destination, envelope.payload
    ids = [str(i) for i in p["payout_ids"]]
    mine = (await conn.execute(select(xr_payouts.c.id, xr_payouts.c.data_key_id).where(
        xr_payouts.c.region == region, xr_payouts.c.origin == envelope.origin,
        xr_payouts.c.origin_tenant_id == str(p["tenant_id"]),
        xr_payouts.c.id.in_(ids)).with_for_update())).all()
    if not mine:
        return
    destroyed = await destroy_keys(conn, region, [r.data_key_id for r in mine if r.data_key_id])
    await conn.execute(update(xr_payouts).where(
        xr_payouts.c.region == region, xr_payouts.c.id.in_([r.id for r in mine])).values(
        payee_sealed=None, updated_at=func.now()))
    await events.emit(conn, region, None, "xr_payout.payee_erased",
                      {"origin": envelope.origin, "payouts": len(mine),
                       "data_keys_destroyed": destroyed}, actor=xr_actor,
                      target=str(p["tenant_id"]))


# --- the origin: the answers about its payouts ----------------------------------------------


async def apply_outcome(conn: AsyncConnection, envelope: xr.Envelope) -> None:
    """The rail's region paid (hold posted; the amount is owed to it) or could not (hold
    voided, FAILED with the rail's code)."""
    region, p = envelope.destination, envelope.payload
    row = await locked_payout(conn, region, str(p["payout_id"]))
    if row is None or PayoutStatus(row.status) is not PayoutStatus.PROCESSING:
        return
    if p["status"] == "COMPLETED":
        await settle(conn, region, held_ids(row), TransferStatus.POSTED)
        await move_payout(conn, row, PayoutStatus.COMPLETED, rail_reference=p["rail_reference"])
        await _obligation(conn, region, envelope.origin, row.id, "PAYABLE", row,
                          datetime.fromisoformat(str(p["occurred_at"])))
        status = PayoutStatus.COMPLETED
    else:
        await settle(conn, region, held_ids(row), TransferStatus.VOIDED)
        message = str(p.get("failure_message") or "")[:failure_message_length_max] or None
        await move_payout(conn, row, PayoutStatus.FAILED, rail_reference=p["rail_reference"],
                          failure_code=p["failure_code"], failure_message=message)
        status = PayoutStatus.FAILED
    await events.emit(conn, region, row.tenant_id, f"payout.{status.value.lower()}",
                      payout_payload(row.id, status, row.amount_minor, row.currency,
                                     failure_code=p.get("failure_code"),
                                     batch_id=row.batch_id),
                      actor=xr_actor, target=row.id)
    if row.batch_id is not None:
        await payout_chunks.complete_if_done_txn(conn, region, row.batch_id)


async def apply_return(conn: AsyncConnection, envelope: xr.Envelope) -> None:
    """The rail's region's bank returned the payout: the customer gets the amount back from
    what that region now owes (the fee is kept)."""
    region, p = envelope.destination, envelope.payload
    row = await locked_payout(conn, region, str(p["payout_id"]))
    if row is None or PayoutStatus(row.status) is not PayoutStatus.COMPLETED:
        return
    claim = await _account(conn, region, f"due_from:{envelope.origin}", row.currency)
    outcome = await post_journal(
        conn, region, row.tenant_id, "payout_return",
        [PlannedTransfer(claim, row.account_id, row.amount_minor, row.currency,
                         f"return {row.id}")], internal_ids=[claim])
    await move_payout(conn, row, PayoutStatus.RETURNED, return_transfer_id=outcome.transfer_ids[0],
                      failure_code=p["failure_code"], failure_message=p.get("failure_message"),
                      return_due_at=None)
    await _obligation(conn, region, envelope.origin, return_obligation_id(row.id), "RECEIVABLE",
                      row, datetime.fromisoformat(str(p["occurred_at"])))
    await events.emit(conn, region, row.tenant_id, "payout.returned", payout_payload(
        row.id, PayoutStatus.RETURNED, row.amount_minor, row.currency,
        failure_code=p["failure_code"]), actor=xr_actor, target=row.id)
