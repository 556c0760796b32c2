"""Data residency proven by scanning: after a full scenario of a CN tenant (accounts,
transfers, account details, beneficiaries, payouts, incoming payments, a review case), no row
of that tenant exists in any database but the CN cluster's, except its entry in the global
directory (tenant id -> home region, and its API key's hash), which holds no personal data.
A tenant cannot be homed where its jurisdiction's policy does not allow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.errors import InvalidInput, PolicyDenied
from payments.principal import Environment, Role
from policies import catalog
from policies.model import PolicyVersion
from regions import tenants
from regions.policy_gate import PolicyGate, check_onboarding
from regions.router import Router
from regions.topology import Topology
from tests.e2e.conftest import MakePartner
from tests.payouts_helpers import BENEFICIARY, PAYOUT

directory_tables = frozenset({"tenants", "api_keys"})
"""Control-plane tables allowed to name a sovereign tenant: the directory, without personal
data (a company name, its jurisdiction and home region; a key's hash and prefix)."""

payee_name = "Li Wei Residency"
payee_account = "6222020200112233445"
sender_name = "Zhang San Residency"


async def _tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"))
        return [r[0] for r in found]


async def _rows_naming(engine: AsyncEngine, needles: list[str]) -> dict[str, int]:
    """Tables with rows whose text form contains any of ``needles``, and how many."""
    out = {}
    async with engine.connect() as conn:
        for table in await _tables(engine):
            where = " OR ".join(f"strpos(t::text, :n{i}) > 0" for i in range(len(needles)))
            n = (await conn.execute(text(f'SELECT count(*) FROM "{table}" AS t WHERE {where}'),
                                    {f"n{i}": v for i, v in enumerate(needles)})).scalar()
            if n:
                out[table] = int(n)
    return out


async def _scenario(make_partner: MakePartner) -> tuple[str, str]:
    p = await make_partner("CN", funded={"CNY": 1_000_000_00}, extra={"CNY": 1})
    assert p.region == "cn-east"
    got = await p.gql("""mutation($i: CreateTransferInput!) { createTransfer(input: $i) {
        __typename } }""", {"i": {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1],
                                 "amount": "10.00", "currency": "CNY", "idempotencyKey": "t"}})
    assert got["data"]["createTransfer"]["__typename"] == "Transfer", got
    got = await p.gql("""mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) {
        __typename ... on VirtualIban { accountNumber bankCode } } }""", {"i": {
        "accountId": p.accounts[1], "country": "CN", "idempotencyKey": "v"}})
    details = got["data"]["issueVirtualIban"]
    assert details["__typename"] == "VirtualIban", got
    got = await p.gql(BENEFICIARY, {"i": {
        "name": payee_name, "country": "CN", "currency": "CNY", "bankCode": "102100099996",
        "accountNumber": payee_account, "address": "1 Residency Road, Shanghai",
        "idempotencyKey": "b"}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    for key, amount in (("small", "100.00"), ("large", "600000.00")):
        got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben["id"],
                                         "amount": amount, "currency": "CNY",
                                         "idempotencyKey": key}})
        assert got["data"]["createPayout"]["__typename"] == "Payout", got
    assert got["data"]["createPayout"]["status"] == "HELD_FOR_REVIEW"  # PBoC large value
    got = await p.gql("""mutation($i: SimulateIncomingPaymentInput!) {
        simulateIncomingPayment(input: $i) { __typename
        ... on IncomingPayment { status suspenseReason } } }""",
        {"i": {"iban": f"CN:{details['bankCode']}:{details['accountNumber']}",
               "amount": "88.00", "currency": "CNY",
               "senderName": sender_name, "idempotencyKey": "in"}})
    assert got["data"]["simulateIncomingPayment"]["status"] == "CREDITED", got
    return p.tenant_id, ben["id"]


async def test_a_cn_tenant_leaves_no_row_outside_the_cn_cluster(
        router: Router, topo: Topology, make_partner: MakePartner) -> None:
    tenant_id, ben_id = await _scenario(make_partner)
    needles = [tenant_id, ben_id, payee_name, payee_account, sender_name]
    cn = topo.region("cn-east").cluster
    in_cn = await _rows_naming(router.engine_for("cn-east"), needles)
    for table in ("accounts", "transfers", "beneficiaries", "payouts", "incoming_payments",
                  "virtual_accounts", "review_cases", "audit_events", "outbox"):
        assert in_cn.get(table), (table, in_cn)
    for cluster in topo.clusters:
        if cluster.name == cn:
            continue
        engine = router.engine_for(topo.regions_of(cluster.name)[0].code)
        assert await _rows_naming(engine, needles) == {}, cluster.name
    control = await _rows_naming(router.control, needles)
    assert set(control) <= directory_tables, control
    # Personal values are sealed at rest even at home: none in clear anywhere.
    assert await _rows_naming(router.engine_for("cn-east"),
                              [payee_name, payee_account, sender_name]) == {}


async def test_a_tenant_is_homed_only_where_its_jurisdiction_allows(
        router: Router, topo: Topology) -> None:
    async def create(jurisdiction: str, region: str | None) -> Any:
        return await router.run_control(lambda conn: tenants.create_tenant(
            conn, topo, "Residency Ltd", jurisdiction, region, Environment.TEST,
            gate=PolicyGate()))

    with pytest.raises(InvalidInput, match="does not serve jurisdiction CN"):
        await create("CN", "eu-central")
    assert (await create("CN", None)).home_region == "cn-east"
    # A policy version that no longer allows ap-southeast for HK tenants refuses the region.
    gate = PolicyGate()
    values = dict(catalog.jurisdiction("HK").defaults())
    values["home_regions"] = frozenset({"cn-east"})
    gate._versions["HK"].append(PolicyVersion("HK", 1, values, datetime(2020, 1, 1, tzinfo=UTC)))
    with pytest.raises(PolicyDenied) as refused:
        check_onboarding(gate, "Residency Ltd", "HK", "ap-southeast")
    assert any("HOME_REGION_NOT_ALLOWED" in r for r in refused.value.reasons)
    check_onboarding(PolicyGate(), "Residency Ltd", "HK", "ap-southeast")


async def test_officer_keys_name_known_jurisdictions(router: Router, topo: Topology) -> None:
    async def key(role: Role, scope: list[str]) -> Any:
        async def body(conn: Any) -> Any:
            t = await tenants.create_tenant(conn, topo, "Scope Ltd", "EU", None,
                                            Environment.TEST, gate=PolicyGate())
            return await tenants.create_api_key(conn, b"pepper", t.id, role, scope)

        return await router.run_control(body)

    with pytest.raises(InvalidInput, match="needs jurisdictions"):
        await key(Role.COMPLIANCE_OFFICER, [])
    with pytest.raises(InvalidInput, match="unknown"):
        await key(Role.COMPLIANCE_OFFICER, ["EU", "XX"])
    with pytest.raises(InvalidInput, match="only compliance officer keys"):
        await key(Role.PARTNER_ADMIN, ["EU"])
