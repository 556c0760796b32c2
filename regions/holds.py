"""Phase two of two-phase transfers: post or void held (pending) transfers exactly once.

A hold is written by ``ledger_store.post_journal(..., pending=True)``. Settling locks the held
transfers, then their accounts in sorted order, applies ``payments.ledger.settle_pending`` to
working copies and writes the new statuses, the settling entries and the balances in one
statement. A transfer that is no longer pending is a programmer error here: callers guard
with the state of the operation that owns the hold (a payout's status), under its row lock.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ARRAY, Text, any_, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ledger
from payments.ledger import TransferStatus
from regions.ledger_store import (
    Locked,
    account_from_row,
    balance_changes,
    entries_and_balances,
    entry_params,
)
from regions.tables import accounts, transfers

_held = (
    select(transfers)
    .where(transfers.c.region == bindparam("region"),
           transfers.c.id == any_(bindparam("ids", type_=ARRAY(Text))))
    .order_by(transfers.c.id)
    .with_for_update()
)
_lock_any = (
    select(accounts)
    .where(accounts.c.region == bindparam("region"),
           accounts.c.id == any_(bindparam("ids", type_=ARRAY(Text))))
    .order_by(accounts.c.id)
    .with_for_update()
)

_write_settlement = text("""
WITH t AS (
    UPDATE transfers SET status = :phase, updated_at = now()
    WHERE region = :region AND id = ANY(CAST(:t_id AS TEXT[])) AND status = 'PENDING'
    RETURNING 1),
""" + entries_and_balances + """
SELECT (SELECT count(*) FROM t) AS transfers, (SELECT count(*) FROM b) AS accounts
""")


async def settle(
    conn: AsyncConnection, region: str, transfer_ids: Sequence[str], outcome: TransferStatus,
) -> None:
    """Post (``POSTED``) or void (``VOIDED``) every held transfer named, in one statement."""
    assert transfer_ids
    assert outcome in (TransferStatus.POSTED, TransferStatus.VOIDED), outcome
    rows = (await conn.execute(_held, {"region": region, "ids": list(transfer_ids)})).all()
    assert len(rows) == len(set(transfer_ids)), (transfer_ids, rows)
    held = [ledger.Transfer(r.id, r.debit_account_id, r.credit_account_id, r.amount_minor,
                            r.currency) for r in rows]
    account_ids = ledger.lock_order(a for t in held
                                    for a in (t.debit_account_id, t.credit_account_id))
    locked_rows = (await conn.execute(_lock_any, {"region": region, "ids": account_ids})).all()
    locked = Locked({r.id: account_from_row(r) for r in locked_rows},
                    {r.id: r.entry_seq for r in locked_rows})
    working = {k: v.copy() for k, v in locked.accounts.items()}
    for t, row in zip(held, rows, strict=True):
        ledger.settle_pending(working, t, TransferStatus(row.status), outcome)
    settling = ledger.entries(held)
    entry_seq, changed, balances = balance_changes(settling, locked, working)
    written = (await conn.execute(_write_settlement, {
        "region": region, "phase": outcome.value, "t_id": [t.id for t in held],
        **entry_params(settling, entry_seq), **balances,
    })).one()
    assert written.transfers == len(held), (written, held)
    assert written.accounts == len(changed), (written, changed)
