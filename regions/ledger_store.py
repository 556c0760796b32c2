"""Persistence of accounts, journals, transfers and entries. Bodies run inside ``run_txn``.

Posting a journal takes row locks on every account it touches in sorted id order (no deadlocks),
applies the transfers with ``payments.ledger`` on working copies, then writes the journal, its
transfers and entries and the new balances in one set-based statement, whatever the size of
the journal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Row, Text, and_, any_, bindparam, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids, ledger
from payments.errors import BatchItemRejected, DomainError
from payments.ledger import Account, AccountStatus
from regions.tables import accounts, journals

page_size_max = 100


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    """A transfer a caller asks for; ``tenant_id`` scopes the customer accounts it may touch."""

    debit_account_id: str
    credit_account_id: str
    amount_minor: int
    currency: str
    reference: str | None


@dataclass(frozen=True, slots=True)
class JournalOutcome:
    journal_id: str
    transfer_ids: list[str | None]
    errors: list[DomainError | None]


def account_from_row(row: Row[Any]) -> Account:
    return Account(
        id=row.id, currency=row.currency, status=AccountStatus(row.status),
        debits_must_not_exceed_credits=row.debits_must_not_exceed_credits,
        debits_posted=row.debits_posted, credits_posted=row.credits_posted,
        debits_pending=row.debits_pending, credits_pending=row.credits_pending,
    )


async def insert_account(
    conn: AsyncConnection, region: str, tenant_id: str | None, currency: str,
    label: str | None, kind: str = "customer", purpose: str | None = None,
) -> str:
    account_id = ids.new_id("acc", region)
    await conn.execute(insert(accounts).values(
        region=region, id=account_id, tenant_id=tenant_id, kind=kind, purpose=purpose,
        currency=currency, label=label, status=AccountStatus.ACTIVE.value,
        debits_must_not_exceed_credits=kind == "customer",
    ))
    return account_id


async def internal_account(conn: AsyncConnection, region: str, purpose: str, currency: str) -> str:
    """The region's internal account for a purpose and currency, created on first use.

    Concurrent first uses race on the unique (region, purpose, currency) index; the loser's
    insert does nothing and it reads the winner's row.
    """
    where = (accounts.c.region == region, accounts.c.kind == "internal",
             accounts.c.purpose == purpose, accounts.c.currency == currency)
    found = (await conn.execute(select(accounts.c.id).where(*where))).scalar_one_or_none()
    if found is not None:
        return str(found)
    account_id = ids.new_id("acc", region)
    await conn.execute(
        pg_insert(accounts).values(
            region=region, id=account_id, tenant_id=None, kind="internal", purpose=purpose,
            currency=currency, label=f"{purpose} {currency}",
            status=AccountStatus.ACTIVE.value, debits_must_not_exceed_credits=False)
        .on_conflict_do_nothing(index_elements=["region", "purpose", "currency"],
                                index_where=text("kind = 'internal'")))
    return str((await conn.execute(select(accounts.c.id).where(*where))).scalar_one())


internal_shards = 8
"""Hot internal accounts (FX liquidity, payout clearing, fees, incoming clearing) are split
into this many accounts per purpose and currency, so concurrent operations do not all queue
on one row; any shard serves, and their sum is the purpose's balance."""


def pick_shard() -> int:
    return random.randrange(internal_shards)  # noqa: S311 - load spreading only


async def sharded_account(conn: AsyncConnection, region: str, purpose: str, currency: str,
                          shard: int) -> str:
    """One shard of a hot internal account (``<purpose>.<shard>``), created on first use."""
    assert 0 <= shard < internal_shards, shard
    return await internal_account(conn, region, f"{purpose}.{shard}", currency)


# Built once: statements rebuilt per call spend more CPU in SQLAlchemy than in the database.
_lock = (
    select(accounts)
    .where(accounts.c.region == bindparam("region"),
           accounts.c.id == any_(bindparam("ids", type_=ARRAY(Text))),
           or_(accounts.c.tenant_id == bindparam("tenant_id"),
               and_(accounts.c.kind == "internal",
                    accounts.c.id == any_(bindparam("internal_ids", type_=ARRAY(Text))))))
    .order_by(accounts.c.id)
    .with_for_update()
)


@dataclass(slots=True)
class Locked:
    """Accounts locked for update, with the last entry sequence number of each."""

    accounts: dict[str, Account]
    entry_seq: dict[str, int]


async def lock_accounts(
    conn: AsyncConnection, region: str, tenant_id: str | None, account_ids: Sequence[str],
    internal_ids: Sequence[str] = (),
) -> Locked:
    """Lock, in sorted order, the accounts named that the tenant owns or that are internal.

    Ids the tenant does not own are simply absent, and become ``NotFound`` when a transfer
    names them.
    """
    rows = (await conn.execute(_lock, {
        "region": region, "tenant_id": tenant_id,
        "ids": ledger.lock_order([*account_ids, *internal_ids]),
        "internal_ids": list(internal_ids)})).all()
    return Locked({r.id: account_from_row(r) for r in rows}, {r.id: r.entry_seq for r in rows})


async def post_journal(
    conn: AsyncConnection, region: str, tenant_id: str | None, kind: str,
    planned: Sequence[PlannedTransfer], *, atomic: bool = True,
    internal_ids: Sequence[str] = (), itemized: bool = False, pending: bool = False,
) -> JournalOutcome:
    """Apply transfers in order; an atomic journal raises the first domain error.

    A non-atomic journal skips a failing transfer, records its error and posts the rest.
    ``itemized`` (partner batches) wraps an atomic failure in ``BatchItemRejected`` with the
    index of the item at fault; other journals (a conversion's legs) raise the error itself.
    ``pending`` holds the transfers (phase one of two) instead of posting them; ``settle``
    posts or voids them later.
    """
    apply = ledger.hold if pending else ledger.post
    assert planned
    locked = await lock_accounts(
        conn, region, tenant_id,
        [a for p in planned for a in (p.debit_account_id, p.credit_account_id)], internal_ids)
    working = {k: v.copy() for k, v in locked.accounts.items()}
    posted: list[tuple[ledger.Transfer, str | None]] = []
    outcome = JournalOutcome(ids.new_id("jnl", region), [], [])
    for index, p in enumerate(planned):
        t = ledger.Transfer(ids.new_id("trf", region), p.debit_account_id,
                            p.credit_account_id, p.amount_minor, p.currency)
        try:
            apply(working, t)
        except DomainError as exc:
            if atomic and itemized:
                raise BatchItemRejected(index, exc) from exc
            if atomic:
                raise
            outcome.transfer_ids.append(None)
            outcome.errors.append(exc)
            continue
        posted.append((t, p.reference))
        outcome.transfer_ids.append(t.id)
        outcome.errors.append(None)
    if posted:
        phase = ledger.TransferStatus.PENDING if pending else ledger.TransferStatus.POSTED
        await _write(conn, region, tenant_id, kind, outcome.journal_id, posted, locked, working,
                     phase)
    else:
        # A non-atomic batch whose every item failed still answers with its journal id.
        await conn.execute(insert(journals).values(
            region=region, id=outcome.journal_id, tenant_id=tenant_id, kind=kind))
    return outcome


# The whole journal in one round trip: the journal row, its transfers and entries from arrays
# (unnest), and every touched account's new balances, computed under lock in Python.
entries_and_balances = """e AS (
    INSERT INTO entries (region, account_id, seq, transfer_id, side, phase, amount_minor,
                         currency)
    SELECT :region, u.account, u.seq, u.transfer, u.side, :phase, u.amount, u.currency
    FROM unnest(CAST(:e_account AS TEXT[]), CAST(:e_seq AS BIGINT[]),
                CAST(:e_transfer AS TEXT[]), CAST(:e_side AS TEXT[]),
                CAST(:e_amount AS BIGINT[]), CAST(:e_currency AS TEXT[]))
         AS u(account, seq, transfer, side, amount, currency)),
b AS (
    UPDATE accounts AS a SET
        debits_posted = v.dp, credits_posted = v.cp, debits_pending = v.dq,
        credits_pending = v.cq, entry_seq = v.seq, updated_at = now()
    FROM unnest(CAST(:a_id AS TEXT[]), CAST(:a_dp AS BIGINT[]), CAST(:a_cp AS BIGINT[]),
                CAST(:a_dq AS BIGINT[]), CAST(:a_cq AS BIGINT[]), CAST(:a_seq AS BIGINT[]))
         AS v(id, dp, cp, dq, cq, seq)
    WHERE a.region = :region AND a.id = v.id
    RETURNING 1)"""
"""The entries of a journal (or of settling one) and the new balances of its accounts, as
two common table expressions; ``phase`` is the entries' phase."""

_write_journal = text("""
WITH j AS (
    INSERT INTO journals (region, id, tenant_id, kind) VALUES (:region, :jid, :tid, :kind)),
t AS (
    INSERT INTO transfers (region, id, journal_id, tenant_id, debit_account_id,
                           credit_account_id, amount_minor, currency, status, reference)
    SELECT :region, u.id, :jid, :tid, u.debit, u.credit, u.amount, u.currency, :phase, u.ref
    FROM unnest(CAST(:t_id AS TEXT[]), CAST(:t_debit AS TEXT[]), CAST(:t_credit AS TEXT[]),
                CAST(:t_amount AS BIGINT[]), CAST(:t_currency AS TEXT[]),
                CAST(:t_ref AS TEXT[]))
         AS u(id, debit, credit, amount, currency, ref)),
""" + entries_and_balances + """
SELECT count(*) FROM b
""")


async def _write(
    conn: AsyncConnection, region: str, tenant_id: str | None, kind: str, journal_id: str,
    posted: list[tuple[ledger.Transfer, str | None]], locked: Locked,
    working: dict[str, Account], phase: ledger.TransferStatus,
) -> None:
    journal_entries = ledger.entries(t for t, _ in posted)
    entry_seq, changed, balances = balance_changes(journal_entries, locked, working)
    updated = (await conn.execute(_write_journal, {
        "region": region, "jid": journal_id, "tid": tenant_id, "kind": kind,
        "phase": phase.value,
        **transfer_params([t for t, _ in posted], [ref for _, ref in posted]),
        **entry_params(journal_entries, entry_seq), **balances,
    })).scalar_one()
    assert updated == len(changed), (updated, len(changed))


def transfer_params(posted: Sequence[ledger.Transfer], references: Sequence[str | None]
                    ) -> dict[str, list[Any]]:
    """Transfers as the array parameters of ``INSERT INTO transfers ... FROM unnest``."""
    return {"t_id": [t.id for t in posted],
            "t_debit": [t.debit_account_id for t in posted],
            "t_credit": [t.credit_account_id for t in posted],
            "t_amount": [t.amount_minor for t in posted],
            "t_currency": [t.currency for t in posted],
            "t_ref": list(references)}


def entry_params(journal_entries: Sequence[ledger.Entry], entry_seq: list[int]
                 ) -> dict[str, list[Any]]:
    """Entries as the array parameters of ``entries_and_balances``."""
    return {"e_account": [e.account_id for e in journal_entries], "e_seq": entry_seq,
            "e_transfer": [e.transfer_id for e in journal_entries],
            "e_side": [e.side.value for e in journal_entries],
            "e_amount": [e.amount_minor for e in journal_entries],
            "e_currency": [e.currency for e in journal_entries]}


def balance_changes(
    journal_entries: list[ledger.Entry], locked: Locked, working: dict[str, Account],
) -> tuple[list[int], list[Account], dict[str, list[Any]]]:
    """Each entry's sequence number, the accounts that changed, and their new balances as
    the statements' array parameters."""
    seq = dict(locked.entry_seq)
    entry_seq = []
    for e in journal_entries:
        seq[e.account_id] += 1
        entry_seq.append(seq[e.account_id])
    changed = [a for a in working.values() if a != locked.accounts[a.id]]
    return entry_seq, changed, {
        "a_id": [a.id for a in changed],
        "a_dp": [a.debits_posted for a in changed],
        "a_cp": [a.credits_posted for a in changed],
        "a_dq": [a.debits_pending for a in changed],
        "a_cq": [a.credits_pending for a in changed],
        "a_seq": [seq[a.id] for a in changed],
    }
