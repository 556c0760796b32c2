"""Per-request context: the caller, the router, and DataLoaders created for this request only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext

from payments.principal import Principal
from regions import ledger_queries
from regions.router import Router


class Context(BaseContext, kw_only=True):
    router: Router
    principal: Principal | None
    accounts: DataLoader[str, Row[Any] | None] | None = None
    transfers: DataLoader[str, Row[Any] | None] | None = None

    def __post_init__(self) -> None:
        self.accounts = DataLoader(self._load_accounts)
        self.transfers = DataLoader(self._load_transfers)

    async def _load_accounts(self, keys: Sequence[str]) -> list[Row[Any] | None]:
        who = self._who()

        async def body(conn: AsyncConnection) -> list[Row[Any]]:
            return await ledger_queries.account_rows(conn, who.region, who.tenant.id, keys)

        found = {r.id: r for r in await self.router.run(who.region, body)}
        return [found.get(k) for k in keys]

    async def _load_transfers(self, keys: Sequence[str]) -> list[Row[Any] | None]:
        who = self._who()

        async def body(conn: AsyncConnection) -> list[Row[Any]]:
            return await ledger_queries.transfer_rows(conn, who.region, who.tenant.id, keys)

        found = {r.id: r for r in await self.router.run(who.region, body)}
        return [found.get(k) for k in keys]

    async def account_row(self, account_id: str) -> Row[Any] | None:
        assert self.accounts is not None
        return await self.accounts.load(account_id)

    async def transfer_row(self, transfer_id: str) -> Row[Any] | None:
        assert self.transfers is not None
        return await self.transfers.load(transfer_id)

    async def transfer_rows(self, transfer_ids: Sequence[str]) -> list[Row[Any] | None]:
        assert self.transfers is not None
        return await self.transfers.load_many(transfer_ids)

    def _who(self) -> Principal:
        assert self.principal is not None
        return self.principal
