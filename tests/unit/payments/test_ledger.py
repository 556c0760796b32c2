"""The double-entry ledger: checks, single- and two-phase transfers, journals and lock order."""

from __future__ import annotations

from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    Accounts,
    AccountStatus,
    Entry,
    Side,
    Transfer,
    TransferStatus,
    assert_balanced,
    check,
    entries,
    hold,
    lock_order,
    post,
    settle_pending,
)

_transfer_numbers = count()


def transfer(debit: str, credit: str, amount_minor: int, currency: str = "EUR") -> Transfer:
    return Transfer(f"trf_{next(_transfer_numbers)}", debit, credit, amount_minor, currency)


def book() -> dict[str, Account]:
    """A funding account that may go negative, two customers, a frozen, a closed and a USD one."""
    accounts = [
        Account("funding", "EUR", debits_must_not_exceed_credits=False),
        Account("alice", "EUR", credits_posted=10_000),
        Account("bob", "EUR"),
        Account("frozen", "EUR", AccountStatus.FROZEN, credits_posted=5_000),
        Account("closed", "EUR", AccountStatus.CLOSED),
        Account("dollars", "USD", credits_posted=10_000),
    ]
    return {a.id: a for a in accounts}


def snapshot(accounts: Accounts) -> dict[str, Account]:
    return {k: a.copy() for k, a in accounts.items()}


# Account arithmetic.


def test_account_balances() -> None:
    a = Account("a", "EUR", debits_posted=300, credits_posted=1_000, debits_pending=200,
                credits_pending=50)
    assert a.posted == 700
    assert a.pending == -150
    assert a.available == 500
    a.assert_invariants()


def test_account_copy_is_equal_and_independent() -> None:
    a = Account("a", "EUR", AccountStatus.FROZEN, False, 1, 2, 3, 4)
    b = a.copy()
    assert b == a
    assert b is not a
    b.debits_posted += 1
    assert a.debits_posted == 1


@pytest.mark.parametrize(
    "account",
    [
        Account("a", "EUR", debits_posted=-1, credits_posted=0),
        Account("a", "EUR", credits_pending=-1),
        Account("a", "EUR", debits_posted=1),  # customer overdrawn
        Account("a", "EUR", credits_posted=100, debits_posted=60, debits_pending=41),
        Account("a", "EUR", debits_must_not_exceed_credits=False, debits_pending=-5),
    ],
)
def test_assert_invariants_catches_broken_accounts(account: Account) -> None:
    with pytest.raises(AssertionError):
        account.assert_invariants()


def test_overdraft_allowed_only_where_flag_is_off() -> None:
    Account("a", "EUR", debits_must_not_exceed_credits=False, debits_posted=1).assert_invariants()
    Account("a", "EUR", credits_posted=100, debits_posted=60, debits_pending=40).assert_invariants()


# check(): each domain error in its situation, and nothing touched.


@pytest.mark.parametrize(
    ("t", "error", "account_id"),
    [
        (transfer("alice", "alice", 1), SameAccount, None),
        (transfer("nobody", "bob", 1), NotFound, "nobody"),
        (transfer("alice", "nobody", 1), NotFound, "nobody"),
        (transfer("alice", "bob", 1, "USD"), CurrencyMismatch, "alice"),
        (transfer("alice", "dollars", 1), CurrencyMismatch, "dollars"),
        (transfer("frozen", "bob", 1), AccountNotActive, "frozen"),
        (transfer("alice", "frozen", 1), AccountNotActive, "frozen"),
        (transfer("alice", "closed", 1), AccountNotActive, "closed"),
        (transfer("alice", "bob", 10_001), InsufficientFunds, "alice"),
        (transfer("bob", "alice", 1), InsufficientFunds, "bob"),
    ],
)
@pytest.mark.parametrize("operation", [check, post, hold])
def test_domain_errors_leave_accounts_untouched(
    t: Transfer, error: type[DomainError], account_id: str | None, operation: object
) -> None:
    accounts = book()
    before = snapshot(accounts)
    with pytest.raises(error) as raised:
        operation(accounts, t)  # type: ignore[operator]
    assert type(raised.value) is error
    if account_id is not None:
        named = getattr(raised.value, "account_id", getattr(raised.value, "ident", None))
        assert named == account_id
    assert accounts == before


def test_same_account_names_the_field() -> None:
    with pytest.raises(SameAccount) as raised:
        check(book(), transfer("bob", "bob", 1))
    assert raised.value.field == "toAccountId"


def test_check_returns_debit_then_credit() -> None:
    accounts = book()
    debit, credit = check(accounts, transfer("alice", "bob", 10_000))
    assert debit is accounts["alice"]
    assert credit is accounts["bob"]


def test_internal_account_may_go_negative() -> None:
    accounts = book()
    post(accounts, transfer("funding", "bob", 10**12))
    assert accounts["funding"].posted == -(10**12)
    assert accounts["bob"].posted == 10**12


def test_inactive_account_refuses_even_the_internal_account() -> None:
    accounts = book()
    before = snapshot(accounts)
    with pytest.raises(AccountNotActive):
        post(accounts, transfer("funding", "closed", 1))
    assert accounts == before


@pytest.mark.parametrize("amount_minor", [0, -1])
def test_non_positive_amount_is_a_programmer_error(amount_minor: int) -> None:
    with pytest.raises(AssertionError):
        check(book(), transfer("alice", "bob", amount_minor))


# post and hold.


def test_post_moves_exactly_the_amount() -> None:
    accounts = book()
    post(accounts, transfer("alice", "bob", 2_500))
    assert (accounts["alice"].debits_posted, accounts["alice"].credits_posted) == (2_500, 10_000)
    assert (accounts["bob"].debits_posted, accounts["bob"].credits_posted) == (0, 2_500)
    assert accounts["alice"].available == 7_500
    assert accounts["bob"].available == 2_500


def test_post_may_spend_available_exactly_and_no_more() -> None:
    accounts = book()
    post(accounts, transfer("alice", "bob", 10_000))
    assert accounts["alice"].available == 0
    with pytest.raises(InsufficientFunds):
        post(accounts, transfer("alice", "bob", 1))


def test_hold_reserves_funds_against_later_spending() -> None:
    accounts = book()
    hold(accounts, transfer("alice", "bob", 6_000))
    alice, bob = accounts["alice"], accounts["bob"]
    assert (alice.debits_pending, alice.posted, alice.available) == (6_000, 10_000, 4_000)
    assert (bob.credits_pending, bob.posted, bob.available) == (6_000, 0, 0)
    with pytest.raises(InsufficientFunds):
        post(accounts, transfer("alice", "bob", 4_001))
    with pytest.raises(InsufficientFunds):
        hold(accounts, transfer("alice", "bob", 4_001))
    post(accounts, transfer("alice", "bob", 4_000))
    assert alice.available == 0


def test_incoming_pending_funds_cannot_be_spent() -> None:
    accounts = book()
    hold(accounts, transfer("alice", "bob", 5_000))
    with pytest.raises(InsufficientFunds):
        post(accounts, transfer("bob", "alice", 1))


# settle_pending: post or void exactly once.


@pytest.mark.parametrize("outcome", [TransferStatus.POSTED, TransferStatus.VOIDED])
def test_settle_happens_exactly_once(outcome: TransferStatus) -> None:
    accounts = book()
    t = transfer("alice", "bob", 3_000)
    hold(accounts, t)
    status = settle_pending(accounts, t, TransferStatus.PENDING, outcome)
    assert status is outcome
    after_first = snapshot(accounts)
    for again in (TransferStatus.POSTED, TransferStatus.VOIDED):
        with pytest.raises(TransferNotPending) as raised:
            settle_pending(accounts, t, status, again)
        assert raised.value.transfer_id == t.id
        assert accounts == after_first


def test_settle_post_moves_hold_to_posted() -> None:
    accounts = book()
    t = transfer("alice", "bob", 3_000)
    hold(accounts, t)
    settle_pending(accounts, t, TransferStatus.PENDING, TransferStatus.POSTED)
    alice, bob = accounts["alice"], accounts["bob"]
    assert (alice.debits_pending, alice.debits_posted, alice.available) == (0, 3_000, 7_000)
    assert (bob.credits_pending, bob.credits_posted, bob.available) == (0, 3_000, 3_000)


def test_void_restores_available() -> None:
    accounts = book()
    before = snapshot(accounts)
    t = transfer("alice", "bob", 3_000)
    hold(accounts, t)
    assert accounts["alice"].available == 7_000
    settle_pending(accounts, t, TransferStatus.PENDING, TransferStatus.VOIDED)
    assert accounts["alice"].available == 10_000
    assert accounts == before


def test_posting_a_hold_needs_no_funds_check() -> None:
    # The reservation is what makes phase two safe; other spending cannot eat into it.
    accounts = book()
    t = transfer("alice", "bob", 10_000)
    hold(accounts, t)
    with pytest.raises(InsufficientFunds):
        post(accounts, transfer("alice", "bob", 1))
    settle_pending(accounts, t, TransferStatus.PENDING, TransferStatus.POSTED)
    assert accounts["alice"].available == 0
    accounts["alice"].assert_invariants()


@pytest.mark.parametrize("status", [TransferStatus.POSTED, TransferStatus.VOIDED])
def test_settle_refuses_a_transfer_that_is_not_pending(status: TransferStatus) -> None:
    accounts = book()
    before = snapshot(accounts)
    t = transfer("alice", "bob", 1)
    with pytest.raises(TransferNotPending):
        settle_pending(accounts, t, status, TransferStatus.POSTED)
    assert accounts == before


def test_settle_outcome_must_be_final() -> None:
    accounts = book()
    t = transfer("alice", "bob", 1)
    hold(accounts, t)
    with pytest.raises(AssertionError):
        settle_pending(accounts, t, TransferStatus.PENDING, TransferStatus.PENDING)


def test_settle_without_a_hold_is_a_programmer_error() -> None:
    with pytest.raises(AssertionError):
        settle_pending(book(), transfer("alice", "bob", 1), TransferStatus.PENDING,
                       TransferStatus.POSTED)


# entries() and assert_balanced().


def test_entries_two_per_transfer() -> None:
    ts = [transfer("alice", "bob", 100), transfer("funding", "alice", 7, "EUR"),
          transfer("dollars", "funding_usd", 50, "USD")]
    journal = entries(ts)
    assert len(journal) == 2 * len(ts)
    for t, (debit, credit) in zip(ts, zip(journal[::2], journal[1::2], strict=True), strict=True):
        assert debit == Entry(t.id, t.debit_account_id, Side.DEBIT, t.amount_minor, t.currency)
        assert credit == Entry(t.id, t.credit_account_id, Side.CREDIT, t.amount_minor, t.currency)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["a", "b", "c"]),
                          st.integers(1, 10**15), st.sampled_from(["EUR", "USD", "JPY"])),
                max_size=30))
def test_entries_balance_per_currency(rows: list[tuple[str, str, int, str]]) -> None:
    journal = entries(transfer(d, c, amount, cur) for d, c, amount, cur in rows)
    assert len(journal) == 2 * len(rows)
    for cur in ("EUR", "USD", "JPY"):
        of_currency = [e for e in journal if e.currency == cur]
        debits = sum(e.amount_minor for e in of_currency if e.side is Side.DEBIT)
        credits = sum(e.amount_minor for e in of_currency if e.side is Side.CREDIT)
        assert debits == credits


def test_entries_of_nothing_is_empty() -> None:
    assert entries([]) == []


@pytest.mark.parametrize(
    "journal",
    [
        [Entry("t1", "a", Side.DEBIT, 100, "EUR")],
        [Entry("t1", "a", Side.CREDIT, 100, "EUR")],
        [Entry("t1", "a", Side.DEBIT, 100, "EUR"), Entry("t1", "b", Side.CREDIT, 99, "EUR")],
        # Balanced in total but not per currency.
        [Entry("t1", "a", Side.DEBIT, 100, "EUR"), Entry("t1", "b", Side.CREDIT, 100, "USD")],
        [Entry("t1", "a", Side.DEBIT, 100, "EUR"), Entry("t1", "b", Side.DEBIT, 100, "EUR")],
        # Non-positive amounts are refused even when they would net to zero.
        [Entry("t1", "a", Side.DEBIT, 0, "EUR"), Entry("t1", "b", Side.CREDIT, 0, "EUR")],
        [Entry("t1", "a", Side.DEBIT, -5, "EUR"), Entry("t1", "b", Side.CREDIT, -5, "EUR")],
    ],
)
def test_assert_balanced_refuses_unbalanced_journal(journal: list[Entry]) -> None:
    with pytest.raises(AssertionError):
        assert_balanced(journal)


def test_assert_balanced_accepts_a_hand_built_balanced_journal() -> None:
    assert_balanced([
        Entry("t1", "a", Side.DEBIT, 100, "EUR"),
        Entry("t1", "b", Side.CREDIT, 60, "EUR"),
        Entry("t1", "c", Side.CREDIT, 40, "EUR"),
        Entry("t2", "x", Side.CREDIT, 5, "JPY"),
        Entry("t2", "y", Side.DEBIT, 5, "JPY"),
    ])
    assert_balanced([])


# lock_order().


def test_lock_order_example() -> None:
    assert lock_order(["c", "a", "b", "a", "c"]) == ["a", "b", "c"]
    assert lock_order([]) == []
    assert lock_order(iter(["z", "y"])) == ["y", "z"]


@given(st.lists(st.text(max_size=8), max_size=30))
def test_lock_order_sorted_and_distinct(ids: list[str]) -> None:
    order = lock_order(ids)
    assert order == sorted(order)
    assert len(order) == len(set(order))
    assert set(order) == set(ids)


@given(st.lists(st.text(max_size=8), max_size=30), st.randoms(use_true_random=False))
def test_lock_order_ignores_input_order(ids: list[str], rnd: object) -> None:
    shuffled = list(ids)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert lock_order(shuffled) == lock_order(ids)


def test_settle_pending_treats_string_outcomes_like_the_enum() -> None:
    from payments.ledger import Account, Transfer, TransferStatus, hold, settle_pending

    accounts = {"a": Account("a", "EUR", credits_posted=100), "b": Account("b", "EUR")}
    t = Transfer("t", "a", "b", 40, "EUR")
    hold(accounts, t)
    assert settle_pending(accounts, t, "PENDING", "POSTED") == TransferStatus.POSTED  # type: ignore[arg-type]
    assert accounts["b"].credits_posted == 40
    assert accounts["a"].debits_pending == 0
