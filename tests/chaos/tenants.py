"""The bank test's tenants: made by the operator path (as ``corridor tenant create`` and
``corridor apikey create`` do), then set up by each tenant over the API: accounts in three
currencies, virtual account details, money received on them (``simulateIncomingPayment``, the
sandbox's funding path) and two beneficiaries, one paid by each region's rail."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.currency import currency as lookup_currency
from payments.money import parse_amount
from payments.principal import Environment, Role
from regions import tenants
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.topology import Topology
from tests.chaos import documents as doc
from tests.chaos.client import Answer, Api
from tests.conftest import test_pepper

currencies = ("EUR", "SGD", "USD")
accounts_per_currency = 2
funding_amount = "900.00"
"""Under every payer-information threshold, so each payment is credited without a review."""
payees = {
    "EUR": {"name": "Max Mustermann", "country": "DE", "currency": "EUR",
            "iban": "DE89370400440532013000"},
    "SGD": {"name": "Tan Wei Ming", "country": "SG", "currency": "SGD", "bankCode": "7171",
            "accountNumber": "0012345678"},
}
"""EUR goes out on eu-central's SEPA rails, SGD on ap-southeast's FAST: for a tenant of the
other region, a cross-region payout."""
iban_country = {"EU": "DE", "SG": "SG"}


class SetupError(RuntimeError):
    """The cluster answered a setup step with something other than success."""


@dataclass(slots=True)
class Tenant:
    name: str
    jurisdiction: str
    region: str
    tenant_id: str
    key: str
    accounts: dict[str, list[str]] = field(default_factory=dict)
    """Currency -> the tenant's account ids in it."""
    beneficiaries: dict[str, str] = field(default_factory=dict)
    """Currency -> a beneficiary paid in it."""
    funded_minor: dict[str, int] = field(default_factory=dict)
    """Account id -> what it received at setup."""

    def currency_of(self, account_id: str) -> str:
        return next(c for c, ids in self.accounts.items() if account_id in ids)


async def make_tenant(router: Router, topo: Topology, name: str, jurisdiction: str) -> Tenant:
    """A test tenant in its jurisdiction's home region, with a partner admin key."""
    async def body(conn: AsyncConnection) -> Tenant:
        made = await tenants.create_tenant(conn, topo, name, jurisdiction, None,
                                           Environment.TEST, gate=PolicyGate())
        issued = await tenants.create_api_key(conn, test_pepper, made.id, Role.PARTNER_ADMIN,
                                              [])
        return Tenant(name, jurisdiction, made.home_region, made.id, issued.key)

    return await router.run_control(body)


def _ok(answer: Answer, typename: str, what: str) -> dict[str, Any]:
    if answer.data is None or answer.typename != typename:
        raise SetupError(f"{what}: {answer.data or answer.unexpected or 'no answer'}")
    data: dict[str, Any] = answer.data
    return data


async def open_tenant(api: Api, tenant: Tenant, payments_per_account: int,
                      rng: random.Random) -> None:
    """Accounts, their funding and the beneficiaries, over the API (accounts in parallel)."""
    async def account(cur: str, n: int) -> str:
        made = _ok(await api.call(tenant.key, doc.CREATE_ACCOUNT, {"i": {
            "currency": cur, "label": f"chaos {cur} {n}",
            "idempotencyKey": f"setup-acc-{cur}-{n}"}}, rng), "Account", "createAccount")
        await _fund(api, tenant, str(made["id"]), cur, payments_per_account, rng)
        return str(made["id"])

    wanted = [(cur, n) for cur in currencies for n in range(accounts_per_currency)]
    opened = await asyncio.gather(*(account(cur, n) for cur, n in wanted))
    for (cur, _), account_id in zip(wanted, opened, strict=True):
        tenant.accounts.setdefault(cur, []).append(account_id)
    for cur, payee in payees.items():
        made = _ok(await api.call(tenant.key, doc.CREATE_BENEFICIARY, {"i": {
            **payee, "idempotencyKey": f"setup-ben-{cur}"}}, rng), "Beneficiary",
            "createBeneficiary")
        tenant.beneficiaries[cur] = str(made["id"])


async def _fund(api: Api, tenant: Tenant, account_id: str, cur: str, count: int,
                rng: random.Random) -> None:
    issued = _ok(await api.call(tenant.key, doc.ISSUE_IBAN, {"i": {
        "accountId": account_id, "country": iban_country[tenant.jurisdiction],
        "idempotencyKey": f"setup-vib-{account_id}"}}, rng), "VirtualIban", "issueVirtualIban")
    # Local details are addressed as country:bank:branch:account (``BankDetails.routing_key``).
    address = issued["iban"] or ":".join(
        issued[k] for k in ("country", "bankCode", "branchCode", "accountNumber") if issued[k])
    tenant.funded_minor[account_id] = 0
    for n in range(count):
        got = _ok(await api.call(tenant.key, doc.SIMULATE_INCOMING, {"i": {
            "iban": address, "amount": funding_amount, "currency": cur,
            "senderName": "Erika Mustermann", "reference": f"funding {n}",
            "idempotencyKey": f"setup-inc-{account_id}-{n}"}}, rng), "IncomingPayment",
            "simulateIncomingPayment")
        if got["status"] != "CREDITED" or got["accountId"] != account_id:
            raise SetupError(f"funding {account_id} was not credited: {got}")
        tenant.funded_minor[account_id] += parse_amount(got["amount"]["amount"],
                                                        lookup_currency(cur))
