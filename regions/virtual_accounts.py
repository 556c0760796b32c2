"""Virtual account details (IBANs, or local details where IBANs do not exist) on accounts.

Issuing spans two databases. The control plane's ``account_directory`` maps a keyed digest of
each routing key (the IBAN, or ``country:bank:account``) to the owning region, so incoming
money is routed by its address alone and no account number sits in the global plane; its
primary key makes addresses unique across the platform. The details themselves live with the
account in its home region. A directory entry is claimed first; if the regional transaction
then fails, the claimed address stays unused (it routes to a region that does not know it, so
money sent there lands in suspense like any unknown address).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Row, Text, any_, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.bank_details import AccountDetails, issue_details
from payments.errors import AccountNotActive, DomainError, NotFound
from payments.ledger import AccountStatus
from payments.principal import Principal
from regions import idempotency
from regions.events import Event
from regions.ledger_queries import account_rows
from regions.ledger_store import lock_accounts
from regions.tables import account_directory, virtual_accounts

per_account_max = 10
issue_attempts_max = 8
digits_drawn = 40

Response = dict[str, Any]


class TooManyVirtualAccounts(DomainError):
    code = "LIMIT_EXCEEDED"


@dataclass(frozen=True, slots=True)
class IssueVirtualAccount:
    account_id: str
    country: str
    idempotency_key: str


def directory_key(pepper: bytes) -> bytes:
    """The key of the directory's digests, derived from the platform secret."""
    return hmac.new(pepper, b"corridor/account-directory/v1", hashlib.sha256).digest()


def routing_digest(key: bytes, routing_key: str) -> bytes:
    return hmac.new(key, routing_key.upper().encode(), hashlib.sha256).digest()


def _request(cmd: IssueVirtualAccount) -> dict[str, Any]:
    return {"accountId": cmd.account_id, "country": cmd.country}


async def check_issuable(conn: AsyncConnection, who: Principal, account_id: str, *,
                         lock: bool = False) -> None:
    """The account is the tenant's, active, and below its limit of virtual accounts.

    ``lock`` (in the issuing transaction) holds the account row, so concurrent issues on one
    account count one after another and cannot pass the limit together.
    """
    if lock:
        locked = await lock_accounts(conn, who.region, who.tenant.id, [account_id])
        status = locked.accounts[account_id].status if account_id in locked.accounts else None
    else:
        rows = await account_rows(conn, who.region, who.tenant.id, [account_id])
        status = AccountStatus(rows[0].status) if rows else None
    if status is None:
        raise NotFound("account", account_id)
    if status != AccountStatus.ACTIVE:
        raise AccountNotActive(account_id, status)
    count = (await conn.execute(select(func.count()).where(
        virtual_accounts.c.region == who.region, virtual_accounts.c.tenant_id == who.tenant.id,
        virtual_accounts.c.account_id == account_id))).scalar_one()
    if count >= per_account_max:
        raise TooManyVirtualAccounts(
            f"account {account_id!r} already has {per_account_max} virtual accounts")


async def claim_address(conn: AsyncConnection, key: bytes, region: str,
                        country: str) -> AccountDetails | None:
    """Draw details in ``country`` and claim their address for ``region``; None on a clash."""
    details = issue_details(country, "".join(secrets.choice("0123456789")
                                             for _ in range(digits_drawn)))
    claimed = (await conn.execute(
        pg_insert(account_directory)
        .values(routing_digest=routing_digest(key, details.routing_key), region=region)
        .on_conflict_do_nothing().returning(account_directory.c.region))).first()
    return details if claimed is not None else None


async def issue_txn(conn: AsyncConnection, who: Principal, cmd: IssueVirtualAccount,
                    details: AccountDetails) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        await check_issuable(conn, who, cmd.account_id, lock=True)
        vac_id = ids.new_id("vac", who.region)
        await conn.execute(insert(virtual_accounts).values(
            region=who.region, id=vac_id, tenant_id=who.tenant.id, account_id=cmd.account_id,
            country=details.country, scheme=details.scheme, iban=details.iban, bic=details.bic,
            bank_code=details.bank_code, branch_code=details.branch_code,
            account_number=details.account_number, routing_key=details.routing_key,
            status="ACTIVE"))
        return {"type": "VirtualIban", "id": vac_id}, [Event(
            "virtual_account.issued", {"virtual_account_id": vac_id,
                                       "account_id": cmd.account_id,
                                       "country": details.country}, vac_id)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "issueVirtualIban",
                                  _request(cmd), effect)


async def replay(conn: AsyncConnection, who: Principal, cmd: IssueVirtualAccount
                 ) -> Response | None:
    return await idempotency.peek(conn, who, cmd.idempotency_key, "issueVirtualIban",
                                  _request(cmd))


async def region_of(conn: AsyncConnection, key: bytes, routing_key: str) -> str | None:
    """The region that owns an address, from the control plane's directory."""
    return (await conn.execute(select(account_directory.c.region).where(
        account_directory.c.routing_digest == routing_digest(key, routing_key)))
    ).scalar_one_or_none()


async def by_routing_key(conn: AsyncConnection, region: str, routing_key: str
                         ) -> Row[Any] | None:
    return (await conn.execute(select(virtual_accounts).where(
        virtual_accounts.c.region == region,
        virtual_accounts.c.routing_key == routing_key.upper()))).first()


_by_accounts = (
    select(virtual_accounts)
    .where(virtual_accounts.c.region == bindparam("region"),
           virtual_accounts.c.tenant_id == bindparam("tenant_id"),
           virtual_accounts.c.account_id == any_(bindparam("ids", type_=ARRAY(Text))))
    .order_by(virtual_accounts.c.id)
)


async def of_accounts(conn: AsyncConnection, region: str, tenant_id: str,
                      account_ids: Sequence[str]) -> list[Row[Any]]:
    return list(await conn.execute(_by_accounts, {"region": region, "tenant_id": tenant_id,
                                                  "ids": list(account_ids)}))


async def rows_by_id(conn: AsyncConnection, region: str, tenant_id: str,
                     vac_ids: Sequence[str]) -> list[Row[Any]]:
    return list(await conn.execute(select(virtual_accounts).where(
        virtual_accounts.c.region == region, virtual_accounts.c.tenant_id == tenant_id,
        virtual_accounts.c.id.in_(list(vac_ids)))))
