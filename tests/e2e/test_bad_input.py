"""Bad input to createTransfer, createTransferBatch and createAccount over HTTP.

Every rejected request must leave no trace: balances, the tenant's accounts and transfers, and
the idempotency key (a rejected request may be retried with the same key) are checked after each.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from payments.errors import shown_chars_max
from payments.money import amount_minor_max
from regions import commands
from regions.idempotency import key_length_max
from schema.pagination import encode_cursor, first_default, first_max
from tests.e2e.conftest import MakePartner, Partner

TRANSFER = """
mutation($input: CreateTransferInput!) {
  createTransfer(input: $input) {
    __typename
    ... on Transfer { id fromAccountId toAccountId amount { amount currency } status reference }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on InsufficientFunds { accountId }
    ... on CurrencyMismatch { accountId }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

BATCH = """
mutation($input: CreateTransferBatchInput!) {
  createTransferBatch(input: $input) {
    __typename
    ... on TransferBatch {
      id atomic itemCount succeeded failed
      items { index transfer { id fromAccountId toAccountId amount { amount currency } status }
              error { code message } }
    }
    ... on TransferBatchRejected { index reasonCode }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on InsufficientFunds { accountId }
    ... on CurrencyMismatch { accountId }
  }
}"""

BATCH_SUMMARY = """
mutation($input: CreateTransferBatchInput!) {
  createTransferBatch(input: $input) {
    __typename
    ... on TransferBatch { id itemCount succeeded failed }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}"""

CREATE_ACCOUNT = """
mutation($input: CreateAccountInput!) {
  createAccount(input: $input) {
    __typename
    ... on Account { id currency label status balance { posted { amount currency } } }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}"""

TENANT_STATE = """
{
  accounts(first: 100) { edges { node { id currency label } } }
  transfers(first: 100) { edges { node { id } } }
}"""

ACCOUNT_STATE = """
query($id: ID!) {
  account(id: $id) {
    __typename
    ... on Account {
      balance { posted { amount currency } pending { amount } available { amount currency } }
    }
  }
  transfers(accountId: $id, first: 100) { edges { node { id } } }
}"""

# A well-formed id of the wrong kind, and well-formed account ids that match nothing.
TRANSFER_ID = "trf_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY"
MISSING_EU_ACCOUNT = "acc_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY"
MISSING_US_ACCOUNT = "acc_us-east_01M7ZSPZVN9FMXWD01NR6PV1VY"


def ok(out: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in out, out
    data: dict[str, Any] = out["data"]
    return data


async def state(p: Partner) -> dict[str, Any]:
    """Everything a rejected request might have written, as the tenant sees it."""
    tenant = ok(await p.gql(TENANT_STATE))
    per_account = {}
    for acc in [e["node"]["id"] for e in tenant["accounts"]["edges"]]:
        one = ok(await p.gql(ACCOUNT_STATE, {"id": acc}))
        assert one["account"]["__typename"] == "Account", one
        per_account[acc] = {
            "balance": one["account"]["balance"],
            "transfers": [e["node"]["id"] for e in one["transfers"]["edges"]],
        }
    return {"accounts": tenant["accounts"]["edges"],
            "transfers": [e["node"]["id"] for e in tenant["transfers"]["edges"]],
            "per_account": per_account}


async def assert_nothing_written(p: Partner, before: dict[str, Any]) -> None:
    after = await state(p)
    assert after == before
    for acc, seen in after["per_account"].items():
        # Accounts that were never funded have no transfers at all.
        if Decimal(seen["balance"]["posted"]["amount"]) == 0:
            assert seen["transfers"] == [], (acc, seen)


def transfer_input(p: Partner, key: str, **over: Any) -> dict[str, Any]:
    data = {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": "1.00",
            "currency": "EUR", "idempotencyKey": key}
    return {**data, **over}


def batch_items(p: Partner, count: int, amount: str = "1.00",
                currency: str = "EUR") -> list[dict[str, Any]]:
    return [{"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": amount,
             "currency": currency, "reference": f"item {i}"} for i in range(count)]


def assert_validation(result: dict[str, Any], field: str) -> None:
    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "VALIDATION_ERROR", result
    assert result["field"] == field, result
    assert result["message"], result


# (account currency, funded minor units, amount, currency) that must be rejected on `amount`.
BAD_AMOUNTS = [
    pytest.param("EUR", 100_00, "1.001", "EUR", id="eur-3-decimals"),
    pytest.param("JPY", 100_000, "1.5", "JPY", id="jpy-decimals"),
    pytest.param("JPY", 100_000, "1.0", "JPY", id="jpy-zero-decimal"),
    pytest.param("KWD", 100_000, "1.0001", "KWD", id="kwd-4-decimals"),
    pytest.param("EUR", 100_00, "0", "EUR", id="zero"),
    pytest.param("EUR", 100_00, "0.00", "EUR", id="zero-decimals"),
    pytest.param("JPY", 100_000, "0", "JPY", id="jpy-zero"),
    pytest.param("EUR", 100_00, "-5.00", "EUR", id="negative"),
    pytest.param("EUR", 100_00, "-0.01", "EUR", id="negative-cent"),
    pytest.param("EUR", 100_00, "99999999999999999999", "EUR", id="absurdly-large"),
    pytest.param("EUR", 100_00, "10000000000000.00", "EUR", id="just-over-max"),
    pytest.param("EUR", 100_00, "1e3", "EUR", id="exponent"),
    pytest.param("EUR", 100_00, "1E2", "EUR", id="exponent-upper"),
    pytest.param("EUR", 100_00, "1.5e1", "EUR", id="exponent-fraction"),
    pytest.param("EUR", 100_00, "+5.00", "EUR", id="plus-sign"),
    pytest.param("EUR", 100_00, " 5.00", "EUR", id="leading-space"),
    pytest.param("EUR", 100_00, "5,00", "EUR", id="comma"),
    pytest.param("EUR", 100_00, "05.00", "EUR", id="leading-zero"),
    pytest.param("EUR", 100_00, "5.", "EUR", id="trailing-point"),
    pytest.param("EUR", 100_00, ".50", "EUR", id="no-units"),
    pytest.param("EUR", 100_00, "", "EUR", id="empty"),
    pytest.param("EUR", 100_00, "NaN", "EUR", id="nan"),
    pytest.param("EUR", 100_00, "Infinity", "EUR", id="infinity"),
    pytest.param("EUR", 100_00, "0x10", "EUR", id="hex"),
    pytest.param("EUR", 100_00, "1" * 41, "EUR", id="over-40-characters"),
]

BAD_CURRENCIES = [
    pytest.param("ABC", id="unknown"),
    pytest.param("eur", id="lowercase"),
    pytest.param("XAU", id="gold-no-minor-unit"),
    pytest.param("XTS", id="testing-code"),
    pytest.param("EURO", id="four-letters"),
    pytest.param("", id="empty"),
    pytest.param(" EUR", id="space"),
]


# --- createTransfer ---------------------------------------------------------------------------


@pytest.mark.parametrize(("account_currency", "funded", "amount", "currency"), BAD_AMOUNTS)
async def test_transfer_bad_amount(make_partner: MakePartner, account_currency: str,
                                   funded: int, amount: str, currency: str) -> None:
    p = await make_partner("EU", funded={account_currency: funded},
                           extra={account_currency: 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(
        p, "bad-amount", amount=amount, currency=currency)}))
    assert_validation(out["createTransfer"], "amount")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("currency", BAD_CURRENCIES)
async def test_transfer_bad_currency(make_partner: MakePartner, currency: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(
        p, "bad-currency", currency=currency)}))
    assert_validation(out["createTransfer"], "currency")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"fromAccountId": "nope"}, "fromAccountId", id="from-nope"),
    pytest.param({"fromAccountId": TRANSFER_ID}, "fromAccountId", id="from-transfer-id"),
    pytest.param({"fromAccountId": ""}, "fromAccountId", id="from-empty"),
    pytest.param({"fromAccountId": 123}, "fromAccountId", id="from-int-id"),
    pytest.param({"fromAccountId": "acc_" + "x" * 200}, "fromAccountId", id="from-long"),
    pytest.param({"toAccountId": "nope"}, "toAccountId", id="to-nope"),
    pytest.param({"toAccountId": TRANSFER_ID}, "toAccountId", id="to-transfer-id"),
    pytest.param({"toAccountId": MISSING_EU_ACCOUNT.lower()}, "toAccountId", id="to-lowercase"),
    pytest.param({"reference": "r" * (commands.reference_length_max + 1)}, "reference",
                 id="reference-141"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
    pytest.param({"reference": "rent\x00"}, "reference", id="reference-nul"),
    pytest.param({"idempotencyKey": "key\x00"}, "idempotencyKey", id="key-nul"),
])
async def test_transfer_bad_field(make_partner: MakePartner, over: dict[str, Any],
                                  field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "bad-field", **over)}))
    assert_validation(out["createTransfer"], field)
    await assert_nothing_written(p, before)


async def test_transfer_same_account_both_sides(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(
        p, "same", toAccountId=p.accounts[0])}))
    assert_validation(out["createTransfer"], "toAccountId")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("field", ["reference", "idempotencyKey"])
async def test_transfer_lone_surrogate_is_not_an_internal_error(make_partner: MakePartner,
                                                                field: str) -> None:
    """JSON may escape a lone surrogate (\\ud800); it is not text the ledger can store, and
    must come back as bad input, not as an unexpected server failure."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    data = transfer_input(p, "surrogate", reference="rent")
    data[field] = "SURROGATE"
    raw = json.dumps({"query": TRANSFER, "variables": {"input": data}}).replace(
        "SURROGATE", "x\\ud800")
    resp = await p.client.post("/graphql", content=raw, headers={
        "Authorization": f"Bearer {p.key}", "Content-Type": "application/json"})
    assert resp.status_code in (200, 400), resp.text
    assert "INTERNAL_SERVER_ERROR" not in resp.text, resp.text
    if resp.status_code == 200 and (resp.json().get("data") or {}).get("createTransfer"):
        assert_validation(resp.json()["data"]["createTransfer"], field)
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("side", ["fromAccountId", "toAccountId"])
@pytest.mark.parametrize("missing", [MISSING_EU_ACCOUNT, MISSING_US_ACCOUNT],
                         ids=["own-region", "other-region"])
async def test_transfer_unknown_account_is_not_found(make_partner: MakePartner, side: str,
                                                     missing: str) -> None:
    """A well-formed id that is not the caller's (absent, or in another region) is NotFound."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "missing", **{side: missing})}))
    result = out["createTransfer"]
    assert result["__typename"] == "NotFound", result
    assert result["code"] == "NOT_FOUND", result
    await assert_nothing_written(p, before)


async def test_transfer_limits_inclusive(make_partner: MakePartner) -> None:
    """The edges of the limits are accepted: a 140-character reference, a 255-character key."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    reference = "r" * commands.reference_length_max
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(
        p, "k" * key_length_max, reference=reference, amount="0.01")}))
    result = out["createTransfer"]
    assert result["__typename"] == "Transfer", result
    assert result["reference"] == reference
    assert result["amount"] == {"amount": "0.01", "currency": "EUR"}


@pytest.mark.parametrize(("currency", "funded", "amount", "shown"), [
    ("EUR", 100_00, "10.5", "10.50"),
    ("EUR", 100_00, "7", "7.00"),
    ("JPY", 100_000, "1000", "1000"),
    ("KWD", 100_000, "1.25", "1.250"),
    ("KWD", 100_000, "0.001", "0.001"),
])
async def test_transfer_valid_amounts_accepted(make_partner: MakePartner, currency: str,
                                               funded: int, amount: str, shown: str) -> None:
    """The control for the rejections above: the same path accepts well-formed amounts."""
    p = await make_partner("EU", funded={currency: funded}, extra={currency: 1})
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(
        p, "valid", amount=amount, currency=currency)}))
    assert out["createTransfer"]["__typename"] == "Transfer", out
    assert out["createTransfer"]["amount"] == {"amount": shown, "currency": currency}
    after = await state(p)
    assert after["per_account"][p.accounts[1]]["balance"]["posted"]["amount"] == shown


async def test_largest_amount_passes_validation(make_partner: MakePartner) -> None:
    """The maximum amount is valid input; it then fails only for want of funds."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    largest = f"{amount_minor_max // 100}.{amount_minor_max % 100:02d}"
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "largest", amount=largest)}))
    assert out["createTransfer"]["__typename"] == "InsufficientFunds", out
    await assert_nothing_written(p, before)


async def test_rejected_input_leaves_the_key_unused(make_partner: MakePartner) -> None:
    """A ValidationError stores nothing, so the same key then works for a valid request."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    bad = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "retry-me", amount="1.001")}))
    assert_validation(bad["createTransfer"], "amount")
    good = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "retry-me", amount="1.00")}))
    assert good["createTransfer"]["__typename"] == "Transfer", good
    assert good["createTransfer"]["amount"]["amount"] == "1.00"


async def test_insufficient_funds(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "too-much", amount="100.01")}))
    result = out["createTransfer"]
    assert result["__typename"] == "InsufficientFunds", result
    assert result["code"] == "INSUFFICIENT_FUNDS"
    assert result["accountId"] == p.accounts[0]
    await assert_nothing_written(p, before)
    # The key was not consumed by the failure, and exactly the balance can be moved.
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "too-much", amount="100.00")}))
    assert out["createTransfer"]["__typename"] == "Transfer", out
    after = await state(p)
    assert after["per_account"][p.accounts[0]]["balance"]["available"]["amount"] == "0.00"


async def test_unfunded_account_cannot_send(make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": 2})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "empty", amount="0.01")}))
    assert out["createTransfer"]["__typename"] == "InsufficientFunds", out
    assert out["createTransfer"]["accountId"] == p.accounts[0]
    await assert_nothing_written(p, before)


async def test_currency_mismatch_between_usd_accounts(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"USD": 100_00}, extra={"USD": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "eur-on-usd", currency="EUR")}))
    result = out["createTransfer"]
    assert result["__typename"] == "CurrencyMismatch", result
    assert result["code"] == "CURRENCY_MISMATCH"
    assert result["accountId"] in p.accounts[:2]
    await assert_nothing_written(p, before)


async def test_currency_mismatch_into_other_currency_account(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"USD": 1})
    before = await state(p)
    out = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "eur-to-usd")}))
    result = out["createTransfer"]
    assert result["__typename"] == "CurrencyMismatch", result
    assert result["accountId"] == p.accounts[1]
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("variables_input", "what"), [
    pytest.param({"amount": 10.5}, "amount as a number", id="amount-float"),
    pytest.param({"amount": 10}, "amount as an integer", id="amount-int"),
    pytest.param({"amount": None}, "amount null", id="amount-null"),
    pytest.param({"currency": ["EUR"]}, "currency as a list", id="currency-list"),
    pytest.param({"reference": 12}, "reference as a number", id="reference-int"),
    pytest.param({"idempotencyKey": None}, "key null", id="key-null"),
    pytest.param({"unknownField": "x"}, "unknown field", id="unknown-field"),
])
async def test_transfer_wrong_graphql_types(make_partner: MakePartner,
                                            variables_input: dict[str, Any], what: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = await p.gql(TRANSFER, {"input": transfer_input(p, "types", **variables_input)})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("missing", ["fromAccountId", "toAccountId", "amount", "currency",
                                     "idempotencyKey"])
async def test_transfer_missing_required_field(make_partner: MakePartner, missing: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    data = transfer_input(p, "missing")
    del data[missing]
    out = await p.gql(TRANSFER, {"input": data})
    assert out.get("data") is None, out
    assert missing in out["errors"][0]["message"], out
    await assert_nothing_written(p, before)


async def test_transfer_literal_of_wrong_type_in_document(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    doc = (f'mutation {{ createTransfer(input: {{fromAccountId: "{p.accounts[0]}", '
           f'toAccountId: "{p.accounts[1]}", amount: 10.5, currency: "EUR", '
           'idempotencyKey: "literal"}) { __typename } }')
    out = await p.gql(doc)
    assert out.get("data") is None, out
    assert out["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", out
    await assert_nothing_written(p, before)


# --- createTransferBatch ----------------------------------------------------------------------


def batch_with(p: Partner, index: int, **over: Any) -> list[dict[str, Any]]:
    items = batch_items(p, 5)
    items[index] = {**items[index], **over}
    return items


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"amount": "1.001"}, "amount", id="decimals"),
    pytest.param({"amount": "0"}, "amount", id="zero"),
    pytest.param({"amount": "0.00"}, "amount", id="zero-decimals"),
    pytest.param({"amount": "-5.00"}, "amount", id="negative"),
    pytest.param({"amount": "99999999999999999999"}, "amount", id="absurdly-large"),
    pytest.param({"amount": "1e3"}, "amount", id="exponent"),
    pytest.param({"currency": "ABC"}, "currency", id="unknown-currency"),
    pytest.param({"currency": "eur"}, "currency", id="lowercase-currency"),
    pytest.param({"currency": "XAU"}, "currency", id="gold"),
    pytest.param({"fromAccountId": "nope"}, "fromAccountId", id="from-nope"),
    pytest.param({"fromAccountId": TRANSFER_ID}, "fromAccountId", id="from-transfer-id"),
    pytest.param({"toAccountId": "nope"}, "toAccountId", id="to-nope"),
    pytest.param({"reference": "r" * (commands.reference_length_max + 1)}, "reference",
                 id="reference-141"),
    pytest.param({"reference": "item\x00"}, "reference", id="reference-nul"),
])
async def test_batch_bad_item(make_partner: MakePartner, over: dict[str, Any],
                              field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    for atomic in (True, False):
        out = ok(await p.gql(BATCH, {"input": {
            "transfers": batch_with(p, 3, **over), "atomic": atomic,
            "idempotencyKey": f"bad-item-{atomic}"}}))
        assert_validation(out["createTransferBatch"], f"transfers[3].{field}")
    await assert_nothing_written(p, before)


async def test_batch_jpy_and_kwd_decimals(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"JPY": 100_000, "KWD": 100_000},
                           extra={"JPY": 1, "KWD": 1})
    jpy_from, kwd_from, jpy_to, kwd_to = p.accounts
    before = await state(p)
    ok_jpy = {"fromAccountId": jpy_from, "toAccountId": jpy_to, "amount": "5",
              "currency": "JPY"}
    ok_kwd = {"fromAccountId": kwd_from, "toAccountId": kwd_to, "amount": "0.005",
              "currency": "KWD"}
    for bad, index, key in (({**ok_jpy, "amount": "1.5"}, 1, "jpy"),
                            ({**ok_kwd, "amount": "1.0001"}, 2, "kwd")):
        items = [ok_jpy, ok_kwd, ok_jpy]
        items[index] = bad
        out = ok(await p.gql(BATCH, {"input": {"transfers": items, "idempotencyKey": key}}))
        assert_validation(out["createTransferBatch"], f"transfers[{index}].amount")
    await assert_nothing_written(p, before)


async def test_batch_same_account_item(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(BATCH, {"input": {
        "transfers": batch_with(p, 3, toAccountId=p.accounts[0]), "idempotencyKey": "same"}}))
    assert_validation(out["createTransferBatch"], "transfers[3].toAccountId")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("count", [0, commands.batch_transfers_max + 1])
async def test_batch_size_out_of_range(make_partner: MakePartner, count: int) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(BATCH_SUMMARY, {"input": {
        "transfers": batch_items(p, count, amount="0.01"), "idempotencyKey": f"size-{count}"}}))
    assert_validation(out["createTransferBatch"], "transfers")
    await assert_nothing_written(p, before)


async def test_batch_of_maximum_size_is_accepted(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    count = commands.batch_transfers_max
    out = ok(await p.gql(BATCH_SUMMARY, {"input": {
        "transfers": batch_items(p, count, amount="0.01"), "idempotencyKey": "max"}}))
    result = out["createTransferBatch"]
    assert result["__typename"] == "TransferBatch", result
    assert (result["itemCount"], result["succeeded"], result["failed"]) == (count, count, 0)
    after = await state(p)
    assert after["per_account"][p.accounts[1]]["balance"]["posted"]["amount"] == "10.00"


@pytest.mark.parametrize("key", ["", "k" * (key_length_max + 1)], ids=["empty", "256"])
async def test_batch_bad_idempotency_key(make_partner: MakePartner, key: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    out = ok(await p.gql(BATCH, {"input": {"transfers": batch_items(p, 2),
                                           "idempotencyKey": key}}))
    assert_validation(out["createTransferBatch"], "idempotencyKey")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("over", "what"), [
    pytest.param({"atomic": "yes"}, "atomic as a string", id="atomic-string"),
    pytest.param({"atomic": None}, "atomic null", id="atomic-null"),
    pytest.param({"transfers": None}, "transfers null", id="transfers-null"),
    pytest.param({"idempotencyKey": 42}, "key as a number", id="key-int"),
])
async def test_batch_wrong_graphql_types(make_partner: MakePartner, over: dict[str, Any],
                                         what: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    data = {"transfers": batch_items(p, 2), "atomic": True, "idempotencyKey": "types", **over}
    out = await p.gql(BATCH, {"input": data})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


async def test_batch_item_of_wrong_graphql_type(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    items = batch_items(p, 3)
    items[1]["amount"] = 10.5
    del items[2]["currency"]
    out = await p.gql(BATCH, {"input": {"transfers": items, "idempotencyKey": "item-types"}})
    assert out.get("data") is None, out
    assert out["errors"], out
    await assert_nothing_written(p, before)


async def test_atomic_batch_rejected_at_overdrawing_item(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    items = batch_items(p, 4, amount="30.00")  # 30 + 30 + 50 > 100: item 2 overdraws
    items[2]["amount"] = "50.00"
    items[3]["amount"] = "1.00"
    out = ok(await p.gql(BATCH, {"input": {"transfers": items, "atomic": True,
                                           "idempotencyKey": "atomic"}}))
    result = out["createTransferBatch"]
    assert result["__typename"] == "TransferBatchRejected", result
    assert result["index"] == 2
    assert result["reasonCode"] == "INSUFFICIENT_FUNDS"
    assert result["code"]
    assert result["message"]
    await assert_nothing_written(p, before)


async def test_atomic_is_the_default(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    items = batch_items(p, 3, amount="40.00")
    out = ok(await p.gql(BATCH, {"input": {"transfers": items, "idempotencyKey": "default"}}))
    result = out["createTransferBatch"]
    assert result["__typename"] == "TransferBatchRejected", result
    assert (result["index"], result["reasonCode"]) == (2, "INSUFFICIENT_FUNDS")
    await assert_nothing_written(p, before)


async def test_atomic_batch_rejected_at_unknown_account(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await state(p)
    items = batch_with(p, 1, toAccountId=MISSING_EU_ACCOUNT)
    out = ok(await p.gql(BATCH, {"input": {"transfers": items, "idempotencyKey": "unknown"}}))
    result = out["createTransferBatch"]
    assert result["__typename"] == "TransferBatchRejected", result
    assert (result["index"], result["reasonCode"]) == (1, "NOT_FOUND")
    await assert_nothing_written(p, before)


async def test_non_atomic_batch_posts_the_good_items(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    items = batch_items(p, 4, amount="30.00")
    items[2]["amount"] = "50.00"  # 30 + 30 + 50 > 100: item 2 fails, item 3 still fits
    items[3]["amount"] = "1.00"
    out = ok(await p.gql(BATCH, {"input": {"transfers": items, "atomic": False,
                                           "idempotencyKey": "partial"}}))
    result = out["createTransferBatch"]
    assert result["__typename"] == "TransferBatch", result
    assert result["atomic"] is False
    assert (result["itemCount"], result["succeeded"], result["failed"]) == (4, 3, 1)
    assert [i["index"] for i in result["items"]] == [0, 1, 2, 3]
    failed = result["items"][2]
    assert failed["transfer"] is None
    assert failed["error"]["code"] == "INSUFFICIENT_FUNDS", failed
    posted = [i["transfer"] for i in result["items"] if i["transfer"] is not None]
    assert [t["amount"]["amount"] for t in posted] == ["30.00", "30.00", "1.00"]
    assert all(t["status"] == "POSTED" for t in posted)
    assert all(i["error"] is None for i in result["items"] if i["transfer"] is not None)
    after = await state(p)
    assert after["per_account"][p.accounts[0]]["balance"]["posted"]["amount"] == "39.00"
    assert after["per_account"][p.accounts[1]]["balance"]["posted"]["amount"] == "61.00"
    assert sorted(after["per_account"][p.accounts[1]]["transfers"]) == sorted(
        t["id"] for t in posted)


async def test_non_atomic_batch_with_unknown_and_mismatched_items(
        make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1, "USD": 1})
    items = batch_items(p, 3)
    items[0]["toAccountId"] = MISSING_EU_ACCOUNT
    items[1]["toAccountId"] = p.accounts[2]  # a USD account
    out = ok(await p.gql(BATCH, {"input": {"transfers": items, "atomic": False,
                                           "idempotencyKey": "mixed"}}))
    result = out["createTransferBatch"]
    assert result["__typename"] == "TransferBatch", result
    assert (result["succeeded"], result["failed"]) == (1, 2)
    assert [i["error"] and i["error"]["code"] for i in result["items"]] == [
        "NOT_FOUND", "CURRENCY_MISMATCH", None]
    after = await state(p)
    assert after["per_account"][p.accounts[0]]["balance"]["posted"]["amount"] == "99.00"
    assert after["per_account"][p.accounts[2]]["transfers"] == []


# --- createAccount ----------------------------------------------------------------------------


@pytest.mark.parametrize("currency", BAD_CURRENCIES)
async def test_create_account_bad_currency(make_partner: MakePartner, currency: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(CREATE_ACCOUNT, {"input": {"currency": currency,
                                                    "idempotencyKey": "acc-currency"}}))
    assert_validation(out["createAccount"], "currency")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"label": "l" * (commands.label_length_max + 1)}, "label", id="label-101"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
    pytest.param({"label": "ops\x00"}, "label", id="label-nul"),
    pytest.param({"idempotencyKey": "key\x00"}, "idempotencyKey", id="key-nul"),
])
async def test_create_account_bad_field(make_partner: MakePartner, over: dict[str, Any],
                                        field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    data = {"currency": "EUR", "label": "ok", "idempotencyKey": "acc-field", **over}
    out = ok(await p.gql(CREATE_ACCOUNT, {"input": data}))
    assert_validation(out["createAccount"], field)
    await assert_nothing_written(p, before)


async def test_create_account_limits_inclusive(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    label = "l" * commands.label_length_max
    out = ok(await p.gql(CREATE_ACCOUNT, {"input": {"currency": "KWD", "label": label,
                                                    "idempotencyKey": "k" * key_length_max}}))
    result = out["createAccount"]
    assert result["__typename"] == "Account", result
    assert (result["currency"], result["label"], result["status"]) == ("KWD", label, "ACTIVE")
    assert result["balance"]["posted"] == {"amount": "0.000", "currency": "KWD"}


@pytest.mark.parametrize(("data", "what"), [
    pytest.param({"currency": 978, "idempotencyKey": "t"}, "currency number", id="currency-int"),
    pytest.param({"currency": "EUR", "label": 5, "idempotencyKey": "t"}, "label number",
                 id="label-int"),
    pytest.param({"currency": "EUR"}, "no key", id="missing-key"),
    pytest.param({"idempotencyKey": "t"}, "no currency", id="missing-currency"),
])
async def test_create_account_wrong_graphql_types(make_partner: MakePartner,
                                                  data: dict[str, Any], what: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = await p.gql(CREATE_ACCOUNT, {"input": data})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


# --- pagination -------------------------------------------------------------------------------


def assert_bad_user_input(out: dict[str, Any]) -> None:
    assert out.get("data") is None, out
    assert out["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", out


@pytest.mark.parametrize("args", [
    pytest.param("first: 0", id="first-0"),
    pytest.param(f"first: {first_max + 1}", id="first-101"),
    pytest.param("first: -1", id="first-negative"),
    pytest.param('after: "garbage"', id="after-garbage"),
    pytest.param('after: ""', id="after-empty"),
    pytest.param(f'after: "{encode_cursor("trf", "x")}"', id="after-other-kind"),
    pytest.param(f'after: "{encode_cursor("acc", "")}"', id="after-no-key"),
    pytest.param(f'after: "{"A" * 400}"', id="after-long"),
    pytest.param(f'after: "{encode_cursor("acc", chr(0))}"', id="after-nul-key"),
    pytest.param('currency: "ABC"', id="currency-unknown"),
])
async def test_accounts_bad_page_arguments(make_partner: MakePartner, args: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    assert_bad_user_input(await p.gql(f"{{ accounts({args}) {{ edges {{ cursor }} }} }}"))


@pytest.mark.parametrize("args", [
    pytest.param("first: 0", id="first-0"),
    pytest.param(f"first: {first_max + 1}", id="first-101"),
    pytest.param('after: "garbage"', id="after-garbage"),
    pytest.param(f'after: "{encode_cursor("acc", "x")}"', id="after-other-kind"),
    pytest.param(f'after: "{encode_cursor("trf", chr(0))}"', id="after-nul-key"),
])
async def test_transfers_bad_page_arguments(make_partner: MakePartner, args: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    assert_bad_user_input(await p.gql(f"{{ transfers({args}) {{ edges {{ cursor }} }} }}"))
    assert_bad_user_input(await p.gql(
        f'{{ transfers(accountId: "{p.accounts[0]}", {args}) {{ edges {{ cursor }} }} }}'))


@pytest.mark.parametrize("args", [
    "first: 0", f"first: {first_max + 1}", 'after: "garbage"',
    pytest.param(f'after: "{encode_cursor("ent", "9" * 19)}"', id="past-bigint"),
    pytest.param(f'after: "{encode_cursor("ent", "1_0")}"', id="underscore"),
    pytest.param(f'after: "{encode_cursor("ent", "-1")}"', id="negative"),
])
async def test_entries_bad_page_arguments(make_partner: MakePartner, args: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = await p.gql(f'{{ account(id: "{p.accounts[0]}") {{ ... on Account {{ '
                      f'entries({args}) {{ edges {{ cursor }} }} }} }} }}')
    assert out["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", out


async def test_pages_within_bounds(make_partner: MakePartner) -> None:
    """The control: first 1..100 and a cursor from the list itself are accepted."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 2})
    query = """query($first: Int, $after: String) {
      accounts(first: $first, after: $after) {
        edges { node { id } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = ok(await p.gql(query, {"first": 1, "after": after}))["accounts"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(p.accounts)
    full = ok(await p.gql(query, {"first": first_max}))["accounts"]
    assert len(full["edges"]) == 3
    assert full["pageInfo"]["hasNextPage"] is False


async def test_default_page_size(make_partner: MakePartner) -> None:
    p = await make_partner("EU", extra={"EUR": first_default + 1})
    page = ok(await p.gql("{ accounts { edges { node { id } } pageInfo { hasNextPage } } }"))
    assert len(page["accounts"]["edges"]) == first_default
    assert page["accounts"]["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("sent", [
    pytest.param("acc_eu-central_" + "\x00\u202e\x1b[31m" * 2_000, id="controls-long"),
    pytest.param("x" * 100_000, id="long"),
    pytest.param("acc\nforged: line", id="newline"),
])
async def test_not_found_quotes_a_bounded_escaped_id(make_partner: MakePartner,
                                                      sent: str) -> None:
    """A NOT_FOUND message names the id it was given, escaped and cut short: never control
    characters (a terminal escape, a bidi override, a forged log line) nor a 100 KB echo."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = await p.gql("query($id: ID!) { account(id: $id) { ... on NotFound { code message } } "
                      "}", {"id": sent})
    listed = await p.gql("query($id: ID!) { transfers(accountId: $id) { edges { cursor } } }",
                         {"id": sent})
    messages = [out["data"]["account"]["message"], listed["errors"][0]["message"]]
    assert out["data"]["account"]["code"] == "NOT_FOUND"
    assert listed["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    for message in messages:
        assert message.isprintable(), message
        assert len(message) < 10 * shown_chars_max + 100, message
        assert repr(sent[:16])[1:-1] in message  # still recognisably the id that was sent
