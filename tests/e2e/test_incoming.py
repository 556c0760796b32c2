"""Incoming payments end to end: virtual IBANs receive sandbox payments, suspense and its
resolution by an operator, refunds to the sender; the ledger is checked after each."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from schwifty import IBAN
from sqlalchemy import text

from payments.principal import Environment, Role
from regions import tenants
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.topology import Topology
from tests.conftest import test_pepper
from tests.e2e.conftest import MakePartner, Partner, gql
from tests.payouts_helpers import BALANCE, assert_ledger_consistent

ISSUE = """mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) { __typename
  ... on VirtualIban { id iban bic country accountId scheme bankCode accountNumber }
  ... on Error { code message } ... on ValidationError { field } } }"""
SIMULATE = """mutation($i: SimulateIncomingPaymentInput!) { simulateIncomingPayment(input: $i) {
  __typename ... on IncomingPayment { id status amount { amount currency } accountId senderName
  senderAccountMasked reference suspenseReason address }
  ... on Error { code message } ... on ValidationError { field } } }"""
ITEMS = "{ reconciliationItems { edges { node { id status suspenseReason amount { amount } } } } }"
ASSIGN = """mutation($i: AssignIncomingPaymentInput!) { assignIncomingPayment(input: $i) {
  __typename ... on IncomingPayment { id status accountId } ... on Error { code message } } }"""
RETURN = """mutation($i: ReturnIncomingPaymentInput!) { returnIncomingPayment(input: $i) {
  __typename ... on IncomingPayment { id status } ... on Error { code message } } }"""
REFUND = """mutation($i: RefundIncomingPaymentInput!) { refundIncomingPayment(input: $i) {
  __typename ... on Payout { id status amount { amount } beneficiary { name country } }
  ... on Error { code message } } }"""


async def _iban(p: Partner, account: str, country: str = "DE", key: str = "vib-1") -> str:
    got = await p.gql(ISSUE, {"i": {"accountId": account, "country": country,
                                    "idempotencyKey": key}})
    issued = got["data"]["issueVirtualIban"]
    assert issued["__typename"] == "VirtualIban", got
    return str(issued["iban"])


async def _simulate(p: Partner, iban: str, amount: str, key: str, currency: str = "EUR",
                    **extra: Any) -> dict[str, Any]:
    got = await p.gql(SIMULATE, {"i": {"iban": iban, "amount": amount, "currency": currency,
                                       "senderName": "Erika Mustermann", "reference": "inv 9",
                                       "idempotencyKey": key, **extra}})
    result: dict[str, Any] = got["data"]["simulateIncomingPayment"]
    return result


async def _posted(p: Partner, account: str) -> str:
    got = await p.gql(BALANCE, {"id": account})
    return str(got["data"]["account"]["balance"]["posted"]["amount"])


async def test_virtual_iban_receives_a_payment_once(router: Router,
                                                    make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    iban = await _iban(p, p.accounts[0])
    assert IBAN(iban, validate_bban=True).country_code == "DE"
    again = await p.gql(ISSUE, {"i": {"accountId": p.accounts[0], "country": "DE",
                                      "idempotencyKey": "vib-1"}})
    assert again["data"]["issueVirtualIban"]["iban"] == iban
    listed = await p.gql("query($id: ID!) { account(id: $id) { ... on Account { virtualIbans "
                         "{ iban country scheme } } } }", {"id": p.accounts[0]})
    assert listed["data"]["account"]["virtualIbans"] == [
        {"iban": iban, "country": "DE", "scheme": "IBAN"}]

    got = await _simulate(p, iban, "250.00", "in-1")
    assert (got["status"], got["accountId"], got["senderName"]) == (
        "CREDITED", p.accounts[0], "Erika Mustermann")
    replay = await _simulate(p, iban, "250.00", "in-1")
    assert replay["id"] == got["id"]
    assert await _posted(p, p.accounts[0]) == "250.00"
    page = await p.gql("{ incomingPayments { edges { node { id status reference } } } }")
    assert [e["node"] for e in page["data"]["incomingPayments"]["edges"]] == [
        {"id": got["id"], "status": "CREDITED", "reference": "inv 9"}]
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_local_details_for_us_tenants(make_partner: MakePartner) -> None:
    p = await make_partner("US", extra={"USD": 1})
    got = await p.gql(ISSUE, {"i": {"accountId": p.accounts[0], "country": "US",
                                    "idempotencyKey": "vib-us"}})
    issued = got["data"]["issueVirtualIban"]
    assert (issued["scheme"], issued["iban"], issued["country"]) == ("ABA", None, "US")
    address = f"US:{issued['bankCode']}:{issued['accountNumber']}"
    credited = await _simulate(p, address, "12.34", "in-us", currency="USD")
    assert credited["status"] == "CREDITED", credited
    assert await _posted(p, p.accounts[0]) == "12.34"


async def test_unknown_and_mismatched_payments_wait_in_suspense_for_an_operator(
        router: Router, make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": 2})
    sre = await make_partner("EU", role=Role.SRE)
    iban = await _iban(p, p.accounts[0])
    unknown = await _simulate(p, "DE89370400440532013000", "40.00", "in-unknown")
    assert (unknown["status"], unknown["suspenseReason"]) == ("SUSPENSE", "UNKNOWN_ACCOUNT")
    mismatch = await _simulate(p, iban, "30.00", "in-gbp", currency="GBP")
    assert (mismatch["status"], mismatch["suspenseReason"]) == ("SUSPENSE", "CURRENCY_MISMATCH")
    assert await _posted(p, p.accounts[0]) == "0.00"
    await assert_ledger_consistent(router, p.region, p.tenant_id)

    items = await sre.gql(ITEMS)
    open_ids = {e["node"]["id"] for e in items["data"]["reconciliationItems"]["edges"]}
    assert {unknown["id"], mismatch["id"]} <= open_ids
    denied = await p.gql(ITEMS)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    assigned = await sre.gql(ASSIGN, {"i": {"incomingPaymentId": unknown["id"],
                                            "accountId": p.accounts[1],
                                            "idempotencyKey": "assign-1"}})
    assert assigned["data"]["assignIncomingPayment"] == {
        "__typename": "IncomingPayment", "id": unknown["id"], "status": "ASSIGNED",
        "accountId": p.accounts[1]}
    assert await _posted(p, p.accounts[1]) == "40.00"
    twice = await sre.gql(ASSIGN, {"i": {"incomingPaymentId": unknown["id"],
                                         "accountId": p.accounts[1],
                                         "idempotencyKey": "assign-2"}})
    assert twice["data"]["assignIncomingPayment"]["code"] == "NOT_IN_SUSPENSE"
    wrong_currency = await sre.gql(ASSIGN, {"i": {"incomingPaymentId": mismatch["id"],
                                                  "accountId": p.accounts[1],
                                                  "idempotencyKey": "assign-3"}})
    assert wrong_currency["data"]["assignIncomingPayment"]["code"] == "CURRENCY_MISMATCH"
    returned = await sre.gql(RETURN, {"i": {"incomingPaymentId": mismatch["id"],
                                            "idempotencyKey": "return-1"}})
    assert returned["data"]["returnIncomingPayment"]["status"] == "RETURNED"
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_refund_pays_the_sender_back(router: Router, make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    iban = await _iban(p, p.accounts[0])
    got = await _simulate(p, iban, "80.00", "in-r", senderIban="GB29 NWBK 6016 1331 9268 19")
    assert got["senderAccountMasked"] == "••••6819"
    refund = await p.gql(REFUND, {"i": {"incomingPaymentId": got["id"],
                                        "idempotencyKey": "refund-1"}})
    payout = refund["data"]["refundIncomingPayment"]
    assert (payout["__typename"], payout.get("status"), payout.get("amount")) == (
        "Payout", "PENDING", {"amount": "80.00"}), refund
    assert payout["beneficiary"] == {"name": "Erika Mustermann", "country": "GB"}
    replay = await p.gql(REFUND, {"i": {"incomingPaymentId": got["id"],
                                        "idempotencyKey": "refund-1"}})
    assert replay["data"]["refundIncomingPayment"]["id"] == payout["id"]
    again = await p.gql(REFUND, {"i": {"incomingPaymentId": got["id"],
                                       "idempotencyKey": "refund-2"}})
    assert again["data"]["refundIncomingPayment"]["code"] == "NOT_REFUNDABLE"
    no_sender = await _simulate(p, iban, "5.00", "in-nosender")
    refused = await p.gql(REFUND, {"i": {"incomingPaymentId": no_sender["id"],
                                         "idempotencyKey": "refund-3"}})
    assert refused["data"]["refundIncomingPayment"]["code"] == "NOT_REFUNDABLE"
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_live_keys_cannot_simulate(router: Router, topo: Topology,
                                         client: AsyncTestClient[Any]) -> None:
    async def live(conn: Any) -> str:
        t = await tenants.create_tenant(conn, topo, "Live Ltd", "EU", None, Environment.LIVE,
                                        gate=PolicyGate())
        return (await tenants.create_api_key(conn, test_pepper, t.id, Role.PARTNER_ADMIN)).key

    key = await router.run_control(live)
    got = await gql(client, key, SIMULATE, {"i": {
        "iban": "DE89370400440532013000", "amount": "1.00", "currency": "EUR",
        "senderName": "x", "idempotencyKey": "k"}})
    assert got["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert got["data"] is None


async def test_closed_account_payments_wait_in_suspense(router: Router,
                                                        make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    iban = await _iban(p, p.accounts[0])

    async def close(conn: Any) -> None:
        await conn.execute(text("UPDATE accounts SET status = 'CLOSED' WHERE region = :r "
                                "AND id = :a"), {"r": p.region, "a": p.accounts[0]})

    await router.run(p.region, close)
    got = await _simulate(p, iban, "9.00", "in-closed")
    assert (got["status"], got["suspenseReason"]) == ("SUSPENSE", "ACCOUNT_CLOSED")
    await assert_ledger_consistent(router, p.region, p.tenant_id)
