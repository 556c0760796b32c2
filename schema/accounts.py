"""Accounts: the ``accounts`` and ``account`` queries, balances, entries, ``createAccount``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.currency import currency as lookup_currency
from payments.errors import InvalidInput
from payments.errors import NotFound as NotFoundError
from payments.ledger import Account as LedgerAccount
from payments.ledger import AccountStatus as LedgerAccountStatus
from payments.text import check_text
from regions import commands, ledger_queries
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.money import Money, money
from schema.pagination import Connection, check_first, connection, decode_cursor, page_args
from schema.permissions import principal

entry_seq_max = 2**63 - 1
"""Entry numbers are BIGINT: a cursor past that is not one this list gave."""

AccountStatus = strawberry.enum(LedgerAccountStatus, name="AccountStatus")


@strawberry.enum
class EntrySide(Enum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@strawberry.type(description="Balances in the account's currency.")
class Balance:
    posted: Money = strawberry.field(description="Credits posted minus debits posted.")
    pending: Money = strawberry.field(description="Pending credits minus pending debits.")
    available: Money = strawberry.field(
        description="Posted credits minus posted and pending debits: what may be spent.")


@strawberry.enum
class EntryPhase(Enum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


@strawberry.type(description="One line of an account's statement.")
class Entry:
    transfer_id: strawberry.ID
    side: EntrySide
    phase: EntryPhase = strawberry.field(description=(
        "PENDING: a hold (two-phase transfer) moved pending balances; POSTED: posted balances "
        "moved (a transfer, or a hold that completed); VOIDED: a hold was released."))
    amount: Money
    created_at: datetime


@strawberry.type(description="Account details that receive money into an account: an IBAN "
                             "where IBANs exist, else local details (scheme says which).")
class VirtualIban:
    id: strawberry.ID
    account_id: strawberry.ID
    country: str
    scheme: str = strawberry.field(description="IBAN, ABA (US), SG_LOCAL, HK_LOCAL or CNAPS.")
    iban: str | None
    bic: str | None
    bank_code: str | None = strawberry.field(
        description="Sort code (GB), ABA routing number (US), bank code (SG, HK), CNAPS code "
                    "(CN), national bank code elsewhere.")
    branch_code: str | None
    account_number: str
    created_at: datetime


def virtual_iban_from_row(row: Row[Any]) -> VirtualIban:
    return VirtualIban(
        id=strawberry.ID(row.id), account_id=strawberry.ID(row.account_id), country=row.country,
        scheme=row.scheme, iban=row.iban, bic=row.bic, bank_code=row.bank_code,
        branch_code=row.branch_code, account_number=row.account_number,
        created_at=utc(row.created_at))


@strawberry.type(description="A multi-currency wallet holds one account per currency.")
class Account:
    id: strawberry.ID
    currency: str
    label: str | None
    status: AccountStatus  # type: ignore[valid-type]
    balance: Balance
    created_at: datetime

    @strawberry.field(description="The account's statement, newest first.")  # type: ignore[untyped-decorator]
    async def entries(
        self, info: Info[Any, Any], first: int | None = None, after: str | None = None
    ) -> Connection[Entry]:
        who = principal(info)
        try:
            limit = check_first(first)
            after_key = decode_cursor(after, "ent")
            after_seq = None
            if after_key is not None:
                # Digits only (int() would also read "1_0" or " 1"), and within BIGINT: no
                # entry has another number, so such a cursor was not one this list gave.
                if not after_key.isascii() or not after_key.isdigit():
                    raise ValueError(after_key)
                after_seq = int(after_key)
                if after_seq > entry_seq_max:
                    raise ValueError(after_key)
        except (InvalidInput, ValueError) as exc:
            raise errors.PublicError("after or first is invalid", "BAD_USER_INPUT") from exc

        async def body(conn: AsyncConnection) -> ledger_queries.Page[Row[Any]]:
            return await ledger_queries.entry_page(conn, who.region, str(self.id), limit,
                                                   after_seq)

        page = await info.context.router.read(who.region, body)
        nodes = [Entry(transfer_id=strawberry.ID(r.transfer_id), side=EntrySide(r.side),
                       phase=EntryPhase(r.phase),
                       amount=money(r.amount_minor, r.currency), created_at=utc(r.created_at))
                 for r in page.items]
        return connection(nodes, [str(r.seq) for r in page.items], "ent", page.has_next)

    @strawberry.field(description="Account details that receive money into this account "  # type: ignore[untyped-decorator]
                                  "(at most 10).")
    async def virtual_ibans(self, info: Info[Any, Any]) -> list[VirtualIban]:
        return [virtual_iban_from_row(r) for r in await info.context.virtual_ibans_of(str(self.id))]


def account_from_row(row: Row[Any]) -> Account:
    ledger = LedgerAccount(
        id=row.id, currency=row.currency, debits_posted=row.debits_posted,
        credits_posted=row.credits_posted, debits_pending=row.debits_pending,
        credits_pending=row.credits_pending)
    return Account(
        id=strawberry.ID(row.id), currency=row.currency, label=row.label,
        status=LedgerAccountStatus(row.status), created_at=utc(row.created_at),
        balance=Balance(posted=money(ledger.posted, row.currency),
                        pending=money(ledger.pending, row.currency),
                        available=money(ledger.available, row.currency)))


AccountResult = Annotated[Account | errors.NotFound, strawberry.union("AccountResult")]


def not_found(what: str, ident: str) -> errors.NotFound:
    return errors.NotFound(code="NOT_FOUND", message=NotFoundError(what, ident).message)


def own_id(who_region: str, text: str, kind: str, field: str) -> str | None:
    """The id if it is well formed and in the caller's region; otherwise it cannot be theirs."""
    try:
        parsed = ids.parse_id(text, kind, field)
    except InvalidInput:
        return None
    return text if parsed.region == who_region else None


async def resolve_account(info: Info[Any, Any], id: strawberry.ID) -> AccountResult:
    who = principal(info)
    account_id = own_id(who.region, str(id), "acc", "id")
    row = await info.context.account_row(account_id) if account_id else None
    return account_from_row(row) if row is not None else not_found("account", str(id))


async def resolve_accounts(
    info: Info[Any, Any], first: int | None = None, after: str | None = None,
    currency: str | None = None,
) -> Connection[Account]:
    who = principal(info)
    limit, after_id = page_args(first, after, "acc")
    try:
        code = lookup_currency(currency).code if currency is not None else None
    except InvalidInput as exc:
        raise errors.bad_input(exc) from exc

    async def body(conn: AsyncConnection) -> ledger_queries.Page[Row[Any]]:
        return await ledger_queries.account_page(conn, who.region, who.tenant.id, limit,
                                                 after_id, code)

    page = await info.context.router.read(who.region, body)
    return connection([account_from_row(r) for r in page.items], [r.id for r in page.items],
                      "acc", page.has_next)


@strawberry.input
class CreateAccountInput:
    currency: str
    label: str | None = None
    idempotency_key: str


CreateAccountResult = Annotated[
    Account | errors.ValidationError | errors.IdempotencyConflict,
    strawberry.union("CreateAccountResult"),
]


def parse_create_account(data: CreateAccountInput) -> commands.CreateAccount:
    key = check_key(data.idempotency_key)
    code = lookup_currency(data.currency).code
    if data.label is not None:
        check_text(data.label, "label", commands.label_length_max)
    return commands.CreateAccount(currency=code, label=data.label, idempotency_key=key)


@errors.typed_errors
async def create_account(info: Info[Any, Any], input: CreateAccountInput) -> CreateAccountResult:
    who = principal(info)
    cmd = parse_create_account(input)
    response = await info.context.router.run(
        who.region, lambda conn: commands.create_account_txn(conn, who, cmd))
    row = await info.context.account_row(response["id"])
    assert row is not None, response
    return account_from_row(row)


account_field = strawberry.field(resolver=resolve_account, permission_classes=[only("account")])
accounts_field = strawberry.field(resolver=resolve_accounts, permission_classes=[only("accounts")])
create_account_field = strawberry.mutation(resolver=create_account,
                                           permission_classes=[only("createAccount")])
