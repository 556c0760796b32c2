"""Per-request context: the caller, the router, and DataLoaders created for this request only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext

from payments.principal import Principal
from regions import ledger_queries
from regions.router import Router

RowLoader = DataLoader[str, Row[Any] | None]
Fetch = Callable[[AsyncConnection, str, str, Sequence[str]], Awaitable[list[Row[Any]]]]


class Context(BaseContext, kw_only=True):
    router: Router
    principal: Principal | None
    accounts: RowLoader | None = None
    transfers: RowLoader | None = None

    def __post_init__(self) -> None:
        self.accounts = self._loader(ledger_queries.account_rows)
        self.transfers = self._loader(ledger_queries.transfer_rows)

    def _loader(self, fetch: Fetch) -> RowLoader:
        """Batch lookups by id of the caller's own rows, one query per tick of the event loop."""
        async def load(keys: Sequence[str]) -> list[Row[Any] | None]:
            who = self._who()

            async def body(conn: AsyncConnection) -> list[Row[Any]]:
                return await fetch(conn, who.region, who.tenant.id, keys)

            found = {r.id: r for r in await self.router.read(who.region, body)}
            return [found.get(k) for k in keys]

        return DataLoader(load)

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
