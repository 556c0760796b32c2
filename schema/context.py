"""Per-request context: the caller, the router, and DataLoaders created for this request only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext

from payments.principal import Principal
from regions import ledger_queries, virtual_accounts
from regions.coalescer import TransferCoalescer
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.sealing import Sealer

RowLoader = DataLoader[str, Row[Any] | None]
Fetch = Callable[[AsyncConnection, str, str, Sequence[str]], Awaitable[list[Row[Any]]]]


class Context(BaseContext, kw_only=True):
    router: Router
    principal: Principal | None
    sealer: Sealer | None = None
    policies: PolicyGate | None = None
    directory_key: bytes = b""
    pepper: bytes = b""
    """The API key pepper, for issuing keys."""
    virtual_ibans: DataLoader[str, list[Row[Any]]] | None = None
    accounts: RowLoader | None = None
    transfers: RowLoader | None = None
    coalescer: TransferCoalescer | None = None
    """Group commit of ``createTransfer`` (None: one transaction per request)."""

    def __post_init__(self) -> None:
        self.accounts = self._loader(ledger_queries.account_rows)
        self.transfers = self._loader(ledger_queries.transfer_rows)
        self.virtual_ibans = DataLoader(self._virtual_ibans)

    async def _virtual_ibans(self, account_ids: Sequence[str]) -> list[list[Row[Any]]]:
        who = self._who()

        async def body(conn: AsyncConnection) -> list[Row[Any]]:
            return await virtual_accounts.of_accounts(conn, who.region, who.tenant.id,
                                                      account_ids)

        found: dict[str, list[Row[Any]]] = {a: [] for a in account_ids}
        for row in await self.router.read(who.region, body):
            found[row.account_id].append(row)
        return [found[a] for a in account_ids]

    async def virtual_ibans_of(self, account_id: str) -> list[Row[Any]]:
        assert self.virtual_ibans is not None
        return await self.virtual_ibans.load(account_id)

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

    def keys(self) -> Sealer:
        assert self.sealer is not None, "the app wires a sealer into every request's context"
        return self.sealer

    def gate(self) -> PolicyGate:
        assert self.policies is not None, "the app wires the policy gate into every context"
        return self.policies

    def _who(self) -> Principal:
        assert self.principal is not None
        return self.principal
