"""Bad input to the money-in and notification APIs over HTTP: sandbox incoming payments,
refunds, operators' suspense resolution, payout batches and webhook endpoints.

Every rejected request must leave no trace. After each one the tenant's incoming payments,
payouts, beneficiaries, transfers, webhook endpoints and deliveries and its accounts' balances
(posted, pending and available) are read back and compared with what they were before. Where a
request could have parked money in the region's suspense account, an operator's list of open
suspense items is compared too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from payments.money import amount_minor_max
from payments.principal import Role
from payments.webhooks import event_types, event_types_per_endpoint_max, url_chars_max
from regions.idempotency import key_length_max
from regions.payout_batches import batch_items_max, external_id_length_max
from regions.payouts import reference_length_max
from regions.router import Router
from regions.webhooks import endpoints_per_tenant_max
from schema.incoming import address_length_max, sender_name_length_max
from schema.pagination import encode_cursor, first_max
from tests.e2e.conftest import MakePartner, Partner
from tests.e2e.test_bad_input import TRANSFER
from tests.e2e.test_money_out_bad_input import (
    CH_IBAN,
    DE_IBAN,
    GB_IBAN,
    MISSING_EU_ACCOUNT,
    MISSING_EU_BENEFICIARY,
    MISSING_EU_PAYOUT,
    MISSING_UK_BENEFICIARY,
    MISSING_US_ACCOUNT,
    TRANSFER_ID,
    ULID,
    account_of,
    add_beneficiary,
    add_key,
    assert_bad_user_input,
    assert_error,
    assert_top_level,
    assert_validation,
    de_beneficiary,
    issue,
    nodes,
    ok,
    us_beneficiary,
)

SIMULATE = """
mutation($input: SimulateIncomingPaymentInput!) {
  simulateIncomingPayment(input: $input) {
    __typename
    ... on IncomingPayment {
      id status amount { amount currency } accountId address senderName senderAccountMasked
      reference suspenseReason
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

REFUND = """
mutation($input: RefundIncomingPaymentInput!) {
  refundIncomingPayment(input: $input) {
    __typename
    ... on Payout { id status amount { amount currency } fee { amount } accountId beneficiaryId }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on InsufficientFunds { accountId }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

ASSIGN = """
mutation($input: AssignIncomingPaymentInput!) {
  assignIncomingPayment(input: $input) {
    __typename
    ... on IncomingPayment { id status accountId suspenseReason }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on CurrencyMismatch { mismatchedAccountId: accountId }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

RETURN = """
mutation($input: ReturnIncomingPaymentInput!) {
  returnIncomingPayment(input: $input) {
    __typename
    ... on IncomingPayment { id status accountId suspenseReason }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

BATCH = """
mutation($input: CreatePayoutBatchInput!) {
  createPayoutBatch(input: $input) {
    __typename
    ... on PayoutBatch {
      id status accountId itemCount rejected { index code message }
      pending processing succeeded failed held returned
    }
    ... on PayoutBatchRejected { index reasonCode }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on AccountNotActive { accountId }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

GET_BATCH = """
query($id: ID!) {
  payoutBatch(id: $id) {
    __typename
    ... on PayoutBatch { id status itemCount pending }
    ... on NotFound { code message }
  }
}"""

REGISTER = """
mutation($input: RegisterWebhookEndpointInput!) {
  registerWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpointSecret { secret endpoint { id url events status } }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

ROTATE = """
mutation($input: WebhookEndpointActionInput!) {
  rotateWebhookSecret(input: $input) {
    __typename
    ... on WebhookEndpointSecret { secret endpoint { id status secretRotatingUntil } }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

DISABLE = """
mutation($input: WebhookEndpointActionInput!) {
  disableWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpoint { id status }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

TENANT_STATE = """
{
  incomingPayments(first: 100) {
    edges { node { id status amount { amount currency } accountId suspenseReason } }
  }
  payouts(first: 100) { edges { node { id status amount { amount currency } } } }
  beneficiaries(first: 100) { edges { node { id status name } } }
  transfers(first: 100) { edges { node { id status } } }
  webhookEndpoints(first: 100) {
    edges { node { id url events status secretRotatingUntil } }
  }
  webhookDeliveries(first: 100) { edges { node { id status attempts } } }
  accounts(first: 100) {
    edges { node {
      id currency
      balance {
        posted { amount currency } pending { amount currency } available { amount currency }
      }
    } }
  }
}"""

SUSPENSE = """
{
  reconciliationItems(first: 100) {
    edges { node { id status suspenseReason accountId amount { amount currency } } }
  }
}"""

MISSING_EU_INCOMING = f"inc_eu-central_{ULID}"
MISSING_US_INCOMING = f"inc_us-east_{ULID}"
MISSING_EU_BATCH = f"pbt_eu-central_{ULID}"
MISSING_US_BATCH = f"pbt_us-east_{ULID}"
MISSING_EU_ENDPOINT = f"whe_eu-central_{ULID}"
MISSING_UK_ENDPOINT = f"whe_uk-south_{ULID}"
DELIVERY_ID = f"whd_eu-central_{ULID}"
# GB IBAN with its check digits broken: a sender account no refund can reach.
GB_IBAN_BAD_CHECK = "GB28NWBK60161331926819"

LARGEST_EUR = f"{amount_minor_max // 100}.{amount_minor_max % 100:02d}"
OVER_MAX_EUR = f"{(amount_minor_max + 1) // 100}.{(amount_minor_max + 1) % 100:02d}"
HOOK_URL = "https://hooks.example.com/corridor"


@pytest_asyncio.fixture(loop_scope="session")
async def ops(make_partner: MakePartner) -> Partner:
    """An operator (sre key) of eu-central, the home region of the EU partners here."""
    operator = await make_partner("EU", role=Role.SRE)
    assert operator.region == "eu-central", operator.region
    return operator


async def state(p: Partner, ops: Partner | None = None) -> dict[str, Any]:
    """Everything a rejected request might have written, as the tenant's admin sees it, and
    with ``ops`` the region's open suspense items (newest first) as an operator sees them."""
    seen = ok(await p.gql(TENANT_STATE))
    if ops is not None:
        seen["suspense"] = ok(await ops.gql(SUSPENSE))["reconciliationItems"]
    return seen


async def assert_nothing_written(p: Partner, before: dict[str, Any],
                                 ops: Partner | None = None) -> None:
    assert await state(p, ops) == before


def statuses(st: dict[str, Any], name: str) -> list[str]:
    return [n["status"] for n in nodes(st, name)]


def balance_of(st: dict[str, Any], account_id: str) -> tuple[str, str, str]:
    balance = account_of(st, account_id)["balance"]
    return (balance["posted"]["amount"], balance["pending"]["amount"],
            balance["available"]["amount"])


async def suspense_items(ops: Partner) -> dict[str, str]:
    """The region's open suspense items (the newest 100): id -> status."""
    return {n["id"]: n["status"] for n in nodes(ok(await ops.gql(SUSPENSE)),
                                                "reconciliationItems")}


async def race(p: Partner, query: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mutations sent at once; the test client runs one request at a time, the app over
    plain ASGI does not."""
    transport = httpx.ASGITransport(app=p.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://corridor.test") as raw:
        async def one(data: dict[str, Any]) -> dict[str, Any]:
            resp = await raw.post("/graphql", headers={"Authorization": f"Bearer {p.key}"},
                                  json={"query": query, "variables": {"input": data}})
            assert resp.status_code == 200, resp.text
            return ok(resp.json())

        return await asyncio.gather(*[one(d) for d in inputs])


# --- simulateIncomingPayment ------------------------------------------------------------------


def incoming_input(address: str, key: str, **over: Any) -> dict[str, Any]:
    data = {"iban": address, "amount": "25.00", "currency": "EUR",
            "senderName": "Erika Mustermann", "senderIban": GB_IBAN, "reference": "inv 9",
            "idempotencyKey": key}
    return {**data, **over}


async def simulate(p: Partner, data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = ok(await p.gql(SIMULATE, {"input": data}))[
        "simulateIncomingPayment"]
    return result


async def receive(p: Partner, iban: str, key: str, **over: Any) -> dict[str, Any]:
    result = await simulate(p, incoming_input(iban, key, **over))
    assert result["__typename"] == "IncomingPayment", result
    return result


async def receiver(make_partner: MakePartner, jurisdiction: str = "EU",
                   extra: dict[str, int] | None = None) -> tuple[Partner, str]:
    """A partner whose first account (EUR unless ``extra`` says otherwise) has a DE IBAN."""
    p = await make_partner(jurisdiction, extra=extra or {"EUR": 1})
    vib = await issue(p, p.accounts[0], "DE", "vib")
    assert vib["__typename"] == "VirtualIban", vib
    iban: str = vib["iban"]
    return p, iban


async def suspended(p: Partner, key: str, **over: Any) -> dict[str, Any]:
    """A payment to an address nobody holds: suspense, with no tenant."""
    got = await receive(p, DE_IBAN, key, **over)
    assert (got["status"], got["suspenseReason"], got["accountId"]) == (
        "SUSPENSE", "UNKNOWN_ACCOUNT", None), got
    return got


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
    pytest.param({"idempotencyKey": "key\x00"}, "idempotencyKey", id="key-nul"),
    pytest.param({"amount": "0"}, "amount", id="amount-zero"),
    pytest.param({"amount": "0.00"}, "amount", id="amount-zero-decimals"),
    pytest.param({"amount": "-1"}, "amount", id="amount-negative"),
    pytest.param({"amount": "-0.01"}, "amount", id="amount-negative-cent"),
    pytest.param({"amount": "1.001"}, "amount", id="amount-3-decimals"),
    pytest.param({"amount": "abc"}, "amount", id="amount-letters"),
    pytest.param({"amount": ""}, "amount", id="amount-empty"),
    pytest.param({"amount": "1e3"}, "amount", id="amount-exponent"),
    pytest.param({"amount": "+1.00"}, "amount", id="amount-plus-sign"),
    pytest.param({"amount": " 1.00"}, "amount", id="amount-leading-space"),
    pytest.param({"amount": "1,00"}, "amount", id="amount-comma"),
    pytest.param({"amount": "NaN"}, "amount", id="amount-nan"),
    pytest.param({"amount": OVER_MAX_EUR}, "amount", id="amount-just-over-max"),
    pytest.param({"amount": "9" * 20}, "amount", id="amount-absurdly-large"),
    pytest.param({"amount": "1" * 41}, "amount", id="amount-41-characters"),
    pytest.param({"amount": "1.5", "currency": "JPY"}, "amount", id="amount-jpy-decimals"),
    pytest.param({"amount": "1.0001", "currency": "KWD"}, "amount", id="amount-kwd-4-decimals"),
    pytest.param({"currency": "ABC"}, "currency", id="currency-unknown"),
    pytest.param({"currency": "eur"}, "currency", id="currency-lowercase"),
    pytest.param({"currency": "XAU"}, "currency", id="currency-gold"),
    pytest.param({"currency": "XTS"}, "currency", id="currency-testing-code"),
    pytest.param({"currency": "EURO"}, "currency", id="currency-four-letters"),
    pytest.param({"currency": ""}, "currency", id="currency-empty"),
    pytest.param({"currency": " EUR"}, "currency", id="currency-space"),
    pytest.param({"iban": ""}, "iban", id="iban-empty"),
    pytest.param({"iban": "   "}, "iban", id="iban-blank"),
    pytest.param({"iban": "D" * (address_length_max + 1)}, "iban", id="iban-65"),
    pytest.param({"iban": "DE89\x00370400440532013000"}, "iban", id="iban-nul"),
    pytest.param({"iban": "DE89\t370400440532013000"}, "iban", id="iban-tab"),
    pytest.param({"iban": "DE89\n370400440532013000"}, "iban", id="iban-newline"),
    pytest.param({"iban": "DE89\x7f370400440532013000"}, "iban", id="iban-del"),
    pytest.param({"iban": "DE89\x1b370400440532013000"}, "iban", id="iban-escape"),
    pytest.param({"senderName": ""}, "senderName", id="sender-name-empty"),
    pytest.param({"senderName": "n" * (sender_name_length_max + 1)}, "senderName",
                 id="sender-name-141"),
    pytest.param({"senderName": "Erika\x00Mustermann"}, "senderName", id="sender-name-nul"),
    pytest.param({"senderName": "Erika\x1bMustermann"}, "senderName", id="sender-name-escape"),
    pytest.param({"senderName": "Erika\nMustermann"}, "senderName", id="sender-name-newline"),
    pytest.param({"senderName": "Erika\x7fMustermann"}, "senderName", id="sender-name-del"),
    pytest.param({"senderName": "Erika\x85Mustermann"}, "senderName",
                 id="sender-name-c1-control"),
    pytest.param({"reference": "r" * 141}, "reference", id="reference-141"),
    pytest.param({"reference": "inv\x00 9"}, "reference", id="reference-nul"),
    pytest.param({"reference": "inv\r\n9"}, "reference", id="reference-crlf"),
    pytest.param({"reference": "inv\x07 9"}, "reference", id="reference-bell"),
    pytest.param({"senderIban": "G" * (address_length_max + 1)}, "senderIban",
                 id="sender-iban-65"),
    pytest.param({"senderIban": "GB29\x00NWBK60161331926819"}, "senderIban",
                 id="sender-iban-nul"),
    pytest.param({"senderIban": "GB29\tNWBK60161331926819"}, "senderIban",
                 id="sender-iban-tab"),
])
async def test_simulate_bad_field(make_partner: MakePartner, ops: Partner,
                                  over: dict[str, Any], field: str) -> None:
    p, iban = await receiver(make_partner)
    before = await state(p, ops)
    assert_validation(await simulate(p, incoming_input(iban, "bad", **over)), field)
    await assert_nothing_written(p, before, ops)
    assert nodes(before, "incomingPayments") == []
    assert balance_of(before, p.accounts[0]) == ("0.00", "0.00", "0.00")


async def test_simulate_limits_inclusive(make_partner: MakePartner) -> None:
    """The control for the rejections above: every limit itself is accepted. The largest
    amount is far over the EU's review threshold, so the policies hold it in suspense for a
    compliance review rather than crediting it."""
    p, iban = await receiver(make_partner)
    got = await receive(p, iban, "k" * key_length_max, amount=LARGEST_EUR,
                        senderName="n" * sender_name_length_max, reference="r" * 140,
                        senderIban="G" * address_length_max)
    assert (got["status"], got["suspenseReason"], got["amount"]) == (
        "SUSPENSE", "POLICY_REVIEW", {"amount": LARGEST_EUR, "currency": "EUR"})
    assert (got["senderName"], got["reference"]) == ("n" * sender_name_length_max, "r" * 140)
    assert balance_of(await state(p), p.accounts[0]) == ("0.00", "0.00", "0.00")
    below_review = await receive(p, iban, "small", amount="14999.99",
                                 senderIban="DE89370400440532013000")
    assert (below_review["status"], below_review["accountId"]) == ("CREDITED", p.accounts[0])


async def test_simulate_rejected_input_leaves_the_key_unused(make_partner: MakePartner) -> None:
    p, iban = await receiver(make_partner)
    assert_validation(await simulate(p, incoming_input(iban, "retry", amount="1.001")),
                      "amount")
    assert_validation(await simulate(p, incoming_input(iban, "retry", currency="ABC")),
                      "currency")
    got = await receive(p, iban, "retry")
    assert (got["status"], got["amount"]["amount"]) == ("CREDITED", "25.00")


async def test_simulate_key_replayed_with_same_input(make_partner: MakePartner,
                                                     ops: Partner) -> None:
    p, iban = await receiver(make_partner)
    first = await receive(p, iban, "once")
    assert first["status"] == "CREDITED", first
    before = await state(p, ops)
    # The same address written in groups of four, lower case, is the same input.
    spaced = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)).lower()
    for data in (incoming_input(iban, "once"), incoming_input(spaced, "once")):
        assert await simulate(p, data) == first
    await assert_nothing_written(p, before, ops)
    assert [x["id"] for x in nodes(before, "incomingPayments")] == [first["id"]]
    assert balance_of(before, p.accounts[0]) == ("25.00", "0.00", "25.00")


async def test_simulate_key_replayed_for_a_suspended_payment(make_partner: MakePartner,
                                                             ops: Partner) -> None:
    p, _ = await receiver(make_partner)
    first = await suspended(p, "lost")
    before = await state(p, ops)
    assert await simulate(p, incoming_input(DE_IBAN, "lost")) == first
    await assert_nothing_written(p, before, ops)
    assert first["id"] in await suspense_items(ops)


async def test_simulate_key_reused_with_other_input(make_partner: MakePartner,
                                                    ops: Partner) -> None:
    p = await make_partner("EU", extra={"EUR": 2})
    iban = (await issue(p, p.accounts[0], "DE", "vib-0"))["iban"]
    other_iban = (await issue(p, p.accounts[1], "DE", "vib-1"))["iban"]
    first = await receive(p, iban, "reused")
    before = await state(p, ops)
    for over in ({"amount": "25.01"}, {"currency": "GBP"}, {"iban": other_iban},
                 {"iban": DE_IBAN}, {"senderName": "Max Mustermann"}, {"senderIban": None},
                 {"senderIban": CH_IBAN}, {"reference": None}, {"reference": "inv 10"}):
        result = await simulate(p, incoming_input(iban, "reused", **over))
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert result["idempotencyKey"] == "reused", (over, result)
    # A key first used by another mutation conflicts too.
    result = await simulate(p, incoming_input(iban, "vib-0"))
    assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
    await assert_nothing_written(p, before, ops)
    assert [x["id"] for x in nodes(before, "incomingPayments")] == [first["id"]]
    assert balance_of(before, p.accounts[1]) == ("0.00", "0.00", "0.00")


async def test_simulate_to_another_tenants_iban_is_not_credited(make_partner: MakePartner,
                                                                ops: Partner) -> None:
    """The sandbox credits only the caller's own addresses; another's lands in suspense."""
    p, _ = await receiver(make_partner)
    other, their_iban = await receiver(make_partner)
    other_before = await state(other)
    got = await receive(p, their_iban, "theirs")
    assert (got["status"], got["suspenseReason"], got["accountId"]) == (
        "SUSPENSE", "UNKNOWN_ACCOUNT", None), got
    await assert_nothing_written(other, other_before)
    assert nodes(await state(p), "incomingPayments") == []
    assert (await suspense_items(ops))[got["id"]] == "SUSPENSE"


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR, Role.SRE,
                                  Role.COMPLIANCE_OFFICER])
async def test_simulate_forbidden_for_non_admin_keys(make_partner: MakePartner, router: Router,
                                                     ops: Partner, role: Role) -> None:
    p, iban = await receiver(make_partner)
    before = await state(p, ops)
    key = await add_key(router, p, role)
    for target in (iban, DE_IBAN):
        assert_top_level(await p.gql(SIMULATE, {"input": incoming_input(target, "no")},
                                     key=key), "FORBIDDEN")
    await assert_nothing_written(p, before, ops)
    # The refused key stays free for the admin.
    assert (await receive(p, iban, "no"))["status"] == "CREDITED"


async def test_simulate_forbidden_for_readonly_partner(make_partner: MakePartner,
                                                       ops: Partner) -> None:
    p = await make_partner("EU", extra={"EUR": 1}, role=Role.PARTNER_READONLY)
    before = await state(p, ops)
    assert_top_level(await p.gql(SIMULATE, {"input": incoming_input(DE_IBAN, "ro")}),
                     "FORBIDDEN")
    await assert_nothing_written(p, before, ops)


@pytest.mark.parametrize(("over", "what"), [
    pytest.param({"amount": 25}, "amount as a number", id="amount-int"),
    pytest.param({"amount": None}, "amount null", id="amount-null"),
    pytest.param({"senderName": None}, "sender name null", id="sender-name-null"),
    pytest.param({"iban": ["DE89370400440532013000"]}, "iban as a list", id="iban-list"),
    pytest.param({"idempotencyKey": None}, "key null", id="key-null"),
    pytest.param({"unknownField": "x"}, "unknown field", id="unknown-field"),
])
async def test_simulate_wrong_graphql_types(make_partner: MakePartner, ops: Partner,
                                            over: dict[str, Any], what: str) -> None:
    p, iban = await receiver(make_partner)
    before = await state(p, ops)
    out = await p.gql(SIMULATE, {"input": incoming_input(iban, "types", **over)})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before, ops)


# --- refundIncomingPayment --------------------------------------------------------------------


async def refund(p: Partner, inc_id: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(await p.gql(REFUND, {"input": {
        "incomingPaymentId": inc_id, "idempotencyKey": key}}))["refundIncomingPayment"]
    return result


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"incomingPaymentId": "nope"}, "incomingPaymentId", id="garbage"),
    pytest.param({"incomingPaymentId": ""}, "incomingPaymentId", id="empty"),
    pytest.param({"incomingPaymentId": MISSING_EU_PAYOUT}, "incomingPaymentId", id="payout-id"),
    pytest.param({"incomingPaymentId": MISSING_EU_ACCOUNT}, "incomingPaymentId",
                 id="account-id"),
    pytest.param({"incomingPaymentId": f"inc_eu-central_{ULID.lower()}"}, "incomingPaymentId",
                 id="lowercase-ulid"),
    pytest.param({"incomingPaymentId": "inc_eu-central_" + "Z" * 26}, "incomingPaymentId",
                 id="ulid-overflow"),
    pytest.param({"incomingPaymentId": "inc_" + "x" * 80}, "incomingPaymentId", id="over-64"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
    pytest.param({"idempotencyKey": "key\x00"}, "idempotencyKey", id="key-nul"),
])
async def test_refund_bad_field(make_partner: MakePartner, over: dict[str, Any],
                                field: str) -> None:
    p, iban = await receiver(make_partner)
    payment = await receive(p, iban, "in")
    before = await state(p)
    data = {"incomingPaymentId": payment["id"], "idempotencyKey": "bad-refund", **over}
    out = ok(await p.gql(REFUND, {"input": data}))
    assert_validation(out["refundIncomingPayment"], field)
    await assert_nothing_written(p, before)
    assert statuses(before, "incomingPayments") == ["CREDITED"]


@pytest.mark.parametrize("inc_id", [MISSING_EU_INCOMING, MISSING_US_INCOMING],
                         ids=["own-region", "other-region"])
async def test_refund_unknown_payment(make_partner: MakePartner, inc_id: str) -> None:
    p, iban = await receiver(make_partner)
    await receive(p, iban, "in")
    before = await state(p)
    assert_error(await refund(p, inc_id, "unknown"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)


async def test_refund_another_tenants_payment(make_partner: MakePartner) -> None:
    p, _ = await receiver(make_partner)
    other, their_iban = await receiver(make_partner)
    theirs = await receive(other, their_iban, "in")
    before, other_before = await state(p), await state(other)
    result = await refund(p, theirs["id"], "steal")
    assert_error(result, "NotFound", "NOT_FOUND")
    assert "Erika" not in result["message"]
    await assert_nothing_written(p, before)
    await assert_nothing_written(other, other_before)
    assert statuses(other_before, "incomingPayments") == ["CREDITED"]
    assert balance_of(other_before, other.accounts[0]) == ("25.00", "0.00", "25.00")


async def test_refund_a_payment_in_suspense_without_tenant(make_partner: MakePartner,
                                                           ops: Partner) -> None:
    """Money to an unknown address belongs to no tenant yet: NotFound for the sender."""
    p, _ = await receiver(make_partner)
    lost = await suspended(p, "lost")
    before = await state(p, ops)
    assert_error(await refund(p, lost["id"], "refund-lost"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[lost["id"]] == "SUSPENSE"


async def test_refund_own_payment_in_suspense(make_partner: MakePartner, ops: Partner) -> None:
    """GBP to a EUR account waits in suspense under the tenant: not refundable by it."""
    p, iban = await receiver(make_partner)
    held = await receive(p, iban, "gbp", currency="GBP")
    assert (held["status"], held["suspenseReason"]) == ("SUSPENSE", "CURRENCY_MISMATCH"), held
    before = await state(p, ops)
    assert_error(await refund(p, held["id"], "refund-gbp"), "NotRefundable", "NOT_REFUNDABLE")
    await assert_nothing_written(p, before, ops)
    assert statuses(before, "incomingPayments") == ["SUSPENSE"]


@pytest.mark.parametrize("sender_iban", [None, "", "NOTANIBAN", GB_IBAN_BAD_CHECK],
                         ids=["none", "empty", "garbage", "bad-check-digits"])
async def test_refund_without_a_sender_account(make_partner: MakePartner,
                                               sender_iban: str | None) -> None:
    p, iban = await receiver(make_partner)
    payment = await receive(p, iban, "in", senderIban=sender_iban)
    assert payment["status"] == "CREDITED", payment
    before = await state(p)
    assert_error(await refund(p, payment["id"], "refund"), "NotRefundable", "NOT_REFUNDABLE")
    await assert_nothing_written(p, before)
    assert statuses(before, "incomingPayments") == ["CREDITED"]
    assert nodes(before, "beneficiaries") == []
    # The refusal used no key: a refundable payment may take it.
    good = await receive(p, iban, "in-2")
    assert (await refund(p, good["id"], "refund"))["__typename"] == "Payout"


async def test_refund_twice(make_partner: MakePartner) -> None:
    p, iban = await receiver(make_partner)
    payment = await receive(p, iban, "in")
    first = await refund(p, payment["id"], "r1")
    assert (first["__typename"], first["status"], first["amount"], first["fee"]) == (
        "Payout", "PENDING", {"amount": "25.00", "currency": "EUR"}, {"amount": "0.00"}), first
    before = await state(p)
    assert statuses(before, "incomingPayments") == ["REFUNDED"]
    assert balance_of(before, p.accounts[0]) == ("25.00", "-25.00", "0.00")
    assert await refund(p, payment["id"], "r1") == first
    assert_error(await refund(p, payment["id"], "r2"), "NotRefundable", "NOT_REFUNDABLE")
    await assert_nothing_written(p, before)
    assert [x["id"] for x in nodes(before, "payouts")] == [first["id"]]
    assert len(nodes(before, "beneficiaries")) == 1


async def test_refund_key_reused_for_another_payment(make_partner: MakePartner) -> None:
    p, iban = await receiver(make_partner)
    paid = await receive(p, iban, "in-1")
    other = await receive(p, iban, "in-2", amount="7.00")
    first = await refund(p, paid["id"], "r1")
    assert first["__typename"] == "Payout", first
    before = await state(p)
    conflict = await refund(p, other["id"], "r1")
    assert_error(conflict, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
    assert conflict["idempotencyKey"] == "r1"
    # A key first used to receive the payment is not a refund's key either.
    assert_error(await refund(p, other["id"], "in-2"), "IdempotencyConflict",
                 "IDEMPOTENCY_CONFLICT")
    await assert_nothing_written(p, before)
    assert sorted(statuses(before, "incomingPayments")) == ["CREDITED", "REFUNDED"]


async def test_refund_of_money_already_spent(make_partner: MakePartner) -> None:
    """The refund fails for want of funds; its beneficiary is not left behind."""
    p, iban = await receiver(make_partner, extra={"EUR": 2})
    payment = await receive(p, iban, "in", amount="80.00")
    moved = ok(await p.gql(TRANSFER, {"input": {
        "fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": "50.00",
        "currency": "EUR", "idempotencyKey": "spend"}}))["createTransfer"]
    assert moved["__typename"] == "Transfer", moved
    before = await state(p)
    result = await refund(p, payment["id"], "refund")
    assert_error(result, "InsufficientFunds", "INSUFFICIENT_FUNDS")
    assert result["accountId"] == p.accounts[0]
    await assert_nothing_written(p, before)
    assert statuses(before, "incomingPayments") == ["CREDITED"]
    assert nodes(before, "beneficiaries") == []
    assert balance_of(before, p.accounts[0]) == ("30.00", "0.00", "30.00")


async def test_concurrent_refunds_pay_back_once(make_partner: MakePartner) -> None:
    p, iban = await receiver(make_partner)
    payment = await receive(p, iban, "in")
    racing = 5
    results = await race(p, REFUND, [{"incomingPaymentId": payment["id"],
                                      "idempotencyKey": f"race-{i}"} for i in range(racing)])
    kinds = sorted(r["refundIncomingPayment"]["__typename"] for r in results)
    assert kinds == ["NotRefundable"] * (racing - 1) + ["Payout"], results
    after = await state(p)
    assert len(nodes(after, "payouts")) == 1
    assert len(nodes(after, "beneficiaries")) == 1
    assert balance_of(after, p.accounts[0]) == ("25.00", "-25.00", "0.00")


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR, Role.SRE,
                                  Role.COMPLIANCE_OFFICER])
async def test_refund_forbidden_for_non_admin_keys(make_partner: MakePartner, router: Router,
                                                   role: Role) -> None:
    p, iban = await receiver(make_partner)
    payment = await receive(p, iban, "in")
    before = await state(p)
    key = await add_key(router, p, role)
    assert_top_level(await p.gql(REFUND, {"input": {
        "incomingPaymentId": payment["id"], "idempotencyKey": "no"}}, key=key), "FORBIDDEN")
    await assert_nothing_written(p, before)
    assert (await refund(p, payment["id"], "no"))["__typename"] == "Payout"


# --- assignIncomingPayment / returnIncomingPayment (operators) --------------------------------


async def assign(ops: Partner, inc_id: str, account_id: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(await ops.gql(ASSIGN, {"input": {
        "incomingPaymentId": inc_id, "accountId": account_id, "idempotencyKey": key}}))[
        "assignIncomingPayment"]
    return result


async def send_back(ops: Partner, inc_id: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(await ops.gql(RETURN, {"input": {
        "incomingPaymentId": inc_id, "idempotencyKey": key}}))["returnIncomingPayment"]
    return result


BAD_INCOMING_IDS = [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(MISSING_EU_PAYOUT, id="payout-id"),
    pytest.param(MISSING_EU_ACCOUNT, id="account-id"),
    pytest.param(f"inc_eu-central_{ULID.lower()}", id="lowercase-ulid"),
    pytest.param("inc_" + "x" * 80, id="over-64"),
]


@pytest.mark.parametrize("inc_id", BAD_INCOMING_IDS)
async def test_assign_and_return_malformed_incoming_id(make_partner: MakePartner, ops: Partner,
                                                       inc_id: str) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    item = await suspended(p, "in")
    before = await state(p, ops)
    assert_validation(await assign(ops, inc_id, p.accounts[0], "bad"), "incomingPaymentId")
    assert_validation(await send_back(ops, inc_id, "bad"), "incomingPaymentId")
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[item["id"]] == "SUSPENSE"


@pytest.mark.parametrize("account_id", [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(TRANSFER_ID, id="transfer-id"),
    pytest.param(MISSING_EU_BENEFICIARY, id="beneficiary-id"),
    pytest.param(f"acc_eu-central_{ULID.lower()}", id="lowercase-ulid"),
    pytest.param("acc_" + "x" * 80, id="over-64"),
])
async def test_assign_malformed_account_id(make_partner: MakePartner, ops: Partner,
                                           account_id: str) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    item = await suspended(p, "in")
    before = await state(p, ops)
    assert_validation(await assign(ops, item["id"], account_id, "bad"), "accountId")
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[item["id"]] == "SUSPENSE"


@pytest.mark.parametrize("key", ["", "k" * (key_length_max + 1), "key\x00"],
                         ids=["empty", "256", "nul"])
async def test_assign_and_return_bad_idempotency_key(make_partner: MakePartner, ops: Partner,
                                                     key: str) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    item = await suspended(p, "in")
    before = await state(p, ops)
    assert_validation(await assign(ops, item["id"], p.accounts[0], key), "idempotencyKey")
    assert_validation(await send_back(ops, item["id"], key), "idempotencyKey")
    await assert_nothing_written(p, before, ops)


@pytest.mark.parametrize("inc_id", [MISSING_EU_INCOMING, MISSING_US_INCOMING],
                         ids=["own-region", "other-region"])
async def test_assign_and_return_unknown_payment(make_partner: MakePartner, ops: Partner,
                                                 inc_id: str) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    await suspended(p, "in")
    before = await state(p, ops)
    assert_error(await assign(ops, inc_id, p.accounts[0], "unknown-a"), "NotFound",
                 "NOT_FOUND")
    assert_error(await send_back(ops, inc_id, "unknown-r"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before, ops)


@pytest.mark.parametrize("account_id", [MISSING_EU_ACCOUNT, MISSING_US_ACCOUNT],
                         ids=["own-region", "other-region"])
async def test_assign_to_unknown_account(make_partner: MakePartner, ops: Partner,
                                         account_id: str) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    item = await suspended(p, "in")
    before = await state(p, ops)
    assert_error(await assign(ops, item["id"], account_id, "assign"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[item["id"]] == "SUSPENSE"
    # The refusal used no key.
    done = await assign(ops, item["id"], p.accounts[0], "assign")
    assert (done["status"], done["accountId"]) == ("ASSIGNED", p.accounts[0]), done


async def test_assign_to_an_account_of_another_region(make_partner: MakePartner,
                                                      ops: Partner) -> None:
    """An existing account in us-east is out of an eu-central operator's reach."""
    p = await make_partner("EU", extra={"EUR": 1})
    us = await make_partner("US", funded={"USD": 100_00})
    assert us.region == "us-east", us.region
    item = await suspended(p, "in-usd", currency="USD")
    before, us_before = await state(p, ops), await state(us)
    assert_error(await assign(ops, item["id"], us.accounts[0], "assign-us"), "NotFound",
                 "NOT_FOUND")
    await assert_nothing_written(p, before, ops)
    await assert_nothing_written(us, us_before)
    assert balance_of(us_before, us.accounts[0]) == ("100.00", "0.00", "100.00")


async def test_operator_of_another_region_cannot_see_the_item(make_partner: MakePartner,
                                                              ops: Partner) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    us_ops = await make_partner("US", role=Role.SRE)
    item = await suspended(p, "in")
    before = await state(p, ops)
    assert_error(await assign(us_ops, item["id"], p.accounts[0], "far-a"), "NotFound",
                 "NOT_FOUND")
    assert_error(await send_back(us_ops, item["id"], "far-r"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before, ops)
    assert item["id"] not in await suspense_items(us_ops)


async def test_assign_and_return_a_credited_payment(make_partner: MakePartner,
                                                    ops: Partner) -> None:
    p, iban = await receiver(make_partner, extra={"EUR": 2})
    credited = await receive(p, iban, "in")
    assert credited["status"] == "CREDITED", credited
    before = await state(p, ops)
    assert_error(await assign(ops, credited["id"], p.accounts[1], "a"), "NotInSuspense",
                 "NOT_IN_SUSPENSE")
    assert_error(await send_back(ops, credited["id"], "r"), "NotInSuspense", "NOT_IN_SUSPENSE")
    await assert_nothing_written(p, before, ops)
    assert statuses(before, "incomingPayments") == ["CREDITED"]
    assert balance_of(before, p.accounts[0]) == ("25.00", "0.00", "25.00")
    assert balance_of(before, p.accounts[1]) == ("0.00", "0.00", "0.00")


async def test_assign_and_return_a_resolved_payment(make_partner: MakePartner,
                                                    ops: Partner) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    returned = await suspended(p, "in-1")
    assigned = await suspended(p, "in-2")
    assert (await send_back(ops, returned["id"], "r-1"))["status"] == "RETURNED"
    assert (await assign(ops, assigned["id"], p.accounts[0], "a-1"))["status"] == "ASSIGNED"
    before = await state(p, ops)
    for item in (returned, assigned):
        assert_error(await assign(ops, item["id"], p.accounts[0], f"a-{item['id']}"),
                     "NotInSuspense", "NOT_IN_SUSPENSE")
        assert_error(await send_back(ops, item["id"], f"r-{item['id']}"), "NotInSuspense",
                     "NOT_IN_SUSPENSE")
    await assert_nothing_written(p, before, ops)
    assert balance_of(before, p.accounts[0]) == ("25.00", "0.00", "25.00")


async def test_assign_currency_mismatch_keeps_the_item_in_suspense(make_partner: MakePartner,
                                                                   ops: Partner) -> None:
    p = await make_partner("EU", extra={"EUR": 1, "GBP": 1})
    eur_account, gbp_account = p.accounts
    item = await suspended(p, "in")
    before = await state(p, ops)
    result = await assign(ops, item["id"], gbp_account, "assign")
    assert_error(result, "CurrencyMismatch", "CURRENCY_MISMATCH")
    assert result["mismatchedAccountId"] == gbp_account
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[item["id"]] == "SUSPENSE"
    assert balance_of(before, gbp_account) == ("0.00", "0.00", "0.00")
    # The refusal used no key; the item can still go to the right account.
    done = await assign(ops, item["id"], eur_account, "assign")
    assert (done["status"], done["accountId"]) == ("ASSIGNED", eur_account), done
    assert balance_of(await state(p), eur_account) == ("25.00", "0.00", "25.00")


async def test_operator_key_reused_with_other_input(make_partner: MakePartner,
                                                    ops: Partner) -> None:
    p = await make_partner("EU", extra={"EUR": 2})
    first_item = await suspended(p, "in-1")
    second_item = await suspended(p, "in-2")
    first = await assign(ops, first_item["id"], p.accounts[0], "op-key")
    assert first["status"] == "ASSIGNED", first
    before = await state(p, ops)
    assert await assign(ops, first_item["id"], p.accounts[0], "op-key") == first
    for result in (await assign(ops, first_item["id"], p.accounts[1], "op-key"),
                   await assign(ops, second_item["id"], p.accounts[0], "op-key"),
                   await send_back(ops, second_item["id"], "op-key")):
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert result["idempotencyKey"] == "op-key"
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[second_item["id"]] == "SUSPENSE"


@pytest.mark.parametrize("role", [Role.PARTNER_ADMIN, Role.PARTNER_READONLY, Role.AUDITOR,
                                  Role.COMPLIANCE_OFFICER])
async def test_only_operators_resolve_suspense(make_partner: MakePartner, router: Router,
                                               ops: Partner, role: Role) -> None:
    p = await make_partner("EU", extra={"EUR": 1})
    item = await suspended(p, "in")
    key = p.key if role is Role.PARTNER_ADMIN else await add_key(router, p, role)
    before = await state(p, ops)
    assert_top_level(await p.gql(ASSIGN, {"input": {
        "incomingPaymentId": item["id"], "accountId": p.accounts[0], "idempotencyKey": "a"}},
        key=key), "FORBIDDEN")
    assert_top_level(await p.gql(RETURN, {"input": {
        "incomingPaymentId": item["id"], "idempotencyKey": "r"}}, key=key), "FORBIDDEN")
    assert_top_level(await p.gql(SUSPENSE, key=key), "FORBIDDEN")
    await assert_nothing_written(p, before, ops)
    assert (await suspense_items(ops))[item["id"]] == "SUSPENSE"


# --- createPayoutBatch ------------------------------------------------------------------------


async def payer(make_partner: MakePartner, funded_minor: int = 100_00,
                extra: dict[str, int] | None = None) -> tuple[Partner, str, str]:
    """A partner with a funded EUR account, a EUR beneficiary (DE) and a USD one (US)."""
    p = await make_partner("EU", funded={"EUR": funded_minor}, extra=extra)
    eur = await add_beneficiary(p, de_beneficiary("ben-eur"))
    usd = await add_beneficiary(p, us_beneficiary("ben-usd"))
    return p, eur, usd


def batch_items(ben: str, amounts: list[str]) -> list[dict[str, Any]]:
    return [{"beneficiaryId": ben, "amount": a, "currency": "EUR", "reference": f"item {i}",
             "externalId": f"x{i}"} for i, a in enumerate(amounts)]


async def create_batch(p: Partner, items: list[dict[str, Any]], key: str, atomic: bool = False,
                       account_id: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = ok(await p.gql(BATCH, {"input": {
        "accountId": account_id or p.accounts[0], "items": items, "atomic": atomic,
        "idempotencyKey": key}}))["createPayoutBatch"]
    return result


def rejected(batch: dict[str, Any]) -> list[tuple[int, str]]:
    assert batch["__typename"] == "PayoutBatch", batch
    assert all(r["message"] for r in batch["rejected"]), batch
    return [(r["index"], r["code"]) for r in batch["rejected"]]


def assert_batch_rejected(result: dict[str, Any], index: int, reason: str) -> None:
    assert_error(result, "PayoutBatchRejected", "BATCH_ITEM_REJECTED")
    assert (result["index"], result["reasonCode"]) == (index, reason), result


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"accountId": "nope"}, "accountId", id="account-garbage"),
    pytest.param({"accountId": ""}, "accountId", id="account-empty"),
    pytest.param({"accountId": TRANSFER_ID}, "accountId", id="account-transfer-id"),
    pytest.param({"accountId": MISSING_EU_BENEFICIARY}, "accountId", id="account-ben-id"),
    pytest.param({"accountId": f"acc_eu-central_{ULID.lower()}"}, "accountId",
                 id="account-lowercase-ulid"),
    pytest.param({"accountId": "acc_" + "x" * 80}, "accountId", id="account-over-64"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
    pytest.param({"idempotencyKey": "key\x00"}, "idempotencyKey", id="key-nul"),
    pytest.param({"items": []}, "items", id="no-items"),
])
@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "non-atomic"])
async def test_batch_bad_field(make_partner: MakePartner, over: dict[str, Any], field: str,
                               atomic: bool) -> None:
    p, eur, _ = await payer(make_partner)
    before = await state(p)
    data = {"accountId": p.accounts[0], "items": batch_items(eur, ["10.00", "1.001"]),
            "atomic": atomic, "idempotencyKey": "bad", **over}
    assert_validation(ok(await p.gql(BATCH, {"input": data}))["createPayoutBatch"], field)
    await assert_nothing_written(p, before)
    assert nodes(before, "payouts") == []


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "non-atomic"])
async def test_batch_over_the_item_limit(make_partner: MakePartner, atomic: bool) -> None:
    p, eur, _ = await payer(make_partner)
    before = await state(p)
    item = {"beneficiaryId": eur, "amount": "0.01", "currency": "EUR"}
    result = await create_batch(p, [item] * (batch_items_max + 1), "too-many", atomic=atomic)
    assert_validation(result, "items")
    assert str(batch_items_max) in result["message"]
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("account_id", [MISSING_EU_ACCOUNT, MISSING_US_ACCOUNT],
                         ids=["own-region", "other-region"])
async def test_batch_unknown_account(make_partner: MakePartner, account_id: str) -> None:
    p, eur, _ = await payer(make_partner)
    before = await state(p)
    for atomic in (True, False):
        result = await create_batch(p, batch_items(eur, ["10.00"]), f"unknown-{atomic}",
                                    atomic=atomic, account_id=account_id)
        assert_error(result, "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("other_jurisdiction", ["EU", "UK"])
async def test_batch_from_another_tenants_account(make_partner: MakePartner,
                                                  other_jurisdiction: str) -> None:
    p, eur, _ = await payer(make_partner)
    other = await make_partner(other_jurisdiction, funded={"EUR": 100_00})
    before, other_before = await state(p), await state(other)
    for atomic in (True, False):
        result = await create_batch(p, batch_items(eur, ["10.00"]), f"theirs-{atomic}",
                                    atomic=atomic, account_id=other.accounts[0])
        assert_error(result, "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)
    await assert_nothing_written(other, other_before)
    assert balance_of(other_before, other.accounts[0]) == ("100.00", "0.00", "100.00")


ItemOver = Callable[[str, str], dict[str, Any]]


@pytest.mark.parametrize(("over", "code", "named"), [
    pytest.param(lambda eur, usd: {"amount": "1.001"}, "VALIDATION_ERROR", None,
                 id="amount-3-decimals"),
    pytest.param(lambda eur, usd: {"amount": "0"}, "VALIDATION_ERROR", None, id="amount-zero"),
    pytest.param(lambda eur, usd: {"amount": "-1"}, "VALIDATION_ERROR", None,
                 id="amount-negative"),
    pytest.param(lambda eur, usd: {"amount": "abc"}, "VALIDATION_ERROR", None,
                 id="amount-letters"),
    pytest.param(lambda eur, usd: {"amount": OVER_MAX_EUR}, "VALIDATION_ERROR", None,
                 id="amount-over-max"),
    pytest.param(lambda eur, usd: {"currency": "ABC"}, "VALIDATION_ERROR", None,
                 id="currency-unknown"),
    pytest.param(lambda eur, usd: {"currency": "eur"}, "VALIDATION_ERROR", None,
                 id="currency-lowercase"),
    pytest.param(lambda eur, usd: {"beneficiaryId": "nope"}, "VALIDATION_ERROR",
                 "items[2].beneficiaryId", id="beneficiary-garbage"),
    pytest.param(lambda eur, usd: {"beneficiaryId": MISSING_EU_PAYOUT}, "VALIDATION_ERROR",
                 "items[2].beneficiaryId", id="beneficiary-payout-id"),
    pytest.param(lambda eur, usd: {"externalId": "x0"}, "VALIDATION_ERROR", None,
                 id="external-id-duplicate"),
    pytest.param(lambda eur, usd: {"externalId": "e" * (external_id_length_max + 1)},
                 "VALIDATION_ERROR", "items[2].externalId", id="external-id-65"),
    pytest.param(lambda eur, usd: {"externalId": ""}, "VALIDATION_ERROR",
                 "items[2].externalId", id="external-id-empty"),
    pytest.param(lambda eur, usd: {"externalId": "x\x00"}, "VALIDATION_ERROR",
                 "items[2].externalId", id="external-id-nul"),
    pytest.param(lambda eur, usd: {"reference": "r" * (reference_length_max + 1)},
                 "VALIDATION_ERROR", "items[2].reference", id="reference-141"),
    pytest.param(lambda eur, usd: {"reference": "item\x00"}, "VALIDATION_ERROR",
                 "items[2].reference", id="reference-nul"),
    pytest.param(lambda eur, usd: {"currency": "USD"}, "VALIDATION_ERROR", None,
                 id="currency-not-the-beneficiarys"),
    pytest.param(lambda eur, usd: {"beneficiaryId": MISSING_EU_BENEFICIARY}, "NOT_FOUND", None,
                 id="beneficiary-unknown"),
    pytest.param(lambda eur, usd: {"beneficiaryId": MISSING_UK_BENEFICIARY}, "NOT_FOUND", None,
                 id="beneficiary-other-region"),
    pytest.param(lambda eur, usd: {"beneficiaryId": usd, "currency": "USD"},
                 "CURRENCY_MISMATCH", None, id="currency-not-the-accounts"),
])
async def test_batch_bad_item(make_partner: MakePartner, over: ItemOver, code: str,
                              named: str | None) -> None:
    p, eur, usd = await payer(make_partner)
    items = batch_items(eur, ["10.00"] * 4)
    items[2] = {**items[2], **over(eur, usd)}
    before = await state(p)
    assert_batch_rejected(await create_batch(p, items, "atomic", atomic=True), 2, code)
    await assert_nothing_written(p, before)
    batch = await create_batch(p, items, "partial")
    assert rejected(batch) == [(2, code)]
    assert (batch["itemCount"], batch["pending"], batch["status"]) == (4, 3, "PROCESSING")
    if named is not None:
        assert named in batch["rejected"][0]["message"], batch
    after = await state(p)
    assert [(x["status"], x["amount"]["amount"]) for x in nodes(after, "payouts")] == [
        ("PENDING", "10.00")] * 3
    assert balance_of(after, p.accounts[0]) == ("100.00", "-31.05", "68.95")


async def test_batch_item_with_another_tenants_beneficiary(make_partner: MakePartner) -> None:
    p, eur, _ = await payer(make_partner)
    other = await make_partner("EU", funded={"EUR": 100_00})
    theirs = await add_beneficiary(other, de_beneficiary("theirs"))
    items = batch_items(eur, ["10.00"] * 3)
    items[1]["beneficiaryId"] = theirs
    before, other_before = await state(p), await state(other)
    assert_batch_rejected(await create_batch(p, items, "atomic", atomic=True), 1, "NOT_FOUND")
    await assert_nothing_written(p, before)
    batch = await create_batch(p, items, "partial")
    assert rejected(batch) == [(1, "NOT_FOUND")]
    assert "Erika" not in batch["rejected"][0]["message"]
    await assert_nothing_written(other, other_before)
    assert len(nodes(await state(p), "payouts")) == 2


async def test_batch_with_many_bad_items(make_partner: MakePartner) -> None:
    """Every item gets its own outcome, in index order; only the good ones are held."""
    p, eur, usd = await payer(make_partner)
    items = batch_items(eur, ["10.00"] * 9)
    items[1]["amount"] = "1.001"
    items[2]["beneficiaryId"] = MISSING_EU_BENEFICIARY
    items[3]["externalId"] = "x0"
    items[4] = {**items[4], "beneficiaryId": usd, "currency": "USD"}
    items[6]["currency"] = "ABC"
    items[7]["beneficiaryId"] = "nope"
    batch = await create_batch(p, items, "many")
    assert rejected(batch) == [(1, "VALIDATION_ERROR"), (2, "NOT_FOUND"),
                               (3, "VALIDATION_ERROR"), (4, "CURRENCY_MISMATCH"),
                               (6, "VALIDATION_ERROR"), (7, "VALIDATION_ERROR")]
    assert (batch["itemCount"], batch["pending"]) == (9, 3)
    after = await state(p)
    assert len(nodes(after, "payouts")) == 3
    assert balance_of(after, p.accounts[0]) == ("100.00", "-31.05", "68.95")


async def test_batch_of_bad_items_only_holds_nothing(make_partner: MakePartner) -> None:
    p, eur, _ = await payer(make_partner)
    items = batch_items(eur, ["1.001", "0", "abc"])
    before = await state(p)
    batch = await create_batch(p, items, "all-bad")
    assert rejected(batch) == [(0, "VALIDATION_ERROR"), (1, "VALIDATION_ERROR"),
                               (2, "VALIDATION_ERROR")]
    assert (batch["status"], batch["itemCount"], batch["pending"]) == ("COMPLETED", 3, 0)
    await assert_nothing_written(p, before)


async def test_atomic_batch_names_the_first_item_at_fault(make_partner: MakePartner) -> None:
    """Item 1's beneficiary is unknown and item 3's amount malformed: the first at fault is
    item 1, as the non-atomic answer for the same items shows."""
    p, eur, _ = await payer(make_partner)
    items = batch_items(eur, ["10.00"] * 4)
    items[1]["beneficiaryId"] = MISSING_EU_BENEFICIARY
    items[3]["amount"] = "1.001"
    before = await state(p)
    result = await create_batch(p, items, "atomic", atomic=True)
    await assert_nothing_written(p, before)
    partial = await create_batch(p, items, "partial")
    assert rejected(partial) == [(1, "NOT_FOUND"), (3, "VALIDATION_ERROR")]
    assert_batch_rejected(result, 1, "NOT_FOUND")


@pytest.mark.parametrize(("amounts", "short", "balance"), [
    pytest.param(["30.00"] * 5, [3, 4], ("100.00", "-91.05", "8.95"), id="runs-out"),
    pytest.param(["33.00"] * 3, [2], ("100.00", "-66.70", "33.30"), id="fee-tips-over"),
    pytest.param(["99.65", "0.01"], [1], ("100.00", "-100.00", "0.00"), id="exactly-spent"),
    pytest.param(["100.00"], [0], ("100.00", "0.00", "100.00"), id="fee-on-everything"),
])
async def test_batch_funds_exhausted_part_way(make_partner: MakePartner, amounts: list[str],
                                              short: list[int],
                                              balance: tuple[str, str, str]) -> None:
    p, eur, _ = await payer(make_partner)
    items = batch_items(eur, amounts)
    before = await state(p)
    assert_batch_rejected(await create_batch(p, items, "atomic", atomic=True), short[0],
                          "INSUFFICIENT_FUNDS")
    await assert_nothing_written(p, before)
    batch = await create_batch(p, items, "partial")
    assert rejected(batch) == [(i, "INSUFFICIENT_FUNDS") for i in short]
    assert batch["pending"] == len(amounts) - len(short)
    after = await state(p)
    assert sorted(x["amount"]["amount"] for x in nodes(after, "payouts")) == sorted(
        a for i, a in enumerate(amounts) if i not in short)
    assert balance_of(after, p.accounts[0]) == balance


async def test_batch_key_replayed(make_partner: MakePartner) -> None:
    p, eur, _ = await payer(make_partner)
    items = batch_items(eur, ["10.00", "1.001", "20.00", "5.00"])
    items[3]["beneficiaryId"] = MISSING_EU_BENEFICIARY
    first = await create_batch(p, items, "batch")
    assert rejected(first) == [(1, "VALIDATION_ERROR"), (3, "NOT_FOUND")]
    before = await state(p)
    again = await create_batch(p, items, "batch")
    assert again == first
    await assert_nothing_written(p, before)
    assert len(nodes(before, "payouts")) == 2
    assert balance_of(before, p.accounts[0]) == ("100.00", "-30.70", "69.30")


async def test_batch_key_reused_with_other_input(make_partner: MakePartner) -> None:
    p, eur, _ = await payer(make_partner, extra={"EUR": 1})
    eur_2 = await add_beneficiary(p, de_beneficiary("ben-eur-2", name="Max Mustermann"))
    items = batch_items(eur, ["10.00", "20.00", "5.00"])
    items[2]["beneficiaryId"] = MISSING_EU_BENEFICIARY
    first = await create_batch(p, items, "batch")
    assert rejected(first) == [(2, "NOT_FOUND")]
    before = await state(p)

    def changed(index: int, **over: Any) -> list[dict[str, Any]]:
        out = [dict(i) for i in items]
        out[index] = {**out[index], **over}
        return out

    for other_items, atomic, account in (
            (changed(0, amount="10.01"), False, None),
            (changed(0, beneficiaryId=eur_2), False, None),
            (changed(1, reference="other"), False, None),
            (changed(1, externalId="y1"), False, None),
            (items[:2], False, None),
            ([*items, items[0] | {"externalId": "x3"}], False, None),
            (items, True, None),
            (items, False, p.accounts[1])):
        result = await create_batch(p, other_items, "batch", atomic=atomic, account_id=account)
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert result["idempotencyKey"] == "batch"
    await assert_nothing_written(p, before)
    assert len(nodes(before, "payouts")) == 2


async def test_batch_key_reused_with_other_fields_of_a_rejected_item(
        make_partner: MakePartner) -> None:
    """A different beneficiary, reference and externalId on an item that is refused for its
    amount is still a different input for the same key."""
    p, eur, _ = await payer(make_partner)
    eur_2 = await add_beneficiary(p, de_beneficiary("ben-eur-2", name="Max Mustermann"))
    items = batch_items(eur, ["10.00", "1.001"])
    first = await create_batch(p, items, "batch")
    assert rejected(first) == [(1, "VALIDATION_ERROR")]
    before = await state(p)
    other_items = [items[0], {**items[1], "beneficiaryId": eur_2, "reference": "other",
                              "externalId": "y1"}]
    result = await create_batch(p, other_items, "batch")
    assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
    await assert_nothing_written(p, before)


async def test_batch_rejected_request_leaves_the_key_unused(make_partner: MakePartner) -> None:
    p, eur, _ = await payer(make_partner)
    items = batch_items(eur, ["10.00", "95.00"])
    assert_validation(await create_batch(p, [], "retry"), "items")
    assert_error(await create_batch(p, items, "retry", account_id=MISSING_EU_ACCOUNT),
                 "NotFound", "NOT_FOUND")
    assert_batch_rejected(await create_batch(p, items, "retry", atomic=True), 1,
                          "INSUFFICIENT_FUNDS")
    batch = await create_batch(p, items[:1], "retry", atomic=True)
    assert (batch["__typename"], batch["pending"], batch["rejected"]) == ("PayoutBatch", 1, [])


@pytest.mark.parametrize(("over", "what"), [
    pytest.param({"items": None}, "items null", id="items-null"),
    pytest.param({"atomic": "yes"}, "atomic as a string", id="atomic-string"),
    pytest.param({"atomic": None}, "atomic null", id="atomic-null"),
    pytest.param({"accountId": None}, "account null", id="account-null"),
    pytest.param({"idempotencyKey": 42}, "key as a number", id="key-int"),
    pytest.param({"items": [{"beneficiaryId": "x", "amount": 10, "currency": "EUR"}]},
                 "amount as a number", id="item-amount-int"),
    pytest.param({"items": [{"amount": "10.00", "currency": "EUR"}]}, "no beneficiary",
                 id="item-without-beneficiary"),
    pytest.param({"items": [{"beneficiaryId": "x", "amount": "1.00", "currency": "EUR",
                             "purposeCode": "SUPP"}]}, "unknown item field",
                 id="item-unknown-field"),
])
async def test_batch_wrong_graphql_types(make_partner: MakePartner, over: dict[str, Any],
                                         what: str) -> None:
    p, eur, _ = await payer(make_partner)
    before = await state(p)
    data = {"accountId": p.accounts[0], "items": batch_items(eur, ["10.00"]), "atomic": False,
            "idempotencyKey": "types", **over}
    out = await p.gql(BATCH, {"input": data})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("batch_id", [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(MISSING_EU_PAYOUT, id="payout-id"),
    pytest.param(f"pbt_eu-central_{ULID.lower()}", id="lowercase-ulid"),
    pytest.param("pbt_" + "x" * 100, id="long"),
    pytest.param(MISSING_EU_BATCH, id="unknown"),
    pytest.param(MISSING_US_BATCH, id="other-region"),
])
async def test_payout_batch_query_not_found(make_partner: MakePartner, batch_id: str) -> None:
    p, eur, _ = await payer(make_partner)
    mine = await create_batch(p, batch_items(eur, ["10.00"]), "mine")
    assert mine["__typename"] == "PayoutBatch", mine
    result = ok(await p.gql(GET_BATCH, {"id": batch_id}))["payoutBatch"]
    assert_error(result, "NotFound", "NOT_FOUND")


async def test_payout_batch_query_of_another_tenant(make_partner: MakePartner) -> None:
    p, _, _ = await payer(make_partner)
    other, their_ben, _ = await payer(make_partner)
    theirs = await create_batch(other, batch_items(their_ben, ["10.00"]), "theirs")
    result = ok(await p.gql(GET_BATCH, {"id": theirs["id"]}))["payoutBatch"]
    assert_error(result, "NotFound", "NOT_FOUND")
    mine = ok(await other.gql(GET_BATCH, {"id": theirs["id"]}))["payoutBatch"]
    assert (mine["__typename"], mine["id"]) == ("PayoutBatch", theirs["id"])


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR, Role.SRE,
                                  Role.COMPLIANCE_OFFICER])
async def test_batch_forbidden_for_non_admin_keys(make_partner: MakePartner, router: Router,
                                                  role: Role) -> None:
    p, eur, _ = await payer(make_partner)
    mine = await create_batch(p, batch_items(eur, ["10.00"]), "mine")
    before = await state(p)
    key = await add_key(router, p, role)
    assert_top_level(await p.gql(BATCH, {"input": {
        "accountId": p.accounts[0], "items": batch_items(eur, ["5.00"]),
        "idempotencyKey": "no"}}, key=key), "FORBIDDEN")
    await assert_nothing_written(p, before)
    read = await p.gql(GET_BATCH, {"id": mine["id"]}, key=key)
    if role in (Role.PARTNER_READONLY, Role.AUDITOR):
        assert ok(read)["payoutBatch"]["id"] == mine["id"]
    else:
        assert_top_level(read, "FORBIDDEN")
    assert (await create_batch(p, batch_items(eur, ["5.00"]), "no"))["pending"] == 1


async def test_batch_forbidden_for_readonly_partner(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, role=Role.PARTNER_READONLY)
    before = await state(p)
    assert_top_level(await p.gql(BATCH, {"input": {
        "accountId": p.accounts[0], "items": batch_items(MISSING_EU_BENEFICIARY, ["5.00"]),
        "idempotencyKey": "ro"}}), "FORBIDDEN")
    await assert_nothing_written(p, before)


# --- registerWebhookEndpoint, rotateWebhookSecret, disableWebhookEndpoint ---------------------


async def register(p: Partner, key: str, url: str = HOOK_URL,
                   events: list[str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = ok(await p.gql(REGISTER, {"input": {
        "url": url, "events": ["*"] if events is None else events, "idempotencyKey": key}}))[
        "registerWebhookEndpoint"]
    return result


async def add_endpoint(p: Partner, key: str, url: str = HOOK_URL) -> str:
    result = await register(p, key, url)
    assert result["__typename"] == "WebhookEndpointSecret", result
    endpoint_id: str = result["endpoint"]["id"]
    return endpoint_id


async def endpoint_action(p: Partner, query: str, endpoint_id: str, key: str) -> dict[str, Any]:
    name = "rotateWebhookSecret" if query is ROTATE else "disableWebhookEndpoint"
    result: dict[str, Any] = ok(await p.gql(query, {"input": {
        "endpointId": endpoint_id, "idempotencyKey": key}}))[name]
    return result


@pytest.mark.parametrize("url", [
    pytest.param("ftp://hooks.example.com/corridor", id="ftp"),
    pytest.param("file:///etc/passwd", id="file"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("hooks.example.com/corridor", id="no-scheme"),
    pytest.param("/corridor/hooks", id="relative-path"),
    pytest.param("corridor", id="relative-name"),
    pytest.param("//hooks.example.com/corridor", id="scheme-relative"),
    pytest.param("", id="empty"),
    pytest.param("https://", id="no-host"),
    pytest.param("https:///corridor", id="empty-host"),
    pytest.param("https://user:secret@hooks.example.com/corridor", id="userinfo"),
    pytest.param("https://user@hooks.example.com/corridor", id="user-only"),
    pytest.param("https://hooks.example.com\\@evil.example/", id="backslash-userinfo"),
    pytest.param("https://hooks.example.com/corridor#frag", id="fragment"),
    pytest.param("https://hooks.example.com/#", id="empty-fragment"),
    pytest.param("https://hooks.example.com/" + "a" * (url_chars_max - 25), id="2049"),
    pytest.param("https://hooks.example.com/" + "a" * 100_000, id="very-long"),
    pytest.param("https://hooks.example.com/cor ridor", id="space"),
    pytest.param("https://hooks.example.com/corridor\x00", id="nul"),
    pytest.param("https://hooks.example.com/cor\tridor", id="tab"),
    pytest.param("https://hooks.example.com/cor\nridor", id="newline"),
    pytest.param("https://hooks.exa\r\nmple.com/", id="crlf-in-host"),
    pytest.param("https://hooks.example.com/\x7f", id="del"),
    pytest.param("https://bücher.example/corridor", id="non-ascii-host"),
    pytest.param("https://hooks.example.com:0/corridor", id="port-0"),
    pytest.param("https://hooks.example.com:70000/corridor", id="port-70000"),
    pytest.param("https://hooks.example.com:http/corridor", id="port-name"),
    pytest.param("https://-hooks-.example.com/", id="bad-label"),
    pytest.param("https://hooks..example.com/", id="empty-label"),
    pytest.param("http://[::1/corridor", id="broken-ipv6"),
])
async def test_register_bad_url(make_partner: MakePartner, url: str) -> None:
    p = await make_partner("EU")
    before = await state(p)
    assert_validation(await register(p, "hook", url), "url")
    await assert_nothing_written(p, before)
    assert nodes(before, "webhookEndpoints") == []


@pytest.mark.parametrize("events", [
    pytest.param([], id="empty"),
    pytest.param(["nope"], id="unknown"),
    pytest.param([""], id="empty-string"),
    pytest.param(["PAYOUT.CREATED"], id="upper-case"),
    pytest.param([" payout.created"], id="leading-space"),
    pytest.param(["payout.*"], id="partial-wildcard"),
    pytest.param(["webhook_endpoint.registered"], id="internal-event"),
    pytest.param(["payout.created", "nope"], id="known-and-unknown"),
    pytest.param(["payout.created", "payout.created"], id="duplicate"),
    pytest.param(["*", "*"], id="star-twice"),
    pytest.param(["*", "payout.created"], id="star-first-mixed"),
    pytest.param(["payout.created", "*"], id="star-last-mixed"),
    pytest.param(["payout.created"] * (event_types_per_endpoint_max + 1), id="21-same"),
    pytest.param(sorted(event_types) + [f"custom.{i}" for i in range(
        event_types_per_endpoint_max + 1 - len(event_types))], id="21-distinct"),
])
async def test_register_bad_events(make_partner: MakePartner, events: list[str]) -> None:
    p = await make_partner("EU")
    before = await state(p)
    assert_validation(await register(p, "hook", events=events), "events")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("key", ["", "k" * (key_length_max + 1), "key\x00"],
                         ids=["empty", "256", "nul"])
async def test_register_bad_idempotency_key(make_partner: MakePartner, key: str) -> None:
    p = await make_partner("EU")
    before = await state(p)
    assert_validation(await register(p, key), "idempotencyKey")
    await assert_nothing_written(p, before)


async def test_register_limits_inclusive(make_partner: MakePartner) -> None:
    """The control for the rejections above: a 2,048-character URL, every event type (listed
    in any order), plain http for a test key and a 255-character key are accepted."""
    p = await make_partner("EU")
    url = "https://hooks.example.com/" + "a" * (url_chars_max - 26)
    assert len(url) == url_chars_max
    result = await register(p, "k" * key_length_max, url, sorted(event_types, reverse=True))
    assert result["__typename"] == "WebhookEndpointSecret", result
    assert (result["endpoint"]["url"], result["endpoint"]["events"]) == (
        url, sorted(event_types))
    plain = await register(p, "plain", "http://127.0.0.1:8080/hooks?x=a@b")
    assert plain["__typename"] == "WebhookEndpointSecret", plain
    assert len(nodes(await state(p), "webhookEndpoints")) == 2


async def test_register_rejected_input_leaves_the_key_unused(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    assert_validation(await register(p, "retry", "ftp://hooks.example.com/"), "url")
    assert_validation(await register(p, "retry", events=["nope"]), "events")
    result = await register(p, "retry")
    assert result["__typename"] == "WebhookEndpointSecret", result
    assert result["secret"].startswith("whsec_")


async def test_register_limit_of_active_endpoints(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    made = [await add_endpoint(p, f"hook-{i}") for i in range(endpoints_per_tenant_max)]
    before = await state(p)
    over = await register(p, "one-too-many")
    assert_error(over, "LimitExceeded", "LIMIT_EXCEEDED")
    await assert_nothing_written(p, before)
    # A replay is not a new endpoint, so the limit does not refuse it.
    replay = await register(p, "hook-0")
    assert (replay["__typename"], replay["secret"], replay["endpoint"]["id"]) == (
        "WebhookEndpointSecret", None, made[0])
    await assert_nothing_written(p, before)
    # Disabled endpoints do not count, and the refused key was not used up.
    assert (await endpoint_action(p, DISABLE, made[0], "off"))["status"] == "DISABLED"
    fresh = await register(p, "one-too-many")
    assert fresh["__typename"] == "WebhookEndpointSecret", fresh
    listed = nodes(await state(p), "webhookEndpoints")
    assert sorted(e["status"] for e in listed) == ["ACTIVE"] * endpoints_per_tenant_max + [
        "DISABLED"]


async def test_register_limit_holds_under_concurrent_requests(make_partner: MakePartner) -> None:
    """Requests that race for the last free place: exactly one gets it."""
    p = await make_partner("EU")
    for i in range(endpoints_per_tenant_max - 1):
        await add_endpoint(p, f"hook-{i}")
    racing = 10
    results = await race(p, REGISTER, [{"url": HOOK_URL, "events": ["*"],
                                        "idempotencyKey": f"race-{i}"} for i in range(racing)])
    kinds = sorted(r["registerWebhookEndpoint"]["__typename"] for r in results)
    listed = nodes(await state(p), "webhookEndpoints")
    assert len(listed) == endpoints_per_tenant_max, listed
    assert kinds == ["LimitExceeded"] * (racing - 1) + ["WebhookEndpointSecret"], kinds


async def test_register_key_reused_with_other_input(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    first = await register(p, "hook", events=["payout.created", "payout.failed"])
    assert first["__typename"] == "WebhookEndpointSecret", first
    before = await state(p)
    # The same events in another order are the same input: a replay, without the secret.
    replay = await register(p, "hook", events=["payout.failed", "payout.created"])
    assert (replay["secret"], replay["endpoint"]) == (None, first["endpoint"])
    for url, events in ((HOOK_URL + "/v2", ["payout.created", "payout.failed"]),
                        (HOOK_URL, ["payout.created"]),
                        (HOOK_URL, ["*"])):
        result = await register(p, "hook", url, events)
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert result["idempotencyKey"] == "hook"
    endpoint_id = first["endpoint"]["id"]
    for query in (ROTATE, DISABLE):
        result = await endpoint_action(p, query, endpoint_id, "hook")
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
    await assert_nothing_written(p, before)
    assert [(e["status"], e["secretRotatingUntil"]) for e in nodes(
        before, "webhookEndpoints")] == [("ACTIVE", None)]


@pytest.mark.parametrize("endpoint_id", [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(DELIVERY_ID, id="delivery-id"),
    pytest.param(MISSING_EU_PAYOUT, id="payout-id"),
    pytest.param(f"whe_eu-central_{ULID.lower()}", id="lowercase-ulid"),
    pytest.param("whe_eu-central_" + "Z" * 26, id="ulid-overflow"),
    pytest.param("whe_" + "x" * 80, id="over-64"),
])
@pytest.mark.parametrize("query", [ROTATE, DISABLE], ids=["rotate", "disable"])
async def test_endpoint_action_malformed_id(make_partner: MakePartner, query: str,
                                            endpoint_id: str) -> None:
    p = await make_partner("EU")
    await add_endpoint(p, "hook")
    before = await state(p)
    assert_validation(await endpoint_action(p, query, endpoint_id, "bad"), "endpointId")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("key", ["", "k" * (key_length_max + 1), "key\x00"],
                         ids=["empty", "256", "nul"])
@pytest.mark.parametrize("query", [ROTATE, DISABLE], ids=["rotate", "disable"])
async def test_endpoint_action_bad_idempotency_key(make_partner: MakePartner, query: str,
                                                   key: str) -> None:
    p = await make_partner("EU")
    endpoint_id = await add_endpoint(p, "hook")
    before = await state(p)
    assert_validation(await endpoint_action(p, query, endpoint_id, key), "idempotencyKey")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("endpoint_id", [MISSING_EU_ENDPOINT, MISSING_UK_ENDPOINT],
                         ids=["own-region", "other-region"])
@pytest.mark.parametrize("query", [ROTATE, DISABLE], ids=["rotate", "disable"])
async def test_endpoint_action_unknown_endpoint(make_partner: MakePartner, query: str,
                                                endpoint_id: str) -> None:
    p = await make_partner("EU")
    await add_endpoint(p, "hook")
    before = await state(p)
    assert_error(await endpoint_action(p, query, endpoint_id, "unknown"), "NotFound",
                 "NOT_FOUND")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("other_jurisdiction", ["EU", "UK"])
@pytest.mark.parametrize("query", [ROTATE, DISABLE], ids=["rotate", "disable"])
async def test_endpoint_action_on_another_tenants_endpoint(make_partner: MakePartner,
                                                           query: str,
                                                           other_jurisdiction: str) -> None:
    p = await make_partner("EU")
    other = await make_partner(other_jurisdiction)
    theirs = await add_endpoint(other, "theirs")
    before, other_before = await state(p), await state(other)
    result = await endpoint_action(p, query, theirs, "steal")
    assert_error(result, "NotFound", "NOT_FOUND")
    assert HOOK_URL not in result["message"]
    await assert_nothing_written(p, before)
    await assert_nothing_written(other, other_before)
    assert [(e["status"], e["secretRotatingUntil"]) for e in nodes(
        other_before, "webhookEndpoints")] == [("ACTIVE", None)]


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR, Role.SRE,
                                  Role.COMPLIANCE_OFFICER])
async def test_webhook_mutations_forbidden_for_non_admin_keys(make_partner: MakePartner,
                                                              router: Router,
                                                              role: Role) -> None:
    p = await make_partner("EU")
    endpoint_id = await add_endpoint(p, "hook")
    before = await state(p)
    key = await add_key(router, p, role)
    for query, data in (
            (REGISTER, {"url": HOOK_URL, "events": ["*"], "idempotencyKey": "no-reg"}),
            (ROTATE, {"endpointId": endpoint_id, "idempotencyKey": "no-rot"}),
            (DISABLE, {"endpointId": endpoint_id, "idempotencyKey": "no-off"})):
        assert_top_level(await p.gql(query, {"input": data}, key=key), "FORBIDDEN")
    await assert_nothing_written(p, before)
    # The refused keys stay free for the admin.
    assert (await register(p, "no-reg"))["__typename"] == "WebhookEndpointSecret"
    assert (await endpoint_action(p, ROTATE, endpoint_id, "no-rot"))["secret"]
    assert (await endpoint_action(p, DISABLE, endpoint_id, "no-off"))["status"] == "DISABLED"


async def test_webhook_mutations_forbidden_for_readonly_partner(
        make_partner: MakePartner) -> None:
    p = await make_partner("EU", role=Role.PARTNER_READONLY)
    before = await state(p)
    for query, data in (
            (REGISTER, {"url": HOOK_URL, "events": ["*"], "idempotencyKey": "ro-reg"}),
            (ROTATE, {"endpointId": MISSING_EU_ENDPOINT, "idempotencyKey": "ro-rot"}),
            (DISABLE, {"endpointId": MISSING_EU_ENDPOINT, "idempotencyKey": "ro-off"})):
        assert_top_level(await p.gql(query, {"input": data}), "FORBIDDEN")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("over", "what"), [
    pytest.param({"events": None}, "events null", id="events-null"),
    pytest.param({"events": [1]}, "event as a number", id="event-int"),
    pytest.param({"events": [None]}, "event null", id="event-null"),
    pytest.param({"url": None}, "url null", id="url-null"),
    pytest.param({"url": {"href": HOOK_URL}}, "url as an object", id="url-object"),
])
async def test_register_wrong_graphql_types(make_partner: MakePartner, over: dict[str, Any],
                                            what: str) -> None:
    p = await make_partner("EU")
    before = await state(p)
    out = await p.gql(REGISTER, {"input": {"url": HOOK_URL, "events": ["*"],
                                           "idempotencyKey": "types", **over}})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


# --- lists ------------------------------------------------------------------------------------


BAD_PAGES = [
    pytest.param("first: 0", "first", id="first-0"),
    pytest.param(f"first: {first_max + 1}", "first", id="first-101"),
    pytest.param("first: -1", "first", id="first-negative"),
    pytest.param('after: "garbage"', "after", id="after-garbage"),
    pytest.param('after: ""', "after", id="after-empty"),
    pytest.param(f'after: "{"A" * 400}"', "after", id="after-long"),
    pytest.param(f'after: "{encode_cursor("pay", "x")}"', "after", id="after-payout-cursor"),
    pytest.param(f'after: "{encode_cursor("whd", chr(0))}"', "after", id="after-nul-whd"),
    pytest.param(f'after: "{encode_cursor("whe", chr(0))}"', "after", id="after-nul-whe"),
    pytest.param(f'after: "{encode_cursor("inc", chr(0))}"', "after", id="after-nul-inc"),
]


@pytest.mark.parametrize(("args", "field"), BAD_PAGES)
@pytest.mark.parametrize("name", ["webhookDeliveries", "webhookEndpoints", "incomingPayments"])
async def test_bad_page_arguments(make_partner: MakePartner, name: str, args: str,
                                  field: str) -> None:
    p = await make_partner("EU")
    assert_bad_user_input(await p.gql(f"{{ {name}({args}) {{ edges {{ cursor }} }} }}"), field)


@pytest.mark.parametrize(("args", "field"), BAD_PAGES)
async def test_reconciliation_items_bad_page_arguments(ops: Partner, args: str,
                                                       field: str) -> None:
    assert_bad_user_input(
        await ops.gql(f"{{ reconciliationItems({args}) {{ edges {{ cursor }} }} }}"), field)


async def test_cursor_of_one_list_is_refused_by_the_others(make_partner: MakePartner) -> None:
    p, iban = await receiver(make_partner)
    await add_endpoint(p, "hook")
    await receive(p, iban, "in")
    cursors = {}
    for name in ("webhookEndpoints", "incomingPayments"):
        page = ok(await p.gql(f"{{ {name} {{ pageInfo {{ endCursor }} }} }}"))[name]
        cursors[name] = page["pageInfo"]["endCursor"]
        assert cursors[name], page
    for source, target in (("webhookEndpoints", "webhookDeliveries"),
                           ("webhookEndpoints", "incomingPayments"),
                           ("incomingPayments", "webhookEndpoints"),
                           ("incomingPayments", "webhookDeliveries")):
        assert_bad_user_input(await p.gql(
            f'{{ {target}(after: "{cursors[source]}") {{ edges {{ cursor }} }} }}'), "after")


@pytest.mark.parametrize(("args", "field"), BAD_PAGES[:4])
async def test_payout_batch_items_bad_page_arguments(make_partner: MakePartner, args: str,
                                                     field: str) -> None:
    p, eur, _ = await payer(make_partner)
    batch = await create_batch(p, batch_items(eur, ["10.00"]), "batch")
    out = await p.gql(f'{{ payoutBatch(id: "{batch["id"]}") {{ ... on PayoutBatch {{ '
                      f'items({args}) {{ edges {{ cursor }} }} }} }} }}')
    [error] = out["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", out
    assert error["extensions"]["field"] == field, out
