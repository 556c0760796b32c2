"""Double-entry ledger arithmetic over accounts with posted and pending totals.

The model is TigerBeetle's: an account keeps ``debits_posted``, ``credits_posted``,
``debits_pending`` and ``credits_pending``. A transfer debits one account and credits another
in one currency. A two-phase transfer first holds the amount as pending, then posts or voids it
exactly once. Functions here check a transfer against the accounts (raising domain errors) and
apply it to working copies; storage loads the accounts, locked, and writes the copies back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum

from payments.errors import (
    AccountNotActive,
    CurrencyMismatch,
    InsufficientFunds,
    NotFound,
    SameAccount,
    TransferNotPending,
)


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"
    CLOSED = "CLOSED"


class TransferStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


@dataclass(slots=True)
class Account:
    """Balances of one account in minor units of its currency."""

    id: str
    currency: str
    status: AccountStatus = AccountStatus.ACTIVE
    debits_must_not_exceed_credits: bool = True
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def posted(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def pending(self) -> int:
        return self.credits_pending - self.debits_pending

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending

    def copy(self) -> Account:
        return Account(
            self.id, self.currency, self.status, self.debits_must_not_exceed_credits,
            self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending,
        )

    def assert_invariants(self) -> None:
        assert min(self.debits_posted, self.credits_posted,
                   self.debits_pending, self.credits_pending) >= 0, self
        if self.debits_must_not_exceed_credits:
            assert self.debits_posted + self.debits_pending <= self.credits_posted, self


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of ``amount_minor`` from the debit account to the credit account."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount_minor: int
    currency: str


Accounts = MutableMapping[str, Account]


def lock_order(account_ids: Iterable[str]) -> list[str]:
    """The order in which to lock accounts: sorted and distinct, so lockers never deadlock."""
    return sorted(set(account_ids))


def check(accounts: Mapping[str, Account], transfer: Transfer) -> tuple[Account, Account]:
    """The two accounts of a transfer if it may proceed, else the domain error why not."""
    assert transfer.amount_minor > 0, transfer
    if transfer.debit_account_id == transfer.credit_account_id:
        raise SameAccount()
    pair = []
    for account_id in (transfer.debit_account_id, transfer.credit_account_id):
        account = accounts.get(account_id)
        if account is None:
            raise NotFound("account", account_id)
        if account.currency != transfer.currency:
            raise CurrencyMismatch(account.id, account.currency, transfer.currency)
        if account.status != AccountStatus.ACTIVE:
            raise AccountNotActive(account.id, account.status)
        pair.append(account)
    debit, credit = pair
    if debit.debits_must_not_exceed_credits and transfer.amount_minor > debit.available:
        raise InsufficientFunds(debit.id)
    return debit, credit


def post(accounts: Accounts, transfer: Transfer) -> None:
    """Check and post a single-phase transfer onto the working accounts."""
    debit, credit = check(accounts, transfer)
    debit.debits_posted += transfer.amount_minor
    credit.credits_posted += transfer.amount_minor
    debit.assert_invariants()
    credit.assert_invariants()


def hold(accounts: Accounts, transfer: Transfer) -> None:
    """Check a transfer and reserve it as pending (phase one of two)."""
    debit, credit = check(accounts, transfer)
    debit.debits_pending += transfer.amount_minor
    credit.credits_pending += transfer.amount_minor
    debit.assert_invariants()
    credit.assert_invariants()


def settle_pending(
    accounts: Accounts, transfer: Transfer, status: TransferStatus, outcome: TransferStatus
) -> TransferStatus:
    """Post or void a pending transfer exactly once; returns its new status.

    Posting a hold cannot fail for funds: the amount was reserved when it was held.
    """
    outcome, status = TransferStatus(outcome), TransferStatus(status)
    assert outcome in (TransferStatus.POSTED, TransferStatus.VOIDED), outcome
    if status != TransferStatus.PENDING:
        raise TransferNotPending(transfer.id, status)
    debit = accounts[transfer.debit_account_id]
    credit = accounts[transfer.credit_account_id]
    assert debit.debits_pending >= transfer.amount_minor, (debit, transfer)
    assert credit.credits_pending >= transfer.amount_minor, (credit, transfer)
    debit.debits_pending -= transfer.amount_minor
    credit.credits_pending -= transfer.amount_minor
    if outcome == TransferStatus.POSTED:
        debit.debits_posted += transfer.amount_minor
        credit.credits_posted += transfer.amount_minor
    debit.assert_invariants()
    credit.assert_invariants()
    return outcome


class Side(StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


@dataclass(frozen=True, slots=True)
class Entry:
    """One side of a transfer as it appears in an account's statement."""

    transfer_id: str
    account_id: str
    side: Side
    amount_minor: int
    currency: str


def entries(transfers: Iterable[Transfer]) -> list[Entry]:
    """The journal's entries, two per transfer, checked to balance before they are written."""
    out: list[Entry] = []
    for t in transfers:
        out.append(Entry(t.id, t.debit_account_id, Side.DEBIT, t.amount_minor, t.currency))
        out.append(Entry(t.id, t.credit_account_id, Side.CREDIT, t.amount_minor, t.currency))
    assert_balanced(out)
    return out


def assert_balanced(journal: Iterable[Entry]) -> None:
    """For every currency a journal's debits equal its credits."""
    net: dict[str, int] = defaultdict(int)
    for e in journal:
        assert e.amount_minor > 0, e
        net[e.currency] += e.amount_minor if e.side == Side.CREDIT else -e.amount_minor
    assert all(v == 0 for v in net.values()), dict(net)
