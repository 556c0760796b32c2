"""Virtual IBANs (and local account details): ``issueVirtualIban`` and ``Account.virtualIbans``."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments import ids
from payments.bank_details import AccountDetails
from payments.errors import InvalidInput
from policies.model import Params
from regions import virtual_accounts
from regions.idempotency import check_key
from schema import errors
from schema.access import only
from schema.accounts import VirtualIban, virtual_iban_from_row
from schema.permissions import principal


@strawberry.input
class IssueVirtualIbanInput:
    account_id: strawberry.ID
    country: str = strawberry.field(description="ISO 3166 alpha-2, among those your "
                                                "jurisdiction may issue in.")
    idempotency_key: str


IssueVirtualIbanResult = Annotated[
    VirtualIban | errors.ValidationError | errors.NotFound | errors.AccountNotActive
    | errors.LimitExceeded | errors.IdempotencyConflict,
    strawberry.union("IssueVirtualIbanResult"),
]


def parse_issue(data: IssueVirtualIbanInput, jurisdiction: str, params: Params
                ) -> virtual_accounts.IssueVirtualAccount:
    key = check_key(data.idempotency_key)
    ids.parse_id(str(data.account_id), "acc", "accountId")
    allowed = params["iban_countries"]
    assert isinstance(allowed, frozenset)
    if data.country not in allowed:
        raise InvalidInput(f"{jurisdiction} tenants may be issued account details in "
                           f"{', '.join(sorted(allowed))}", "country")
    return virtual_accounts.IssueVirtualAccount(str(data.account_id), data.country, key)


@errors.typed_errors
async def issue_virtual_iban(info: Info[Any, Any],
                             input: IssueVirtualIbanInput) -> IssueVirtualIbanResult:
    who = principal(info)
    cmd = parse_issue(input, who.tenant.jurisdiction,
                      info.context.gate().params(who.tenant.jurisdiction))
    router = info.context.router

    async def replay(conn: AsyncConnection) -> dict[str, Any] | None:
        return await virtual_accounts.replay(conn, who, cmd)

    response = await router.read(who.region, replay)
    if response is None:
        async def check(conn: AsyncConnection) -> None:
            await virtual_accounts.check_issuable(conn, who, cmd.account_id)

        await router.read(who.region, check)
        details = await _claim(info, who.region, cmd.country)

        async def issue(conn: AsyncConnection) -> dict[str, Any]:
            return await virtual_accounts.issue_txn(conn, who, cmd, details)

        response = await router.run(who.region, issue)

    async def row(conn: AsyncConnection) -> list[Row[Any]]:
        return await virtual_accounts.rows_by_id(conn, who.region, who.tenant.id,
                                                 [response["id"]])

    [found] = await router.read(who.region, row)
    return virtual_iban_from_row(found)


async def _claim(info: Info[Any, Any], region: str, country: str) -> AccountDetails:
    """Claim a fresh address in the directory; a clash (one in 10^10 or so) draws again."""
    key = info.context.directory_key

    async def claim(conn: AsyncConnection) -> AccountDetails | None:
        return await virtual_accounts.claim_address(conn, key, region, country)

    for _ in range(virtual_accounts.issue_attempts_max):
        details: AccountDetails | None = await info.context.router.run_control(claim)
        if details is not None:
            return details
    raise AssertionError("no free address after repeated draws")


issue_virtual_iban_field = strawberry.mutation(resolver=issue_virtual_iban,
                                               permission_classes=[only("issueVirtualIban")])
