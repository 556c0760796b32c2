"""Usage limits under concurrency: limits an officer approved bind at once (without a restart),
and concurrent payouts cannot together pass a daily limit only some of them fit (the usage
counters are locked in the payout's transaction)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from payments.principal import Role
from regions.router import Router
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import BENEFICIARY, PAYOUT, assert_ledger_consistent, de_iban

pytestmark = pytest.mark.usefixtures("policy_defaults")

PROPOSE = """mutation($i: ProposePolicyChangeInput!) { proposePolicyChange(input: $i) {
  __typename ... on PolicyChangeRequest { id status } ... on Error { code message } } }"""
APPROVE = """mutation($i: DecidePolicyChangeInput!) { approvePolicyChange(input: $i) {
  __typename ... on PolicyChangeRequest { id status version } ... on Error { code message } } }"""


async def _approved(make_partner: MakePartner, changes: dict[str, Any]) -> None:
    maker = await make_partner("EU", role=Role.COMPLIANCE_OFFICER)
    checker = await make_partner("EU", role=Role.COMPLIANCE_OFFICER)
    got = await maker.gql(PROPOSE, {"i": {"jurisdiction": "EU", "changes": changes,
                                          "reason": "limits test", "idempotencyKey": "p"}})
    change = got["data"]["proposePolicyChange"]
    assert change["status"] == "PENDING", got
    got = await checker.gql(APPROVE, {"i": {"changeId": change["id"], "idempotencyKey": "a"}})
    assert got["data"]["approvePolicyChange"]["status"] == "APPROVED", got


async def _beneficiary(p: Partner, key: str) -> str:
    got = await p.gql(BENEFICIARY, {"i": {"name": "Jane Roe", "country": "DE",
                                          "currency": "EUR", "iban": de_iban,
                                          "idempotencyKey": key}})
    return str(got["data"]["createBeneficiary"]["id"])


async def _pay(p: Partner, ben: str, amount: str, key: str) -> dict[str, Any]:
    got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben,
                                     "amount": amount, "currency": "EUR",
                                     "idempotencyKey": key}})
    result: dict[str, Any] = got["data"]["createPayout"]
    return result


async def test_concurrent_payouts_cannot_pass_a_daily_account_limit_together(
        router: Router, make_partner: MakePartner) -> None:
    await _approved(make_partner, {"account_daily_amount_max": "100.00"})
    p = await make_partner("EU", funded={"EUR": 10_000_00})
    bens = [await _beneficiary(p, f"b{i}") for i in range(4)]
    results = await asyncio.gather(*[_pay(p, bens[i % 4], "10.00", f"k{i}")
                                     for i in range(25)])
    accepted = [r for r in results if r["__typename"] == "Payout"]
    refused = [r for r in results if r["__typename"] == "PolicyDenied"]
    assert (len(accepted), len(refused)) == (10, 15), results
    assert all(any(x.startswith("LIMIT_EXCEEDED") for x in r["reasons"]) for r in refused)
    [usage] = await rows(router, p.region, """
        SELECT amount_minor, count FROM limit_usage WHERE tenant_id = :t AND scope = 'account'
        AND period = 'day'""", t=p.tenant_id)
    assert (usage.amount_minor, usage.count) == (100_00, 10)
    other = await make_partner("EU", funded={"EUR": 1_000_00})
    ok = await _pay(other, await _beneficiary(other, "b"), "100.00", "k")
    assert ok["__typename"] == "Payout", ok  # another account has its own day
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_velocity_per_beneficiary_per_day(router: Router,
                                                make_partner: MakePartner) -> None:
    await _approved(make_partner, {"beneficiary_daily_count_max": 3})
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    ben = await _beneficiary(p, "b")
    for i in range(3):
        assert (await _pay(p, ben, "1.00", f"k{i}"))["__typename"] == "Payout"
    fourth = await _pay(p, ben, "1.00", "k3")
    assert fourth["__typename"] == "PolicyDenied", fourth
    assert fourth["reasons"][0].startswith("VELOCITY_EXCEEDED"), fourth
    again = await _pay(p, ben, "1.00", "k0")
    assert again["__typename"] == "Payout", again  # a replay is not a new payout
    other_ben = await _beneficiary(p, "b2")
    assert (await _pay(p, other_ben, "1.00", "k9"))["__typename"] == "Payout"


async def test_a_single_payout_over_the_limit_is_refused_and_recorded(
        router: Router, make_partner: MakePartner) -> None:
    await _approved(make_partner, {"payout_amount_max": "50.00"})
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    refused = await _pay(p, await _beneficiary(p, "b"), "50.01", "k")
    assert refused["__typename"] == "PolicyDenied", refused
    assert refused["reasons"] == ["LIMIT_EXCEEDED: EUR 50.01 is over the single-transaction "
                                  "limit of EUR 50.00"]
    [audit] = await rows(router, p.region, """
        SELECT detail FROM audit_events WHERE tenant_id = :t AND action = 'policy.decided'""",
        t=p.tenant_id)
    assert (audit.detail["outcome"], audit.detail["versions"]) == ("DENY", {"EU": 1})
    ok = await _pay(p, await _beneficiary(p, "b"), "50.00", "k2")
    assert ok["__typename"] == "Payout", ok
