"""Payouts end to end: GraphQL in, the payout worker's step with the sandbox rails, ledger
checks after every outcome (holds posted or voided exactly once, journals balanced)."""

from __future__ import annotations

from typing import Any

import pytest

from regions.policy_gate import PolicyGate
from regions.router import Router
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import (
    BALANCE,
    BENEFICIARY,
    CANCEL,
    GET_PAYOUT,
    PAYOUT,
    assert_ledger_consistent,
    de_iban,
    sandbox_sealer,
)
from workers.payouts import apply_due_returns, process_payout
from workers.rails import RailTimeout, sandbox_rails

gate = PolicyGate()
"""Policies at their defaults (no approved change in these tests)."""

sepa_instant_fee = "0.35"


async def _beneficiary(p: Partner, key: str = "ben-1", **extra: Any) -> str:
    got = await p.gql(BENEFICIARY, {"i": {
        "name": "Jane Roe", "country": "DE", "currency": "EUR", "iban": de_iban,
        "address": "Unter den Linden 1, Berlin", "idempotencyKey": key, **extra}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    return str(ben["id"])


async def _payout(p: Partner, ben: str, amount: str, key: str) -> dict[str, Any]:
    got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben,
                                     "amount": amount, "currency": "EUR",
                                     "reference": "invoice 7", "purposeCode": "SUPP",
                                     "idempotencyKey": key}})
    result: dict[str, Any] = got["data"]["createPayout"]
    return result


async def _balance(p: Partner) -> dict[str, str]:
    got = await p.gql(BALANCE, {"id": p.accounts[0]})
    b = got["data"]["account"]["balance"]
    return {k: v["amount"] for k, v in b.items()}


async def _status(p: Partner, payout_id: str) -> dict[str, Any]:
    got = await p.gql(GET_PAYOUT, {"id": payout_id})
    result: dict[str, Any] = got["data"]["payout"]
    return result


async def _process(router: Router, p: Partner, payout_id: str, message: str = "m1") -> bool:
    return await process_payout(router, sandbox_sealer(), gate, _rails, p.region, payout_id,
                                message)


_rails = sandbox_rails(return_after_s=0)


async def test_beneficiary_is_sealed_at_rest_and_masked(router: Router,
                                                        make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    ben = await _beneficiary(p)
    got = await p.gql("query($id: ID!) { beneficiary(id: $id) { ... on Beneficiary { name "
                      "accountNumberMasked address country } } }", {"id": ben})
    assert got["data"]["beneficiary"] == {"name": "Jane Roe", "accountNumberMasked": "••••3000",
                                          "address": "Unter den Linden 1, Berlin",
                                          "country": "DE"}
    [row] = await rows(router, p.region, "SELECT * FROM beneficiaries WHERE id = :id", id=ben)
    stored = b"".join(bytes(v) for v in (row.name_sealed, row.iban_sealed, row.address_sealed))
    for clear in (b"Jane", b"Roe", b"0532013000", b"Linden"):
        assert clear not in stored
    assert row.account_number_sealed is None


async def test_completed_payout_posts_the_hold_and_fee(router: Router,
                                                       make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    ben = await _beneficiary(p)
    created = await _payout(p, ben, "100.00", "pay-1")
    assert created["__typename"] == "Payout", created
    assert (created["status"], created["rail"], created["fee"]["amount"]) == (
        "PENDING", "SEPA_INSTANT", sepa_instant_fee)
    assert created["beneficiary"] == {"id": ben, "name": "Jane Roe"}
    assert await _balance(p) == {"posted": "1000.00", "pending": "-100.35",
                                 "available": "899.65"}
    again = await _payout(p, ben, "100.00", "pay-1")
    assert again["id"] == created["id"]
    await assert_ledger_consistent(router, p.region, p.tenant_id)

    assert await _process(router, p, created["id"])
    assert (await _status(p, created["id"]))["status"] == "COMPLETED"
    assert await _balance(p) == {"posted": "899.65", "pending": "0.00", "available": "899.65"}
    assert not await _process(router, p, created["id"], "m2"), "a redelivery does nothing"
    assert await _balance(p) == {"posted": "899.65", "pending": "0.00", "available": "899.65"}
    await assert_ledger_consistent(router, p.region, p.tenant_id)


@pytest.mark.parametrize(("amount", "code"), [("100.91", "AC04"), ("100.92", "AM05")])
async def test_failed_payout_voids_the_hold(router: Router, make_partner: MakePartner,
                                            amount: str, code: str) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    created = await _payout(p, await _beneficiary(p), amount, "pay-f")
    assert await _process(router, p, created["id"])
    done = await _status(p, created["id"])
    assert (done["status"], done["failureCode"]) == ("FAILED", code)
    assert await _balance(p) == {"posted": "1000.00", "pending": "0.00",
                                 "available": "1000.00"}
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_returned_payout_credits_the_amount_back_and_keeps_the_fee(
        router: Router, make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    created = await _payout(p, await _beneficiary(p), "100.93", "pay-r")
    assert await _process(router, p, created["id"])
    assert (await _status(p, created["id"]))["status"] == "COMPLETED"
    assert await apply_due_returns(router, p.region) >= 1
    done = await _status(p, created["id"])
    assert (done["status"], done["failureCode"]) == ("RETURNED", "MS03")
    assert await _balance(p) == {"posted": "999.65", "pending": "0.00", "available": "999.65"}
    assert await apply_due_returns(router, p.region) == 0, "returned once only"
    assert await _balance(p) == {"posted": "999.65", "pending": "0.00", "available": "999.65"}
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_rail_time_out_leaves_processing_then_completes(router: Router,
                                                              make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    created = await _payout(p, await _beneficiary(p), "100.94", "pay-t")
    with pytest.raises(RailTimeout):
        await _process(router, p, created["id"])
    assert (await _status(p, created["id"]))["status"] == "PROCESSING"
    assert (await _balance(p))["pending"] == "-101.29"
    await assert_ledger_consistent(router, p.region, p.tenant_id)
    assert await _process(router, p, created["id"], "m1-retry")
    assert (await _status(p, created["id"]))["status"] == "COMPLETED"
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_cancel_before_processing_voids_the_hold(router: Router,
                                                       make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    created = await _payout(p, await _beneficiary(p), "50.00", "pay-c")
    got = await p.gql(CANCEL, {"i": {"payoutId": created["id"], "idempotencyKey": "cancel-1"}})
    assert got["data"]["cancelPayout"]["status"] == "CANCELLED", got
    again = await p.gql(CANCEL, {"i": {"payoutId": created["id"], "idempotencyKey": "cancel-1"}})
    assert again["data"]["cancelPayout"]["status"] == "CANCELLED"
    assert await _balance(p) == {"posted": "1000.00", "pending": "0.00",
                                 "available": "1000.00"}
    assert not await _process(router, p, created["id"]), "a cancelled payout is not sent"
    late = await p.gql(CANCEL, {"i": {"payoutId": created["id"], "idempotencyKey": "cancel-2"}})
    assert late["data"]["cancelPayout"]["code"] == "PAYOUT_NOT_CANCELLABLE"
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_cancel_after_completion_is_refused(router: Router,
                                                  make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    created = await _payout(p, await _beneficiary(p), "10.00", "pay-x")
    assert await _process(router, p, created["id"])
    got = await p.gql(CANCEL, {"i": {"payoutId": created["id"], "idempotencyKey": "cancel-x"}})
    assert got["data"]["cancelPayout"]["__typename"] == "PayoutNotCancellable"
    assert (await _status(p, created["id"]))["status"] == "COMPLETED"


async def test_payouts_list_filters_by_status_and_pages(make_partner: MakePartner,
                                                        router: Router) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    ben = await _beneficiary(p)
    made = [(await _payout(p, ben, f"{i}.00", f"pay-l{i}"))["id"] for i in range(1, 4)]
    await _process(router, p, made[0])
    got = await p.gql("{ payouts(first: 2) { edges { node { id status } } "
                      "pageInfo { hasNextPage endCursor } } }")
    page = got["data"]["payouts"]
    assert [e["node"]["id"] for e in page["edges"]] == [made[2], made[1]]
    assert page["pageInfo"]["hasNextPage"]
    rest = await p.gql("query($a: String) { payouts(first: 2, after: $a) { edges { node { id } } "
                       "pageInfo { hasNextPage } } }", {"a": page["pageInfo"]["endCursor"]})
    assert [e["node"]["id"] for e in rest["data"]["payouts"]["edges"]] == [made[0]]
    done = await p.gql("{ payouts(status: COMPLETED) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in done["data"]["payouts"]["edges"]] == [made[0]]


async def test_entries_show_the_hold_and_its_posting(make_partner: MakePartner,
                                                     router: Router) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    created = await _payout(p, await _beneficiary(p), "20.00", "pay-e")
    await _process(router, p, created["id"])
    got = await p.gql("query($id: ID!) { account(id: $id) { ... on Account { entries(first: 5) {"
                      " edges { node { side phase amount { amount } } } } } } }",
                      {"id": p.accounts[0]})
    lines = [(e["node"]["side"], e["node"]["phase"], e["node"]["amount"]["amount"])
             for e in got["data"]["account"]["entries"]["edges"]]
    # Newest first: the posting of the hold and fee, the hold and fee, the funding. Within a
    # journal, entries follow transfer ids, which share a millisecond and so any order.
    assert sorted(lines[:2]) == [("DEBIT", "POSTED", "0.35"), ("DEBIT", "POSTED", "20.00")]
    assert sorted(lines[2:4]) == [("DEBIT", "PENDING", "0.35"), ("DEBIT", "PENDING", "20.00")]
    assert lines[4:] == [("CREDIT", "POSTED", "1000.00")]
