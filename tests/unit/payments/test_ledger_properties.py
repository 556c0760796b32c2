"""Random sequences of post, hold and settle keep the ledger's books straight.

The machine keeps its own journal of what succeeded and replays it against the accounts after
every step. A domain error is an allowed outcome, provided it is justified by the accounts as
they stood and leaves them exactly as they were.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import count

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from payments.errors import (
    AccountNotActive,
    CurrencyMismatch,
    DomainError,
    InsufficientFunds,
    NotFound,
    SameAccount,
    TransferNotPending,
)
from payments.ledger import (
    Account,
    AccountStatus,
    Side,
    Transfer,
    TransferStatus,
    check,
    entries,
    hold,
    post,
    settle_pending,
)

check_errors = (InsufficientFunds, CurrencyMismatch, SameAccount, AccountNotActive, NotFound)
ids_by_currency = {"EUR": ["funding_eur", "alice", "bob", "carol"], "USD": ["funding_usd", "dave"]}
account_ids = [i for ids in ids_by_currency.values() for i in ids]
customer_ids = ["alice", "bob", "carol", "dave"]
opening_balance_minor = 3_000
amount_st = st.integers(min_value=1, max_value=5_000)
# Half the transfers stay within one currency's accounts so that some go through; the other half
# pick anything, including the missing account "ghost", so that every domain error comes up.
well_formed_st = st.sampled_from(sorted(ids_by_currency)).flatmap(
    lambda cur: st.tuples(st.sampled_from(ids_by_currency[cur]),
                          st.sampled_from(ids_by_currency[cur]), amount_st, st.just(cur))
)
anything_st = st.tuples(st.sampled_from([*account_ids, "ghost"]),
                        st.sampled_from([*account_ids, "ghost"]), amount_st,
                        st.sampled_from(sorted(ids_by_currency)))
transfer_args_st = st.one_of(well_formed_st, anything_st)
TransferArgs = tuple[str, str, int, str]


def justify(error: DomainError, t: Transfer, accounts: dict[str, Account]) -> None:
    """The error is one check() may raise, and the accounts as they stood call for it."""
    if isinstance(error, SameAccount):
        assert t.debit_account_id == t.credit_account_id
    elif isinstance(error, NotFound):
        assert error.ident in (t.debit_account_id, t.credit_account_id)
        assert error.ident not in accounts
    elif isinstance(error, CurrencyMismatch):
        assert accounts[error.account_id].currency != t.currency
    elif isinstance(error, AccountNotActive):
        assert accounts[error.account_id].status is not AccountStatus.ACTIVE
    else:
        assert isinstance(error, InsufficientFunds)
        debit = accounts[error.account_id]
        assert error.account_id == t.debit_account_id
        assert debit.debits_must_not_exceed_credits
        assert t.amount_minor > debit.available


def may_proceed(t: Transfer, accounts: dict[str, Account]) -> bool:
    pair = [accounts.get(t.debit_account_id), accounts.get(t.credit_account_id)]
    if t.debit_account_id == t.credit_account_id or None in pair:
        return False
    debit, credit = pair
    assert debit is not None
    assert credit is not None
    return (
        debit.currency == credit.currency == t.currency
        and debit.status is credit.status is AccountStatus.ACTIVE
        and not (debit.debits_must_not_exceed_credits and t.amount_minor > debit.available)
    )


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.accounts = {
            a.id: a
            for a in [
                Account("funding_eur", "EUR", debits_must_not_exceed_credits=False),
                Account("funding_usd", "USD", debits_must_not_exceed_credits=False),
                Account("alice", "EUR"),
                Account("bob", "EUR"),
                Account("carol", "EUR"),
                Account("dave", "USD"),
            ]
        }
        self.journal: list[Transfer] = []  # every transfer that reached posted
        self.status: dict[str, TransferStatus] = {}  # two-phase transfers by id
        self.pending: dict[str, Transfer] = {}
        self.numbers = count()

    def new_transfer(self, args: TransferArgs) -> Transfer:
        return Transfer(f"trf_{next(self.numbers)}", *args)

    def snapshot(self) -> dict[str, Account]:
        return {k: a.copy() for k, a in self.accounts.items()}

    def attempt(self, operation: object, t: Transfer) -> bool:
        """Run post or hold; True if it went through, asserting what either outcome implies."""
        before = self.snapshot()
        allowed = may_proceed(t, before)
        name = getattr(operation, "__name__", operation)
        try:
            operation(self.accounts, t)  # type: ignore[operator]
        except check_errors as error:
            refused: DomainError | None = error
        else:
            refused = None
        if refused is not None:
            assert self.accounts == before, "a refused transfer changed the accounts"
            justify(refused, t, before)
            event(f"{name}: {type(refused).__name__}")
            assert not allowed, f"{t} was refused with {refused!r} but should have gone through"
            return False
        assert allowed, f"{t} went through but should have been refused"
        event(f"{name}: ok")
        for account_id, account in self.accounts.items():
            if account_id not in (t.debit_account_id, t.credit_account_id):
                assert account == before[account_id]
        return True

    @initialize()
    def fund_customers(self) -> None:
        """Customers start with money that came, through the ledger, from a funding account."""
        for customer in customer_ids:
            cur = self.accounts[customer].currency
            t = self.new_transfer((f"funding_{cur.lower()}", customer, opening_balance_minor, cur))
            post(self.accounts, t)
            self.journal.append(t)

    @rule(args=transfer_args_st)
    def post_transfer(self, args: TransferArgs) -> None:
        t = self.new_transfer(args)
        debit, credit, amount_minor, _ = args
        before = self.snapshot()
        if self.attempt(post, t):
            self.journal.append(t)
            assert self.accounts[debit].debits_posted == before[debit].debits_posted + amount_minor
            assert (self.accounts[credit].credits_posted
                    == before[credit].credits_posted + amount_minor)

    @rule(target=holds, args=transfer_args_st)
    def hold_transfer(self, args: TransferArgs) -> object:
        t = self.new_transfer(args)
        debit, credit, amount_minor, _ = args
        before = self.snapshot()
        if not self.attempt(hold, t):
            return multiple()
        assert self.accounts[debit].debits_pending == before[debit].debits_pending + amount_minor
        assert (self.accounts[credit].credits_pending
                == before[credit].credits_pending + amount_minor)
        self.status[t.id] = TransferStatus.PENDING
        self.pending[t.id] = t
        return t

    @rule(t=holds)
    def settle_post(self, t: Transfer) -> None:
        self.settle(t, TransferStatus.POSTED)

    @rule(t=holds)
    def settle_void(self, t: Transfer) -> None:
        self.settle(t, TransferStatus.VOIDED)

    def settle(self, t: Transfer, outcome: TransferStatus) -> None:
        before = self.snapshot()
        status = self.status[t.id]
        try:
            new_status: TransferStatus | TransferNotPending = settle_pending(
                self.accounts, t, status, outcome
            )
        except TransferNotPending as error:
            new_status = error
        if isinstance(new_status, TransferNotPending):
            assert status is not TransferStatus.PENDING
            assert new_status.transfer_id == t.id
            assert self.accounts == before
            event("settle: TransferNotPending")
            return
        assert status is TransferStatus.PENDING
        event(f"settle: {outcome}")
        assert new_status is outcome
        self.status[t.id] = new_status
        del self.pending[t.id]
        if outcome is TransferStatus.POSTED:
            self.journal.append(t)
        else:
            # A void gives back exactly what the hold took from available.
            debit = self.accounts[t.debit_account_id]
            assert debit.available == before[t.debit_account_id].available + t.amount_minor

    @rule(account_id=st.sampled_from(account_ids), status=st.sampled_from(list(AccountStatus)))
    def set_status(self, account_id: str, status: AccountStatus) -> None:
        # Holds stay settleable: the amount was reserved when the account was still active.
        self.accounts[account_id].status = status

    @rule(args=transfer_args_st)
    def check_only(self, args: TransferArgs) -> None:
        self.attempt(check, self.new_transfer(args))

    @invariant()
    def money_only_moves(self) -> None:
        posted: dict[str, int] = defaultdict(int)
        pending: dict[str, int] = defaultdict(int)
        for a in self.accounts.values():
            posted[a.currency] += a.posted
            pending[a.currency] += a.pending
        assert all(v == 0 for v in posted.values()), dict(posted)
        assert all(v == 0 for v in pending.values()), dict(pending)

    @invariant()
    def accounts_keep_their_flags(self) -> None:
        for a in self.accounts.values():
            a.assert_invariants()
            assert min(a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending) >= 0
            if a.debits_must_not_exceed_credits:
                assert a.available >= 0, a

    @invariant()
    def accounts_match_replayed_journal(self) -> None:
        totals: dict[tuple[str, Side], int] = defaultdict(int)
        for e in entries(self.journal):
            assert e.currency == self.accounts[e.account_id].currency
            totals[e.account_id, e.side] += e.amount_minor
        held: dict[tuple[str, Side], int] = defaultdict(int)
        for t in self.pending.values():
            held[t.debit_account_id, Side.DEBIT] += t.amount_minor
            held[t.credit_account_id, Side.CREDIT] += t.amount_minor
        for account_id, a in self.accounts.items():
            assert a.debits_posted == totals[account_id, Side.DEBIT]
            assert a.credits_posted == totals[account_id, Side.CREDIT]
            assert a.debits_pending == held[account_id, Side.DEBIT]
            assert a.credits_pending == held[account_id, Side.CREDIT]


LedgerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestLedgerMachine = LedgerMachine.TestCase
