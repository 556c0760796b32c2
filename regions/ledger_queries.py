"""Read side of the ledger: tenant-scoped lookups and keyset pages (``first`` + one to peek)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ARRAY, Row, Select, Table, Text, any_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.tables import accounts, entries, transfers

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool


def _by_ids(table: Table) -> Select[Any]:
    """Built once; ids bind as one array, so any number of them share one compiled statement."""
    return select(table).where(table.c.region == bindparam("region"),
                               table.c.tenant_id == bindparam("tenant_id"),
                               table.c.id == any_(bindparam("ids", type_=ARRAY(Text))))


_accounts_by_id = _by_ids(accounts)
_transfers_by_id = _by_ids(transfers)


async def _page(conn: AsyncConnection, query: Select[Any], first: int) -> Page[Row[Any]]:
    rows = (await conn.execute(query.limit(first + 1))).all()
    return Page(list(rows[:first]), len(rows) > first)


async def account_rows(
    conn: AsyncConnection, region: str, tenant_id: str, account_ids: Sequence[str]
) -> list[Row[Any]]:
    rows = await conn.execute(_accounts_by_id, {"region": region, "tenant_id": tenant_id,
                                                "ids": list(account_ids)})
    return list(rows)


async def account_page(
    conn: AsyncConnection, region: str, tenant_id: str, first: int,
    after: str | None, currency: str | None,
) -> Page[Row[Any]]:
    q = select(accounts).where(accounts.c.region == region, accounts.c.tenant_id == tenant_id)
    if currency is not None:
        q = q.where(accounts.c.currency == currency)
    if after is not None:
        q = q.where(accounts.c.id > after)
    return await _page(conn, q.order_by(accounts.c.id), first)


async def entry_page(
    conn: AsyncConnection, region: str, account_id: str, first: int, after_seq: int | None
) -> Page[Row[Any]]:
    """An account's statement, newest first. The caller has checked the account is the tenant's."""
    q = select(entries).where(entries.c.region == region, entries.c.account_id == account_id)
    if after_seq is not None:
        q = q.where(entries.c.seq < after_seq)
    return await _page(conn, q.order_by(entries.c.seq.desc()), first)


async def transfer_rows(
    conn: AsyncConnection, region: str, tenant_id: str, transfer_ids: Sequence[str]
) -> list[Row[Any]]:
    rows = await conn.execute(_transfers_by_id, {"region": region, "tenant_id": tenant_id,
                                                 "ids": list(transfer_ids)})
    return list(rows)


async def transfer_page(
    conn: AsyncConnection, region: str, tenant_id: str, first: int, after: str | None,
    account_id: str | None,
) -> Page[Row[Any]]:
    """The tenant's transfers, newest first, optionally those touching one account."""
    q = select(transfers).where(transfers.c.region == region, transfers.c.tenant_id == tenant_id)
    if account_id is not None:
        q = q.where(or_(transfers.c.debit_account_id == account_id,
                        transfers.c.credit_account_id == account_id))
    if after is not None:
        q = q.where(transfers.c.id < after)
    return await _page(conn, q.order_by(transfers.c.id.desc()), first)
