"""The review flow end to end through GraphQL: an operation a policy sends to review waits with
its money held; an officer's release lets it go on (the money moves once), a rejection voids
the hold (payouts) or freezes the money in suspense (incoming payments). Partners hear through
the operation's events; cases and decisions are in the audit log."""

from __future__ import annotations

from typing import Any

from payments.principal import Role
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
from workers.payouts import process_payout
from workers.rails import sandbox_rails

gate = PolicyGate()
"""Policies at their defaults: EU sends payouts of EUR 15,000.00 or more to review."""
rails = sandbox_rails(return_after_s=0)

CASES = """query($status: String) { reviewCases(status: $status) { edges { node {
  id region kind subjectId tenantId jurisdictions amount { amount currency } status note
  resolvedBy reasons { jurisdiction version rule outcome code message } } } } }"""
RESOLVE = """mutation($i: ResolveReviewCaseInput!) { resolveReviewCase(input: $i) { __typename
  ... on ReviewCase { id status note resolvedBy } ... on Error { code message }
  ... on ValidationError { field } } }"""
SIMULATE = """mutation($i: SimulateIncomingPaymentInput!) { simulateIncomingPayment(input: $i) {
  __typename ... on IncomingPayment { id status accountId suspenseReason }
  ... on Error { code message } } }"""
ISSUE = """mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) {
  __typename ... on VirtualIban { iban } } }"""


async def _beneficiary(p: Partner) -> str:
    got = await p.gql(BENEFICIARY, {"i": {
        "name": "Jane Roe", "country": "DE", "currency": "EUR", "iban": de_iban,
        "address": "Unter den Linden 1, Berlin", "idempotencyKey": "ben"}})
    return str(got["data"]["createBeneficiary"]["id"])


async def _payout(p: Partner, ben: str, amount: str, key: str) -> dict[str, Any]:
    got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben,
                                     "amount": amount, "currency": "EUR",
                                     "idempotencyKey": key}})
    result: dict[str, Any] = got["data"]["createPayout"]
    return result


async def _available(p: Partner) -> str:
    got = await p.gql(BALANCE, {"id": p.accounts[0]})
    return str(got["data"]["account"]["balance"]["available"]["amount"])


async def _status(p: Partner, payout_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await p.gql(GET_PAYOUT, {"id": payout_id}))["data"]["payout"]
    return result


async def _case_of(officer: Partner, subject_id: str) -> dict[str, Any]:
    got = await officer.gql(CASES, {"status": "OPEN"})
    found = [e["node"] for e in got["data"]["reviewCases"]["edges"]
             if e["node"]["subjectId"] == subject_id]
    assert len(found) == 1, got
    return found[0]


async def _resolve(officer: Partner, case_id: str, decision: str, key: str,
                   note: str | None = "checked") -> dict[str, Any]:
    got = await officer.gql(RESOLVE, {"i": {"caseId": case_id, "decision": decision,
                                            "note": note, "idempotencyKey": key}})
    result: dict[str, Any] = got["data"]["resolveReviewCase"]
    return result


async def _held_payout(router: Router, make_partner: MakePartner
                       ) -> tuple[Partner, Partner, str, dict[str, Any]]:
    p = await make_partner("EU", funded={"EUR": 50_000_00})
    officer = await make_partner("EU", role=Role.COMPLIANCE_OFFICER)
    ben = await _beneficiary(p)
    held = await _payout(p, ben, "15000.00", "big")
    assert held["status"] == "HELD_FOR_REVIEW", held
    assert await _available(p) == "34999.65"
    case = await _case_of(officer, held["id"])
    assert (case["kind"], case["jurisdictions"], case["amount"], case["status"]) == (
        "payout", ["EU"], {"amount": "15000.00", "currency": "EUR"}, "OPEN")
    assert [r["code"] for r in case["reasons"]] == ["REPORTING_THRESHOLD"], case
    return p, officer, held["id"], case


async def test_a_held_payout_released_is_paid_once(router: Router,
                                                   make_partner: MakePartner) -> None:
    p, officer, payout_id, case = await _held_payout(router, make_partner)
    assert not await _process(router, p, payout_id, "m0")  # held: the worker leaves it
    resolved = await _resolve(officer, case["id"], "RELEASE", "r1")
    assert (resolved["__typename"], resolved["status"], resolved["note"]) == (
        "ReviewCase", "RELEASED", "checked")
    assert (await _resolve(officer, case["id"], "RELEASE", "r1")) == resolved  # replay
    again = await _resolve(officer, case["id"], "REJECT", "r2")
    assert again["__typename"] == "CaseNotOpen", again
    assert (await _status(p, payout_id))["status"] == "PENDING"
    assert await _process(router, p, payout_id, "m1")
    assert not await _process(router, p, payout_id, "m1")  # redelivered: nothing twice
    assert (await _status(p, payout_id))["status"] == "COMPLETED"
    got = await p.gql(BALANCE, {"id": p.accounts[0]})
    assert got["data"]["account"]["balance"]["posted"]["amount"] == "34999.65"
    topics = [r.topic for r in await rows(router, p.region, """
        SELECT topic FROM outbox WHERE tenant_id = :t ORDER BY created_at, id""",
        t=p.tenant_id)]
    assert topics.count("payout.held_for_review") == 1
    assert topics.count("payout.created") == 1  # the release: what sends it to the worker
    assert topics.count("payout.completed") == 1
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def _process(router: Router, p: Partner, payout_id: str, message: str) -> bool:
    return await process_payout(router, sandbox_sealer(), gate, rails, p.region, payout_id,
                                message)


async def test_a_held_payout_rejected_voids_its_hold(router: Router,
                                                     make_partner: MakePartner) -> None:
    p, officer, payout_id, case = await _held_payout(router, make_partner)
    resolved = await _resolve(officer, case["id"], "REJECT", "r1", note=None)
    assert (resolved["status"], resolved["note"]) == ("REJECTED", None)
    payout = await _status(p, payout_id)
    assert (payout["status"], payout["failureCode"]) == ("FAILED", "REVIEW_REJECTED")
    assert await _available(p) == "50000.00"
    assert not await _process(router, p, payout_id, "m1")
    [event] = await rows(router, p.region, """
        SELECT topic, payload FROM outbox WHERE tenant_id = :t AND topic = 'payout.failed'""",
        t=p.tenant_id)
    assert event.payload["failure_code"] == "REVIEW_REJECTED"
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_cancelling_a_held_payout_withdraws_its_case(router: Router,
                                                           make_partner: MakePartner) -> None:
    p, officer, payout_id, case = await _held_payout(router, make_partner)
    got = await p.gql(CANCEL, {"i": {"payoutId": payout_id, "idempotencyKey": "c1"}})
    assert got["data"]["cancelPayout"]["status"] == "CANCELLED"
    listed = await officer.gql(CASES, {"status": "WITHDRAWN"})
    assert case["id"] in [e["node"]["id"] for e in listed["data"]["reviewCases"]["edges"]]
    late = await _resolve(officer, case["id"], "RELEASE", "late")
    assert late["__typename"] == "CaseNotOpen", late
    assert await _available(p) == "50000.00"


async def test_cases_of_another_jurisdiction_are_not_found(router: Router,
                                                           make_partner: MakePartner) -> None:
    p, _, _, case = await _held_payout(router, make_partner)
    uk_officer = await make_partner("UK", role=Role.COMPLIANCE_OFFICER)
    listed = await uk_officer.gql(CASES, {"status": "OPEN"})
    assert case["id"] not in [e["node"]["id"] for e in listed["data"]["reviewCases"]["edges"]]
    refused = await _resolve(uk_officer, case["id"], "RELEASE", "x")
    assert refused["__typename"] == "NotFound", refused
    forbidden = await p.gql(RESOLVE, {"i": {"caseId": case["id"], "decision": "RELEASE",
                                            "idempotencyKey": "p"}})
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN", forbidden


async def test_the_decision_and_the_case_are_audited(router: Router,
                                                     make_partner: MakePartner) -> None:
    p, officer, payout_id, case = await _held_payout(router, make_partner)
    await _resolve(officer, case["id"], "RELEASE", "r1")
    audit = {r.action: r for r in await rows(router, p.region, """
        SELECT action, actor, target, detail FROM audit_events
        WHERE target IN (:payout, :case)""", payout=payout_id, case=case["id"])}
    decided = audit["policy.decided"]
    assert (decided.detail["outcome"], decided.detail["versions"]) == ("REVIEW", {"EU": 0})
    assert decided.detail["reasons"][0]["rule"] == "occasional_transaction"
    assert {"review_case.opened", "review_case.released"} <= set(audit)
    assert audit["review_case.released"].actor.startswith("apikey:")


async def _iban(p: Partner) -> str:
    got = await p.gql(ISSUE, {"i": {"accountId": p.accounts[0], "country": "DE",
                                    "idempotencyKey": "vib"}})
    return str(got["data"]["issueVirtualIban"]["iban"])


async def _held_incoming(make_partner: MakePartner) -> tuple[Partner, Partner, str, str]:
    p = await make_partner("EU", extra={"EUR": 1})
    officer = await make_partner("EU", role=Role.COMPLIANCE_OFFICER)
    got = await p.gql(SIMULATE, {"i": {
        "iban": await _iban(p), "amount": "20000.00", "currency": "EUR",
        "senderName": "Erika Mustermann", "senderIban": "DE89370400440532013000",
        "idempotencyKey": "in-big"}})
    received = got["data"]["simulateIncomingPayment"]
    assert (received["status"], received["suspenseReason"]) == ("SUSPENSE", "POLICY_REVIEW")
    case = await _case_of(officer, received["id"])
    assert case["kind"] == "incoming_payment"
    return p, officer, received["id"], case["id"]


async def test_a_held_incoming_payment_released_is_credited_once(
        router: Router, make_partner: MakePartner) -> None:
    p, officer, inc_id, case_id = await _held_incoming(make_partner)
    assert await _available(p) == "0.00"
    assert (await _resolve(officer, case_id, "RELEASE", "r1"))["status"] == "RELEASED"
    assert await _available(p) == "20000.00"
    assert (await _resolve(officer, case_id, "RELEASE", "r1"))["status"] == "RELEASED"
    assert await _available(p) == "20000.00"
    [row] = await rows(router, p.region, "SELECT status, account_id FROM incoming_payments "
                       "WHERE id = :id", id=inc_id)
    assert (row.status, row.account_id) == ("ASSIGNED", p.accounts[0])
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_a_held_incoming_payment_rejected_stays_frozen(
        router: Router, make_partner: MakePartner) -> None:
    p, officer, inc_id, case_id = await _held_incoming(make_partner)
    assert (await _resolve(officer, case_id, "REJECT", "r1"))["status"] == "REJECTED"
    assert await _available(p) == "0.00"
    [row] = await rows(router, p.region, "SELECT status, suspense_reason FROM "
                       "incoming_payments WHERE id = :id", id=inc_id)
    assert (row.status, row.suspense_reason) == ("SUSPENSE", "POLICY_REJECTED")
    topics = [r.topic for r in await rows(router, p.region, """
        SELECT topic FROM outbox WHERE tenant_id = :t""", t=p.tenant_id)]
    assert "incoming_payment.rejected" in topics
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_resolve_review_case_bad_input(router: Router, make_partner: MakePartner) -> None:
    p, officer, payout_id, case = await _held_payout(router, make_partner)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"caseId": "pay_eu-central_01M8WW5VQK1RYBJKZGZ7YHJFVH"}, "ValidationError", "caseId"),
        ({"caseId": "rvc_eu-central_garbage"}, "ValidationError", "caseId"),
        ({"caseId": ""}, "ValidationError", "caseId"),
        ({"caseId": "rvc_eu-central_01M8WW5VQK1RYBJKZGZ7YHJFVH"}, "NotFound", None),
        ({"caseId": "rvc_us-east_01M8WW5VQK1RYBJKZGZ7YHJFVH"}, "NotFound", None),
        ({"note": "x" * 1_001}, "ValidationError", "note"),
        ({"note": "a\x00b"}, "ValidationError", "note"),
        ({"idempotencyKey": ""}, "ValidationError", "idempotencyKey"),
        ({"idempotencyKey": "k" * 256}, "ValidationError", "idempotencyKey"),
    ]
    for over, typename, field in cases:
        got = await officer.gql(RESOLVE, {"i": {"caseId": case["id"], "decision": "RELEASE",
                                                "note": None, "idempotencyKey": "bad",
                                                **over}})
        result = got["data"]["resolveReviewCase"]
        assert (result["__typename"], result.get("field")) == (typename, field), (over, got)
    wrong_enum = await officer.gql(RESOLVE, {"i": {"caseId": case["id"], "decision": "MAYBE",
                                                   "idempotencyKey": "bad"}})
    assert wrong_enum["errors"], wrong_enum
    assert (await _status(p, payout_id))["status"] == "HELD_FOR_REVIEW"
    assert (await _case_of(officer, payout_id))["status"] == "OPEN"


async def test_review_cases_bad_arguments(make_partner: MakePartner) -> None:
    officer = await make_partner("EU", role=Role.COMPLIANCE_OFFICER)
    for variables in ({"status": "CLOSED"}, {"first": 0}, {"first": 101},
                      {"after": "not-a-cursor"}, {"after": "cnZjOnBheV9ldS1jZW50cmFs"}):
        got = await officer.gql("""query($status: String, $first: Int, $after: String) {
            reviewCases(status: $status, first: $first, after: $after) { edges { cursor } } }""",
            variables)
        assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (variables, got)
