"""Bad input to the money-out API over HTTP: beneficiaries, virtual IBANs and payouts.

Every rejected request must leave no trace. After each one the tenant's beneficiaries, payouts,
transfers, balances (posted, pending and available) and each account's virtual IBANs are read
back and compared with what they were before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from schwifty import BIC, IBAN

from payments.money import amount_minor_max
from payments.principal import Role
from regions import tenants
from regions.beneficiaries import address_length_max, name_length_max
from regions.idempotency import key_length_max
from regions.payouts import reference_length_max
from regions.router import Router
from regions.virtual_accounts import per_account_max
from schema.pagination import encode_cursor, first_max
from tests.conftest import officer_scope, test_pepper
from tests.e2e.conftest import MakePartner, Partner

BENEFICIARY = """
mutation($input: CreateBeneficiaryInput!) {
  createBeneficiary(input: $input) {
    __typename
    ... on Beneficiary {
      id status name country currency bic bankCode accountNumberMasked address
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

ISSUE = """
mutation($input: IssueVirtualIbanInput!) {
  issueVirtualIban(input: $input) {
    __typename
    ... on VirtualIban { id accountId country scheme iban bic bankCode accountNumber }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on AccountNotActive { accountId }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

PAYOUT = """
mutation($input: CreatePayoutInput!) {
  createPayout(input: $input) {
    __typename
    ... on Payout {
      id status amount { amount currency } fee { amount currency } accountId beneficiaryId
      rail reference purposeCode
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on InsufficientFunds { accountId }
    ... on CurrencyMismatch { accountId }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

CANCEL = """
mutation($input: CancelPayoutInput!) {
  cancelPayout(input: $input) {
    __typename
    ... on Payout { id status }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

GET_BENEFICIARY = """
query($id: ID!) {
  beneficiary(id: $id) {
    __typename
    ... on Beneficiary { id name country currency accountNumberMasked }
    ... on NotFound { code message }
  }
}"""

GET_PAYOUT = """
query($id: ID!) {
  payout(id: $id) {
    __typename
    ... on Payout { id status amount { amount currency } beneficiaryId }
    ... on NotFound { code message }
  }
}"""

TENANT_STATE = """
{
  beneficiaries(first: 100) { edges { node { id status name country currency } } }
  payouts(first: 100) { edges { node { id status amount { amount currency } } } }
  transfers(first: 100) { edges { node { id status } } }
  accounts(first: 100) {
    edges { node {
      id currency
      balance {
        posted { amount currency } pending { amount currency } available { amount currency }
      }
      virtualIbans { id country iban accountNumber }
    } }
  }
}"""

READ_BACK = """
{
  beneficiaries(first: 100) { edges { node { id name accountNumberMasked } } }
  payouts(first: 100) { edges { node { id status amount { amount } } } }
}"""

DE_IBAN = "DE89370400440532013000"
GB_IBAN = "GB29NWBK60161331926819"
CH_IBAN = "CH9300762011623852957"
FR_IBAN = "FR1420041010050500013M02606"
# ISO check digits right, French RIB key wrong: only the national checksum catches it.
FR_IBAN_BAD_RIB_KEY = "FR8420041010050500013M02607"
US_ROUTING = "021000021"
US_ACCOUNT = "123456789"
GB_SORT_CODE = "601613"
GB_ACCOUNT = "31926819"

ULID = "01M7ZSPZVN9FMXWD01NR6PV1VY"
MISSING_EU_ACCOUNT = f"acc_eu-central_{ULID}"
MISSING_US_ACCOUNT = f"acc_us-east_{ULID}"
MISSING_EU_BENEFICIARY = f"ben_eu-central_{ULID}"
MISSING_UK_BENEFICIARY = f"ben_uk-south_{ULID}"
MISSING_EU_PAYOUT = f"pay_eu-central_{ULID}"
MISSING_US_PAYOUT = f"pay_us-east_{ULID}"
TRANSFER_ID = f"trf_eu-central_{ULID}"

EU_IBAN_COUNTRIES = ["DE", "FR", "NL", "ES", "IT", "BE", "IE"]


def ok(out: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in out, out
    data: dict[str, Any] = out["data"]
    return data


def assert_validation(result: dict[str, Any], field: str) -> None:
    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "VALIDATION_ERROR", result
    assert result["field"] == field, result
    assert result["message"], result


def assert_error(result: dict[str, Any], typename: str, code: str) -> None:
    assert result["__typename"] == typename, result
    assert result["code"] == code, result
    assert result["message"], result


def assert_top_level(out: dict[str, Any], code: str) -> None:
    assert out.get("data") is None, out
    assert [e["extensions"]["code"] for e in out["errors"]] == [code], out


async def state(p: Partner) -> dict[str, Any]:
    """Everything a rejected request might have written, as the tenant's admin sees it."""
    return ok(await p.gql(TENANT_STATE))


def nodes(st: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e["node"] for e in st[name]["edges"]]


def account_of(st: dict[str, Any], account_id: str) -> dict[str, Any]:
    [found] = [a for a in nodes(st, "accounts") if a["id"] == account_id]
    return found


async def assert_nothing_written(p: Partner, before: dict[str, Any]) -> None:
    assert await state(p) == before


def de_beneficiary(key: str, **over: Any) -> dict[str, Any]:
    data = {"name": "Erika Mustermann", "country": "DE", "currency": "EUR", "iban": DE_IBAN,
            "address": "Hauptstrasse 1, 10115 Berlin", "idempotencyKey": key}
    return {**data, **over}


def us_beneficiary(key: str, **over: Any) -> dict[str, Any]:
    data = {"name": "John Doe", "country": "US", "currency": "USD", "bankCode": US_ROUTING,
            "accountNumber": US_ACCOUNT, "idempotencyKey": key}
    return {**data, **over}


def gb_local_beneficiary(key: str, **over: Any) -> dict[str, Any]:
    data = {"name": "Jane Smith", "country": "GB", "currency": "GBP",
            "bankCode": GB_SORT_CODE, "accountNumber": GB_ACCOUNT, "idempotencyKey": key}
    return {**data, **over}


async def add_beneficiary(p: Partner, data: dict[str, Any]) -> str:
    out = ok(await p.gql(BENEFICIARY, {"input": data}))["createBeneficiary"]
    assert out["__typename"] == "Beneficiary", out
    ben_id: str = out["id"]
    return ben_id


def payout_input(p: Partner, ben_id: str, key: str, **over: Any) -> dict[str, Any]:
    data = {"accountId": p.accounts[0], "beneficiaryId": ben_id, "amount": "10.00",
            "currency": "EUR", "reference": "Invoice 42", "purposeCode": "SUPP",
            "idempotencyKey": key}
    return {**data, **over}


async def add_payout(p: Partner, ben_id: str, key: str = "pay", **over: Any) -> str:
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben_id, key, **over)}))
    result = out["createPayout"]
    assert result["__typename"] == "Payout", result
    assert result["status"] == "PENDING", result
    payout_id: str = result["id"]
    return payout_id


async def add_key(router: Router, p: Partner, role: Role) -> str:
    """Another API key on ``p``'s tenant, with ``role``."""
    async def issue(conn: Any) -> str:
        key: str = (await tenants.create_api_key(conn, test_pepper, p.tenant_id, role,
                                                 officer_scope(role, "EU"))).key
        return key

    key: str = await router.run_control(issue)
    return key


async def issue(p: Partner, account_id: str, country: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(await p.gql(ISSUE, {"input": {
        "accountId": account_id, "country": country, "idempotencyKey": key}}))[
        "issueVirtualIban"]
    return result


# --- createBeneficiary ------------------------------------------------------------------------


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
    pytest.param({"idempotencyKey": "key\x00"}, "idempotencyKey", id="key-nul"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "   "}, "name", id="name-blank"),
    pytest.param({"name": " \t \n "}, "name", id="name-whitespace"),
    pytest.param({"name": "n" * (name_length_max + 1)}, "name", id="name-141"),
    pytest.param({"name": "Erika\x00Mustermann"}, "name", id="name-nul"),
    pytest.param({"name": "Erika\x1bMustermann"}, "name", id="name-escape"),
    pytest.param({"name": "Erika\nMustermann"}, "name", id="name-newline"),
    pytest.param({"name": "Erika\x7fMustermann"}, "name", id="name-del"),
    pytest.param({"name": "Erika\x85Mustermann"}, "name", id="name-c1-control"),
    pytest.param({"address": "a" * (address_length_max + 1)}, "address", id="address-281"),
    pytest.param({"address": "Hauptstrasse 1\x00"}, "address", id="address-nul"),
    pytest.param({"address": "Hauptstrasse 1\r\nBerlin"}, "address", id="address-crlf"),
    pytest.param({"address": "Hauptstrasse\x07 1"}, "address", id="address-bell"),
    pytest.param({"currency": "ABC"}, "currency", id="currency-unknown"),
    pytest.param({"currency": "eur"}, "currency", id="currency-lowercase"),
    pytest.param({"currency": "XAU"}, "currency", id="currency-gold"),
    pytest.param({"currency": "EURO"}, "currency", id="currency-four-letters"),
    pytest.param({"currency": ""}, "currency", id="currency-empty"),
    pytest.param({"country": "de"}, "country", id="country-lowercase"),
    pytest.param({"country": "DEU"}, "country", id="country-alpha-3"),
    pytest.param({"country": "XX"}, "country", id="country-xx"),
    pytest.param({"country": "D"}, "country", id="country-one-letter"),
    pytest.param({"country": ""}, "country", id="country-empty"),
    pytest.param({"country": "276"}, "country", id="country-numeric"),
    pytest.param({"iban": "DE88370400440532013000"}, "iban", id="iban-check-digits"),
    pytest.param({"iban": "DE8937040044053201300"}, "iban", id="iban-too-short"),
    pytest.param({"iban": "DE89" + "0" * 40}, "iban", id="iban-over-34"),
    pytest.param({"iban": "D" * 65}, "iban", id="iban-over-64-characters"),
    pytest.param({"iban": "DE89\x003704"}, "iban", id="iban-nul"),
    pytest.param({"iban": GB_IBAN}, "iban", id="iban-of-gb-for-de"),
    pytest.param({"iban": FR_IBAN}, "iban", id="iban-of-fr-for-de"),
    pytest.param({"iban": None}, "iban", id="iban-missing"),
    pytest.param({"iban": ""}, "iban", id="iban-empty"),
    pytest.param({"iban": "   "}, "iban", id="iban-blank"),
    pytest.param({"accountNumber": "0532013000"}, "accountNumber", id="account-number-for-de"),
    pytest.param({"iban": None, "accountNumber": "0532013000"}, "accountNumber",
                 id="account-number-instead-of-iban"),
    pytest.param({"bankCode": "37040044"}, "bankCode", id="bank-code-for-de"),
    pytest.param({"bic": "NOTABIC"}, "bic", id="bic-7-characters"),
    pytest.param({"bic": "DEUTDEFF1"}, "bic", id="bic-9-characters"),
    pytest.param({"bic": "COBA1EFF"}, "bic", id="bic-digit-in-bank"),
    pytest.param({"bic": "NWBKGB2L"}, "bic", id="bic-of-gb-for-de"),
    pytest.param({"bic": "CHASUS33"}, "bic", id="bic-of-us-for-de"),
    pytest.param({"country": "\uff24\uff25"}, "country", id="country-fullwidth"),
    pytest.param({"iban": "\uff24\uff25" + DE_IBAN[2:]}, "iban", id="iban-fullwidth"),
])
async def test_beneficiary_bad_de_input(make_partner: MakePartner, over: dict[str, Any],
                                        field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("bad-ben", **over)}))
    assert_validation(out["createBeneficiary"], field)
    await assert_nothing_written(p, before)
    assert nodes(before, "beneficiaries") == []


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"country": "FR", "iban": DE_IBAN}, "iban", id="fr-with-de-iban"),
    pytest.param({"country": "FR", "iban": FR_IBAN_BAD_RIB_KEY}, "iban",
                 id="fr-national-checksum"),
    pytest.param({"country": "GB", "currency": "GBP", "iban": DE_IBAN}, "iban",
                 id="gb-with-de-iban"),
    pytest.param({"country": "CH", "currency": "CHF", "iban": DE_IBAN}, "iban",
                 id="ch-with-de-iban"),
    pytest.param({"country": "GB", "currency": "GBP", "iban": GB_IBAN, "bic": "COBADEFF"},
                 "bic", id="gb-with-de-bic"),
])
async def test_beneficiary_iban_of_another_country(make_partner: MakePartner,
                                                   over: dict[str, Any], field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("other-country", **over)}))
    assert_validation(out["createBeneficiary"], field)
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"bankCode": "021000022"}, "bankCode", id="aba-checksum"),
    pytest.param({"bankCode": "123456789"}, "bankCode", id="aba-checksum-other"),
    pytest.param({"bankCode": "02100002"}, "bankCode", id="aba-8-digits"),
    pytest.param({"bankCode": "0210000210"}, "bankCode", id="aba-10-digits"),
    pytest.param({"bankCode": "02100002A"}, "bankCode", id="aba-letter"),
    pytest.param({"bankCode": None}, "bankCode", id="aba-missing"),
    pytest.param({"accountNumber": "12345678A"}, "accountNumber", id="account-letter"),
    pytest.param({"accountNumber": "ACCOUNT"}, "accountNumber", id="account-letters-only"),
    pytest.param({"accountNumber": "1234-5678"}, "accountNumber", id="account-dash"),
    pytest.param({"accountNumber": "123"}, "accountNumber", id="account-3-digits"),
    pytest.param({"accountNumber": "1" * 18}, "accountNumber", id="account-18-digits"),
    pytest.param({"accountNumber": None}, "accountNumber", id="account-missing"),
    pytest.param({"iban": DE_IBAN}, "iban", id="iban-for-us"),
    pytest.param({"bic": "COBADEFF"}, "bic", id="bic-of-de-for-us"),
    pytest.param({"bankCode": "\uff10\uff12\uff11\uff10\uff10\uff10\uff10\uff12\uff11"},
                 "bankCode", id="aba-fullwidth-digits"),
    pytest.param({"accountNumber": "12345678\u00b2"}, "accountNumber",
                 id="account-superscript-digit"),
    pytest.param({"accountNumber": "\u0661\u0662\u0663\u0664\u0665"}, "accountNumber",
                 id="account-arabic-indic-digits"),
])
async def test_beneficiary_bad_us_input(make_partner: MakePartner, over: dict[str, Any],
                                        field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(BENEFICIARY, {"input": us_beneficiary("bad-us", **over)}))
    assert_validation(out["createBeneficiary"], field)
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"bankCode": "60161"}, "bankCode", id="sort-code-5-digits"),
    pytest.param({"bankCode": "6016133"}, "bankCode", id="sort-code-7-digits"),
    pytest.param({"bankCode": "60161A"}, "bankCode", id="sort-code-letter"),
    pytest.param({"bankCode": None}, "bankCode", id="sort-code-missing"),
    pytest.param({"accountNumber": "3192681"}, "accountNumber", id="account-7-digits"),
    pytest.param({"accountNumber": "319268190"}, "accountNumber", id="account-9-digits"),
    pytest.param({"accountNumber": None}, "accountNumber", id="account-missing"),
    pytest.param({"iban": GB_IBAN}, "bankCode", id="iban-and-sort-code"),
])
async def test_beneficiary_bad_gb_local_input(make_partner: MakePartner,
                                              over: dict[str, Any], field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(BENEFICIARY, {"input": gb_local_beneficiary("bad-gb", **over)}))
    assert_validation(out["createBeneficiary"], field)
    await assert_nothing_written(p, before)


@pytest.mark.parametrize(("data", "masked"), [
    pytest.param(de_beneficiary("de"), "••••3000", id="de-iban"),
    pytest.param(de_beneficiary("de-spaced", iban="de89 3704 0044 0532 0130 00",
                                bic="COBADEFFXXX"), "••••3000", id="de-iban-spaced"),
    pytest.param(de_beneficiary("gb", country="GB", currency="GBP", iban=GB_IBAN,
                                bic="NWBKGB2L"), "••••6819", id="gb-iban"),
    pytest.param(gb_local_beneficiary("gb-local"), "••••6819", id="gb-sort-code"),
    pytest.param(us_beneficiary("us"), "••••6789", id="us-aba"),
    pytest.param(de_beneficiary("unicode", name="Zoë Łukasiewicz-Müller 李雷",
                                address="Straße 1, Köln"), "••••3000", id="unicode-name"),
    pytest.param(de_beneficiary("limits", name="n" * name_length_max,
                                address="a" * address_length_max,
                                idempotencyKey="k" * key_length_max), "••••3000",
                 id="limits-inclusive"),
])
async def test_beneficiary_valid_details_accepted(make_partner: MakePartner,
                                                  data: dict[str, Any], masked: str) -> None:
    """The control for the rejections above: the same path accepts well-formed details."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = ok(await p.gql(BENEFICIARY, {"input": data}))["createBeneficiary"]
    assert out["__typename"] == "Beneficiary", out
    assert (out["status"], out["country"], out["currency"]) == (
        "ACTIVE", data["country"], data["currency"])
    assert out["name"] == data["name"]
    assert out["accountNumberMasked"] == masked
    assert [b["id"] for b in nodes(await state(p), "beneficiaries")] == [out["id"]]


async def test_beneficiary_name_is_stored_trimmed(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("trim", name="  Erika  ")}))
    assert out["createBeneficiary"]["name"] == "Erika", out
    again = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("trim", name="Erika")}))
    assert again == out


@pytest.mark.parametrize(("query", "name", "field", "make_input"), [
    pytest.param(BENEFICIARY, "createBeneficiary", "name",
                 lambda p, ben: de_beneficiary("sur", name="SURROGATE"), id="ben-name"),
    pytest.param(BENEFICIARY, "createBeneficiary", "address",
                 lambda p, ben: de_beneficiary("sur", address="SURROGATE"), id="ben-address"),
    pytest.param(BENEFICIARY, "createBeneficiary", "iban",
                 lambda p, ben: de_beneficiary("sur", iban="SURROGATE"), id="ben-iban"),
    pytest.param(BENEFICIARY, "createBeneficiary", "idempotencyKey",
                 lambda p, ben: de_beneficiary("SURROGATE"), id="ben-key"),
    pytest.param(PAYOUT, "createPayout", "reference",
                 lambda p, ben: payout_input(p, ben, "sur", reference="SURROGATE"),
                 id="payout-reference"),
    pytest.param(PAYOUT, "createPayout", "purposeCode",
                 lambda p, ben: payout_input(p, ben, "sur", purposeCode="SURROGATE"),
                 id="payout-purpose"),
    pytest.param(ISSUE, "issueVirtualIban", "country",
                 lambda p, ben: {"accountId": p.accounts[0], "country": "SURROGATE",
                                 "idempotencyKey": "sur"}, id="issue-country"),
])
async def test_lone_surrogate_is_not_an_internal_error(
        make_partner: MakePartner, query: str, name: str, field: str,
        make_input: Callable[[Partner, str], dict[str, Any]]) -> None:
    """JSON may escape a lone surrogate (\\ud800); it is not text that can be sealed or
    stored, and must come back as bad input, not as an unexpected server failure."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    before = await state(p)
    raw = json.dumps({"query": query, "variables": {"input": make_input(p, ben)}}).replace(
        "SURROGATE", "x\\ud800")
    resp = await p.client.post("/graphql", content=raw, headers={
        "Authorization": f"Bearer {p.key}", "Content-Type": "application/json"})
    assert resp.status_code in (200, 400), resp.text
    assert "INTERNAL_SERVER_ERROR" not in resp.text, resp.text
    if resp.status_code == 200 and (resp.json().get("data") or {}).get(name):
        assert_validation(resp.json()["data"][name], field)
    await assert_nothing_written(p, before)


async def test_beneficiary_key_reused_with_other_input(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    first = await add_beneficiary(p, de_beneficiary("reused"))
    before = await state(p)
    for over in ({"name": "Max Mustermann"}, {"address": None}, {"currency": "USD"},
                 {"country": "GB", "currency": "GBP", "iban": GB_IBAN}):
        out = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("reused", **over)}))
        result = out["createBeneficiary"]
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert result["idempotencyKey"] == "reused", result
    await assert_nothing_written(p, before)
    assert [b["id"] for b in nodes(before, "beneficiaries")] == [first]


async def test_beneficiary_key_replayed_with_same_input(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    first = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("replay")}))[
        "createBeneficiary"]
    assert first["__typename"] == "Beneficiary", first
    before = await state(p)
    # The same account written differently is the same input.
    for data in (de_beneficiary("replay"),
                 de_beneficiary("replay", iban="de89 3704 0044 0532 0130 00")):
        again = ok(await p.gql(BENEFICIARY, {"input": data}))["createBeneficiary"]
        assert again == first
    await assert_nothing_written(p, before)
    assert [b["id"] for b in nodes(before, "beneficiaries")] == [first["id"]]


async def test_beneficiary_rejected_input_leaves_the_key_unused(
        make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    bad = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary(
        "retry-me", iban="DE88370400440532013000")}))
    assert_validation(bad["createBeneficiary"], "iban")
    good = ok(await p.gql(BENEFICIARY, {"input": de_beneficiary("retry-me")}))
    assert good["createBeneficiary"]["__typename"] == "Beneficiary", good


@pytest.mark.parametrize(("data", "what"), [
    pytest.param({"country": "DE", "currency": "EUR", "iban": DE_IBAN,
                  "idempotencyKey": "t"}, "no name", id="missing-name"),
    pytest.param(de_beneficiary("t", name=None), "name null", id="name-null"),
    pytest.param(de_beneficiary("t", country=276), "country as a number", id="country-int"),
    pytest.param({"name": "Erika", "country": "DE", "currency": "EUR", "iban": DE_IBAN},
                 "no key", id="missing-key"),
])
async def test_beneficiary_wrong_graphql_types(make_partner: MakePartner,
                                               data: dict[str, Any], what: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = await p.gql(BENEFICIARY, {"input": data})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


# --- issueVirtualIban -------------------------------------------------------------------------


@pytest.mark.parametrize("account_id", [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(TRANSFER_ID, id="transfer-id"),
    pytest.param(MISSING_EU_BENEFICIARY, id="beneficiary-id"),
    pytest.param(f"acc_eu-central_{ULID.lower()}", id="lowercase-ulid"),
    pytest.param(f"acc_eu-central_{ULID}X", id="ulid-27"),
    pytest.param("acc_" + "x" * 80, id="over-64"),
])
async def test_issue_malformed_account_id(make_partner: MakePartner, account_id: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    assert_validation(await issue(p, account_id, "DE", "bad-acc"), "accountId")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("account_id", [MISSING_EU_ACCOUNT, MISSING_US_ACCOUNT],
                         ids=["own-region", "other-region"])
async def test_issue_unknown_account_is_not_found(make_partner: MakePartner,
                                                  account_id: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    assert_error(await issue(p, account_id, "DE", "unknown"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("other_jurisdiction", ["EU", "UK"])
async def test_issue_on_another_tenants_account_is_not_found(
        make_partner: MakePartner, other_jurisdiction: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    other = await make_partner(other_jurisdiction, funded={"EUR": 100_00})
    before, other_before = await state(p), await state(other)
    assert_error(await issue(p, other.accounts[0], "DE", "theirs"), "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)
    await assert_nothing_written(other, other_before)
    assert account_of(other_before, other.accounts[0])["virtualIbans"] == []


@pytest.mark.parametrize(("jurisdiction", "country"), [
    pytest.param("EU", "GB", id="eu-gb"),
    pytest.param("EU", "US", id="eu-us"),
    pytest.param("EU", "CH", id="eu-ch"),
    pytest.param("EU", "de", id="eu-lowercase"),
    pytest.param("EU", " DE", id="eu-space"),
    pytest.param("EU", "DEU", id="eu-alpha-3"),
    pytest.param("EU", "XX", id="eu-xx"),
    pytest.param("EU", "", id="eu-empty"),
    pytest.param("UK", "DE", id="uk-de"),
    pytest.param("UK", "IE", id="uk-ie"),
    pytest.param("UK", "US", id="uk-us"),
    pytest.param("US", "GB", id="us-gb"),
])
async def test_issue_country_not_allowed(make_partner: MakePartner, jurisdiction: str,
                                         country: str) -> None:
    p = await make_partner(jurisdiction, funded={"EUR": 100_00})
    before = await state(p)
    assert_validation(await issue(p, p.accounts[0], country, "country"), "country")
    await assert_nothing_written(p, before)
    assert account_of(before, p.accounts[0])["virtualIbans"] == []


@pytest.mark.parametrize("key", ["", "k" * (key_length_max + 1), "key\x00"],
                         ids=["empty", "256", "nul"])
async def test_issue_bad_idempotency_key(make_partner: MakePartner, key: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    assert_validation(await issue(p, p.accounts[0], "DE", key), "idempotencyKey")
    await assert_nothing_written(p, before)


async def test_issue_limit_per_account(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    issued = []
    for i in range(per_account_max):
        result = await issue(p, p.accounts[0], EU_IBAN_COUNTRIES[i % 7], f"vib-{i}")
        assert result["__typename"] == "VirtualIban", (i, result)
        issued.append(result)
    before = await state(p)
    assert len(account_of(before, p.accounts[0])["virtualIbans"]) == per_account_max
    for country in ("DE", "NL"):
        over = await issue(p, p.accounts[0], country, f"one-too-many-{country}")
        assert_error(over, "LimitExceeded", "LIMIT_EXCEEDED")
    await assert_nothing_written(p, before)
    # A replay of an earlier request is not a new IBAN, so the limit does not refuse it.
    assert await issue(p, p.accounts[0], EU_IBAN_COUNTRIES[0], "vib-0") == issued[0]
    await assert_nothing_written(p, before)
    # The limit is per account: the tenant's other account still gets one, and the refused
    # request's key was not used up.
    other = await issue(p, p.accounts[1], "DE", "one-too-many-DE")
    assert other["__typename"] == "VirtualIban", other
    assert other["accountId"] == p.accounts[1]


async def test_issue_limit_holds_under_concurrent_requests(make_partner: MakePartner) -> None:
    """Requests that race for the last free place: exactly one gets it."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    for i in range(per_account_max - 1):
        result = await issue(p, p.accounts[0], "DE", f"vib-{i}")
        assert result["__typename"] == "VirtualIban", (i, result)
    racing = 10
    # The test client runs one request at a time; the app itself, over plain ASGI, does not.
    transport = httpx.ASGITransport(app=p.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://corridor.test") as raw:
        async def race(i: int) -> dict[str, Any]:
            resp = await raw.post("/graphql", headers={"Authorization": f"Bearer {p.key}"},
                                  json={"query": ISSUE, "variables": {"input": {
                                      "accountId": p.accounts[0], "country": "NL",
                                      "idempotencyKey": f"race-{i}"}}})
            assert resp.status_code == 200, resp.text
            result: dict[str, Any] = ok(resp.json())["issueVirtualIban"]
            return result

        results = await asyncio.gather(*[race(i) for i in range(racing)])
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["LimitExceeded"] * (racing - 1) + ["VirtualIban"], results
    listed = account_of(await state(p), p.accounts[0])["virtualIbans"]
    assert len(listed) == per_account_max, listed


async def test_issue_refusals_leave_the_key_unused(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    assert_error(await issue(p, MISSING_EU_ACCOUNT, "DE", "retry"), "NotFound", "NOT_FOUND")
    assert_validation(await issue(p, p.accounts[0], "GB", "retry"), "country")
    result = await issue(p, p.accounts[0], "DE", "retry")
    assert result["__typename"] == "VirtualIban", result
    assert result["accountId"] == p.accounts[0]


async def test_issue_with_a_key_of_another_mutation(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    await add_beneficiary(p, de_beneficiary("shared-key"))
    before = await state(p)
    conflict = await issue(p, p.accounts[0], "DE", "shared-key")
    assert_error(conflict, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
    assert conflict["idempotencyKey"] == "shared-key"
    await assert_nothing_written(p, before)
    assert account_of(before, p.accounts[0])["virtualIbans"] == []


async def test_issue_key_replays_the_same_iban(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    first = await issue(p, p.accounts[0], "FR", "once")
    assert first["__typename"] == "VirtualIban", first
    before = await state(p)
    assert await issue(p, p.accounts[0], "FR", "once") == first
    for account_id, country in ((p.accounts[0], "DE"), (p.accounts[1], "FR")):
        conflict = await issue(p, account_id, country, "once")
        assert_error(conflict, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert conflict["idempotencyKey"] == "once"
    await assert_nothing_written(p, before)
    assert [v["iban"] for v in account_of(before, p.accounts[0])["virtualIbans"]] == [
        first["iban"]]
    assert account_of(before, p.accounts[1])["virtualIbans"] == []


async def test_issued_eu_ibans_are_valid(make_partner: MakePartner) -> None:
    """Each issued IBAN passes schwifty's national (BBAN) checks, is in the country asked,
    carries a BIC of that country, and is listed on the account that asked."""
    p = await make_partner("EU", extra={"EUR": len(EU_IBAN_COUNTRIES)})
    seen: set[str] = set()
    for account_id, country in zip(p.accounts, EU_IBAN_COUNTRIES, strict=True):
        ibans = []
        for i in range(per_account_max):
            result = await issue(p, account_id, country, f"{country}-{i}")
            assert result["__typename"] == "VirtualIban", result
            assert (result["accountId"], result["country"], result["scheme"]) == (
                account_id, country, "IBAN"), result
            iban = IBAN(result["iban"], validate_bban=True)
            assert iban.country_code == country, result
            assert str(iban) == result["iban"], result
            assert result["bic"] is not None, result
            assert BIC(result["bic"]).country_code == country, result
            ibans.append(result["iban"])
        seen |= set(ibans)
        listed = account_of(await state(p), account_id)["virtualIbans"]
        assert sorted(v["iban"] for v in listed) == sorted(ibans)
    assert len(seen) == len(EU_IBAN_COUNTRIES) * per_account_max


async def test_uk_tenant_is_issued_gb_ibans(make_partner: MakePartner) -> None:
    """The control for the UK refusals above."""
    p = await make_partner("UK", funded={"GBP": 100_00})
    result = await issue(p, p.accounts[0], "GB", "gb")
    assert result["__typename"] == "VirtualIban", result
    assert IBAN(result["iban"], validate_bban=True).country_code == "GB"


# --- createPayout -----------------------------------------------------------------------------


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"amount": "0"}, "amount", id="amount-zero"),
    pytest.param({"amount": "0.00"}, "amount", id="amount-zero-decimals"),
    pytest.param({"amount": "-1"}, "amount", id="amount-negative"),
    pytest.param({"amount": "-0.01"}, "amount", id="amount-negative-cent"),
    pytest.param({"amount": "1.001"}, "amount", id="amount-3-decimals"),
    pytest.param({"amount": "abc"}, "amount", id="amount-letters"),
    pytest.param({"amount": ""}, "amount", id="amount-empty"),
    pytest.param({"amount": "1e3"}, "amount", id="amount-exponent"),
    pytest.param({"amount": " 5.00"}, "amount", id="amount-space"),
    pytest.param({"amount": "5,00"}, "amount", id="amount-comma"),
    pytest.param({"amount": "NaN"}, "amount", id="amount-nan"),
    pytest.param({"amount": f"{amount_minor_max // 100 + 1}.00"}, "amount",
                 id="amount-over-max"),
    pytest.param({"amount": "9" * 30}, "amount", id="amount-absurd"),
    pytest.param({"currency": "ABC"}, "currency", id="currency-unknown"),
    pytest.param({"currency": "eur"}, "currency", id="currency-lowercase"),
    pytest.param({"currency": "XAU"}, "currency", id="currency-gold"),
    pytest.param({"currency": ""}, "currency", id="currency-empty"),
    pytest.param({"accountId": "nope"}, "accountId", id="account-garbage"),
    pytest.param({"accountId": ""}, "accountId", id="account-empty"),
    pytest.param({"accountId": TRANSFER_ID}, "accountId", id="account-transfer-id"),
    pytest.param({"accountId": MISSING_EU_BENEFICIARY}, "accountId",
                 id="account-beneficiary-id"),
    pytest.param({"beneficiaryId": "nope"}, "beneficiaryId", id="ben-garbage"),
    pytest.param({"beneficiaryId": ""}, "beneficiaryId", id="ben-empty"),
    pytest.param({"beneficiaryId": MISSING_EU_ACCOUNT}, "beneficiaryId", id="ben-account-id"),
    pytest.param({"beneficiaryId": MISSING_EU_PAYOUT}, "beneficiaryId", id="ben-payout-id"),
    pytest.param({"purposeCode": "sala"}, "purposeCode", id="purpose-lowercase"),
    pytest.param({"purposeCode": "Sala"}, "purposeCode", id="purpose-mixed-case"),
    pytest.param({"purposeCode": "SAL"}, "purposeCode", id="purpose-3"),
    pytest.param({"purposeCode": "SALA1"}, "purposeCode", id="purpose-5"),
    pytest.param({"purposeCode": "SAL1"}, "purposeCode", id="purpose-digit"),
    pytest.param({"purposeCode": ""}, "purposeCode", id="purpose-empty"),
    pytest.param({"purposeCode": "SÄLA"}, "purposeCode", id="purpose-non-ascii"),
    pytest.param({"purposeCode": "\uff33\uff21\uff2c\uff21"}, "purposeCode",
                 id="purpose-fullwidth"),
    pytest.param({"amount": "\uff11\uff10.00"}, "amount", id="amount-fullwidth"),
    pytest.param({"amount": "\u0661\u0660.00"}, "amount", id="amount-arabic-indic"),
    pytest.param({"reference": "r" * (reference_length_max + 1)}, "reference",
                 id="reference-141"),
    pytest.param({"reference": "Invoice\x0042"}, "reference", id="reference-nul"),
    pytest.param({"reference": "Invoice\n42"}, "reference", id="reference-newline"),
    pytest.param({"reference": "Invoice\x1b[31m42"}, "reference", id="reference-escape"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
])
async def test_payout_bad_field(make_partner: MakePartner, over: dict[str, Any],
                                field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "bad-payout", **over)}))
    assert_validation(out["createPayout"], field)
    await assert_nothing_written(p, before)
    assert nodes(before, "payouts") == []


async def test_payout_currency_other_than_the_beneficiarys(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00, "USD": 100_00})
    eur_ben = await add_beneficiary(p, de_beneficiary("eur-ben"))
    usd_ben = await add_beneficiary(p, us_beneficiary("usd-ben"))
    before = await state(p)
    for ben, account, currency in ((eur_ben, p.accounts[1], "USD"),
                                   (eur_ben, p.accounts[0], "USD"),
                                   (usd_ben, p.accounts[0], "EUR"),
                                   (usd_ben, p.accounts[1], "EUR")):
        out = ok(await p.gql(PAYOUT, {"input": payout_input(
            p, ben, f"mismatch-{ben}-{account}", accountId=account, currency=currency)}))
        assert_validation(out["createPayout"], "currency")
    await assert_nothing_written(p, before)
    assert nodes(before, "payouts") == []


async def test_payout_from_account_of_other_currency(make_partner: MakePartner) -> None:
    """USD to a USD beneficiary, but out of a EUR account: the account does not match."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, us_beneficiary("usd-ben"))
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "eur-acc", currency="USD")}))
    result = out["createPayout"]
    assert_error(result, "CurrencyMismatch", "CURRENCY_MISMATCH")
    assert result["accountId"] == p.accounts[0]
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("ben_id", [MISSING_EU_BENEFICIARY, MISSING_UK_BENEFICIARY],
                         ids=["own-region", "other-region"])
async def test_payout_unknown_beneficiary(make_partner: MakePartner, ben_id: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben_id, "unknown-ben")}))
    assert_error(out["createPayout"], "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)


@pytest.mark.parametrize("account_id", [MISSING_EU_ACCOUNT, MISSING_US_ACCOUNT],
                         ids=["own-region", "other-region"])
async def test_payout_unknown_account(make_partner: MakePartner, account_id: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "unknown-acc",
                                                         accountId=account_id)}))
    assert_error(out["createPayout"], "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)


async def test_payout_to_another_tenants_beneficiary(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    other = await make_partner("EU", funded={"EUR": 100_00})
    theirs = await add_beneficiary(other, de_beneficiary("theirs"))
    before, other_before = await state(p), await state(other)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, theirs, "their-ben")}))
    assert_error(out["createPayout"], "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)
    await assert_nothing_written(other, other_before)


@pytest.mark.parametrize("other_jurisdiction", ["EU", "UK"])
async def test_payout_from_another_tenants_account(make_partner: MakePartner,
                                                   other_jurisdiction: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    other = await make_partner(other_jurisdiction, funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("mine"))
    before, other_before = await state(p), await state(other)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "their-acc",
                                                         accountId=other.accounts[0])}))
    assert_error(out["createPayout"], "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)
    await assert_nothing_written(other, other_before)
    assert account_of(other_before, other.accounts[0])["balance"]["posted"]["amount"] == "100.00"


async def test_payout_insufficient_funds_holds_nothing(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    before = await state(p)
    # 100.01 is more than the balance; 100.00 is not, but its fee is.
    for amount, account in (("100.01", p.accounts[0]), ("100.00", p.accounts[0]),
                            ("0.01", p.accounts[1])):
        out = ok(await p.gql(PAYOUT, {"input": payout_input(
            p, ben, f"too-much-{amount}", amount=amount, accountId=account)}))
        result = out["createPayout"]
        assert_error(result, "InsufficientFunds", "INSUFFICIENT_FUNDS")
        assert result["accountId"] == account, result
    await assert_nothing_written(p, before)
    balance = account_of(before, p.accounts[0])["balance"]
    assert balance == {"posted": {"amount": "100.00", "currency": "EUR"},
                       "pending": {"amount": "0.00", "currency": "EUR"},
                       "available": {"amount": "100.00", "currency": "EUR"}}
    # The failures consumed no key: the largest payout the balance and fee allow goes through.
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "too-much-100.00",
                                                         amount="99.65")}))
    result = out["createPayout"]
    assert result["__typename"] == "Payout", result
    assert (result["amount"]["amount"], result["fee"]["amount"]) == ("99.65", "0.35")
    after = account_of(await state(p), p.accounts[0])["balance"]
    assert (after["posted"]["amount"], after["available"]["amount"]) == ("100.00", "0.00")


async def test_payout_to_a_country_no_rail_reaches(make_partner: MakePartner) -> None:
    """EUR rails are SEPA: a US account that takes EUR is out of their reach."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, us_beneficiary("us-eur", currency="EUR"))
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "no-rail")}))
    assert_error(out["createPayout"], "RailUnavailable", "RAIL_UNAVAILABLE")
    await assert_nothing_written(p, before)


async def test_payout_in_a_currency_without_rail(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"CHF": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("chf", country="CH", currency="CHF",
                                                  iban=CH_IBAN))
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "chf-pay", currency="CHF")}))
    assert_error(out["createPayout"], "RailUnavailable", "RAIL_UNAVAILABLE")
    await assert_nothing_written(p, before)


async def test_payout_over_every_rails_maximum(make_partner: MakePartner) -> None:
    """GBP goes by Faster Payments only, which takes at most 1,000,000.00."""
    p = await make_partner("EU", funded={"GBP": 2_000_000_00})
    ben = await add_beneficiary(p, gb_local_beneficiary("gbp"))
    before = await state(p)
    out = ok(await p.gql(PAYOUT, {"input": payout_input(
        p, ben, "too-big", currency="GBP", amount="1000000.01")}))
    assert_error(out["createPayout"], "RailUnavailable", "RAIL_UNAVAILABLE")
    await assert_nothing_written(p, before)


async def test_payout_key_reused(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben-key"))
    first = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "pay-once")}))["createPayout"]
    assert first["__typename"] == "Payout", first
    before = await state(p)
    assert ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "pay-once")}))[
        "createPayout"] == first
    for key, over in (("pay-once", {"amount": "10.01"}), ("pay-once", {"reference": "other"}),
                      ("pay-once", {"purposeCode": None}), ("ben-key", {})):
        result = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, key, **over)}))[
            "createPayout"]
        assert_error(result, "IdempotencyConflict", "IDEMPOTENCY_CONFLICT")
        assert result["idempotencyKey"] == key
    await assert_nothing_written(p, before)
    assert [x["id"] for x in nodes(before, "payouts")] == [first["id"]]


async def test_payout_refusals_leave_the_key_unused(make_partner: MakePartner) -> None:
    """Refusals found inside the transaction (after the key was claimed) release the key."""
    p = await make_partner("EU", funded={"EUR": 100_00, "USD": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    us_eur = await add_beneficiary(p, us_beneficiary("us-eur", currency="EUR"))
    for over, typename in (({"beneficiaryId": MISSING_EU_BENEFICIARY}, "NotFound"),
                           ({"accountId": MISSING_EU_ACCOUNT}, "NotFound"),
                           ({"currency": "USD", "accountId": p.accounts[1]}, "ValidationError"),
                           ({"beneficiaryId": us_eur}, "RailUnavailable"),
                           ({"amount": "100.00"}, "InsufficientFunds")):
        result = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "retry", **over)}))[
            "createPayout"]
        assert result["__typename"] == typename, (over, result)
    assert nodes(await state(p), "payouts") == []
    result = ok(await p.gql(PAYOUT, {"input": payout_input(p, ben, "retry")}))["createPayout"]
    assert result["__typename"] == "Payout", result
    assert (result["beneficiaryId"], result["amount"]["amount"]) == (ben, "10.00")


async def test_payout_limits_inclusive(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    reference = "r" * reference_length_max
    result = ok(await p.gql(PAYOUT, {"input": payout_input(
        p, ben, "k" * key_length_max, reference=reference, amount="0.01",
        purposeCode=None)}))["createPayout"]
    assert result["__typename"] == "Payout", result
    assert (result["reference"], result["purposeCode"]) == (reference, None)
    assert (result["rail"], result["amount"], result["fee"]) == (
        "SEPA_INSTANT", {"amount": "0.01", "currency": "EUR"},
        {"amount": "0.35", "currency": "EUR"})


@pytest.mark.parametrize(("data", "what"), [
    pytest.param({"amount": 10}, "amount as a number", id="amount-int"),
    pytest.param({"amount": None}, "amount null", id="amount-null"),
    pytest.param({"beneficiaryId": None}, "beneficiary null", id="ben-null"),
    pytest.param({"purposeCode": 4}, "purpose code as a number", id="purpose-int"),
])
async def test_payout_wrong_graphql_types(make_partner: MakePartner, data: dict[str, Any],
                                          what: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    before = await state(p)
    out = await p.gql(PAYOUT, {"input": payout_input(p, ben, "types", **data)})
    assert out.get("data") is None, (what, out)
    assert out["errors"], what
    await assert_nothing_written(p, before)


# --- cancelPayout -----------------------------------------------------------------------------


@pytest.mark.parametrize(("over", "field"), [
    pytest.param({"payoutId": "nope"}, "payoutId", id="garbage"),
    pytest.param({"payoutId": ""}, "payoutId", id="empty"),
    pytest.param({"payoutId": TRANSFER_ID}, "payoutId", id="transfer-id"),
    pytest.param({"payoutId": MISSING_EU_BENEFICIARY}, "payoutId", id="beneficiary-id"),
    pytest.param({"payoutId": "pay_eu-central_" + "Z" * 26}, "payoutId", id="ulid-overflow"),
    pytest.param({"idempotencyKey": ""}, "idempotencyKey", id="key-empty"),
    pytest.param({"idempotencyKey": "k" * (key_length_max + 1)}, "idempotencyKey",
                 id="key-256"),
])
async def test_cancel_bad_field(make_partner: MakePartner, over: dict[str, Any],
                                field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    payout = await add_payout(p, await add_beneficiary(p, de_beneficiary("ben")))
    before = await state(p)
    data = {"payoutId": payout, "idempotencyKey": "bad-cancel", **over}
    out = ok(await p.gql(CANCEL, {"input": data}))
    assert_validation(out["cancelPayout"], field)
    after = await state(p)
    assert after == before
    assert [x["status"] for x in nodes(after, "payouts")] == ["PENDING"]


@pytest.mark.parametrize("payout_id", [MISSING_EU_PAYOUT, MISSING_US_PAYOUT],
                         ids=["own-region", "other-region"])
async def test_cancel_unknown_payout(make_partner: MakePartner, payout_id: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await state(p)
    out = ok(await p.gql(CANCEL, {"input": {"payoutId": payout_id,
                                            "idempotencyKey": "unknown"}}))
    assert_error(out["cancelPayout"], "NotFound", "NOT_FOUND")
    await assert_nothing_written(p, before)


async def test_cancel_another_tenants_payout(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    other = await make_partner("EU", funded={"EUR": 100_00})
    theirs = await add_payout(other, await add_beneficiary(other, de_beneficiary("theirs")))
    before, other_before = await state(p), await state(other)
    out = ok(await p.gql(CANCEL, {"input": {"payoutId": theirs, "idempotencyKey": "steal"}}))
    assert_error(out["cancelPayout"], "NotFound", "NOT_FOUND")
    assert await state(p) == before
    assert await state(other) == other_before
    assert [x["status"] for x in nodes(other_before, "payouts")] == ["PENDING"]
    held = account_of(other_before, other.accounts[0])["balance"]
    assert (held["pending"]["amount"], held["available"]["amount"]) == ("-10.35", "89.65")


async def test_cancel_twice(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    payout = await add_payout(p, await add_beneficiary(p, de_beneficiary("ben")))
    first = ok(await p.gql(CANCEL, {"input": {"payoutId": payout, "idempotencyKey": "c1"}}))[
        "cancelPayout"]
    assert (first["__typename"], first["status"]) == ("Payout", "CANCELLED"), first
    before = await state(p)
    balance = account_of(before, p.accounts[0])["balance"]
    assert (balance["pending"]["amount"], balance["available"]["amount"]) == ("0.00", "100.00")
    assert ok(await p.gql(CANCEL, {"input": {"payoutId": payout, "idempotencyKey": "c1"}}))[
        "cancelPayout"] == first
    again = ok(await p.gql(CANCEL, {"input": {"payoutId": payout, "idempotencyKey": "c2"}}))[
        "cancelPayout"]
    assert_error(again, "PayoutNotCancellable", "PAYOUT_NOT_CANCELLABLE")
    await assert_nothing_written(p, before)


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR, Role.SRE,
                                  Role.COMPLIANCE_OFFICER])
async def test_non_admin_key_may_not_move_money_out(make_partner: MakePartner,
                                                    router: Router, role: Role) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    payout = await add_payout(p, ben)
    before = await state(p)
    readonly = await add_key(router, p, role)
    attempts = [
        (BENEFICIARY, {"input": de_beneficiary("ro-ben")}),
        (ISSUE, {"input": {"accountId": p.accounts[0], "country": "DE",
                           "idempotencyKey": "ro-vib"}}),
        (PAYOUT, {"input": payout_input(p, ben, "ro-pay")}),
        (CANCEL, {"input": {"payoutId": payout, "idempotencyKey": "ro-cancel"}}),
    ]
    for query, variables in attempts:
        assert_top_level(await p.gql(query, variables, key=readonly), "FORBIDDEN")
    await assert_nothing_written(p, before)
    # The refused keys stay free for the admin.
    assert (await issue(p, p.accounts[0], "DE", "ro-vib"))["__typename"] == "VirtualIban"


async def test_readonly_partner_forbidden_on_each_mutation(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, role=Role.PARTNER_READONLY)
    before = await state(p)
    for query, variables in (
            (BENEFICIARY, {"input": de_beneficiary("ro-ben")}),
            (ISSUE, {"input": {"accountId": p.accounts[0], "country": "DE",
                               "idempotencyKey": "ro-vib"}}),
            (PAYOUT, {"input": payout_input(p, MISSING_EU_BENEFICIARY, "ro-pay")}),
            (CANCEL, {"input": {"payoutId": MISSING_EU_PAYOUT, "idempotencyKey": "ro-c"}})):
        assert_top_level(await p.gql(query, variables), "FORBIDDEN")
    await assert_nothing_written(p, before)
    assert nodes(before, "beneficiaries") == []
    assert nodes(before, "payouts") == []


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR])
async def test_readers_see_beneficiaries_and_payouts(make_partner: MakePartner,
                                                     router: Router, role: Role) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    ben = await add_beneficiary(p, de_beneficiary("ben"))
    payout = await add_payout(p, ben)
    reader = await add_key(router, p, role)
    seen = ok(await p.gql(READ_BACK, key=reader))
    assert seen == ok(await p.gql(READ_BACK))
    assert [b["id"] for b in nodes(seen, "beneficiaries")] == [ben]
    assert [x["id"] for x in nodes(seen, "payouts")] == [payout]
    one = ok(await p.gql(GET_BENEFICIARY, {"id": ben}, key=reader))["beneficiary"]
    assert (one["__typename"], one["id"], one["accountNumberMasked"]) == (
        "Beneficiary", ben, "••••3000")
    got = ok(await p.gql(GET_PAYOUT, {"id": payout}, key=reader))["payout"]
    assert (got["__typename"], got["id"], got["beneficiaryId"]) == ("Payout", payout, ben)


@pytest.mark.parametrize("role", [Role.COMPLIANCE_OFFICER, Role.SRE])
async def test_ops_roles_cannot_read_beneficiaries_or_payouts(make_partner: MakePartner,
                                                              role: Role) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, role=role)
    assert_top_level(await p.gql("{ beneficiaries { edges { cursor } } }"), "FORBIDDEN")
    assert_top_level(await p.gql("{ payouts { edges { cursor } } }"), "FORBIDDEN")
    assert_top_level(await p.gql(GET_BENEFICIARY, {"id": MISSING_EU_BENEFICIARY}), "FORBIDDEN")
    assert_top_level(await p.gql(GET_PAYOUT, {"id": MISSING_EU_PAYOUT}), "FORBIDDEN")


# --- queries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(MISSING_EU_PAYOUT, id="payout-id"),
    pytest.param(MISSING_EU_BENEFICIARY, id="unknown"),
    pytest.param(MISSING_UK_BENEFICIARY, id="other-region"),
    pytest.param("ben_" + "x" * 100, id="long"),
])
async def test_beneficiary_query_not_found(make_partner: MakePartner, ident: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    await add_beneficiary(p, de_beneficiary("mine"))
    result = ok(await p.gql(GET_BENEFICIARY, {"id": ident}))["beneficiary"]
    assert_error(result, "NotFound", "NOT_FOUND")


async def test_beneficiary_query_of_another_tenant(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    other = await make_partner("EU", funded={"EUR": 100_00})
    theirs = await add_beneficiary(other, de_beneficiary("theirs"))
    result = ok(await p.gql(GET_BENEFICIARY, {"id": theirs}))["beneficiary"]
    assert_error(result, "NotFound", "NOT_FOUND")
    assert "Erika" not in result["message"]
    assert ok(await other.gql(GET_BENEFICIARY, {"id": theirs}))["beneficiary"]["id"] == theirs


@pytest.mark.parametrize("ident", [
    pytest.param("nope", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(MISSING_EU_BENEFICIARY, id="beneficiary-id"),
    pytest.param(MISSING_EU_PAYOUT, id="unknown"),
    pytest.param(MISSING_US_PAYOUT, id="other-region"),
])
async def test_payout_query_not_found(make_partner: MakePartner, ident: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    await add_payout(p, await add_beneficiary(p, de_beneficiary("mine")))
    result = ok(await p.gql(GET_PAYOUT, {"id": ident}))["payout"]
    assert_error(result, "NotFound", "NOT_FOUND")


async def test_payout_query_of_another_tenant(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    other = await make_partner("EU", funded={"EUR": 100_00})
    theirs = await add_payout(other, await add_beneficiary(other, de_beneficiary("theirs")))
    assert_error(ok(await p.gql(GET_PAYOUT, {"id": theirs}))["payout"], "NotFound", "NOT_FOUND")
    assert nodes(await state(p), "payouts") == []


def assert_bad_user_input(out: dict[str, Any], field: str) -> None:
    assert out.get("data") is None, out
    [error] = out["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", out
    assert error["extensions"]["field"] == field, out


BAD_PAGES = [
    pytest.param("first: 0", "first", id="first-0"),
    pytest.param(f"first: {first_max + 1}", "first", id="first-101"),
    pytest.param("first: -1", "first", id="first-negative"),
    pytest.param('after: "garbage"', "after", id="after-garbage"),
    pytest.param('after: ""', "after", id="after-empty"),
    pytest.param(f'after: "{"A" * 400}"', "after", id="after-long"),
    pytest.param(f'after: "{encode_cursor("acc", "x")}"', "after", id="after-account-cursor"),
    pytest.param(f'after: "{encode_cursor("ben", chr(0))}"', "after", id="after-nul-ben"),
    pytest.param(f'after: "{encode_cursor("pay", chr(0))}"', "after", id="after-nul-pay"),
]


@pytest.mark.parametrize(("args", "field"), BAD_PAGES)
@pytest.mark.parametrize("name", ["payouts", "beneficiaries"])
async def test_bad_page_arguments(make_partner: MakePartner, name: str, args: str,
                                  field: str) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    assert_bad_user_input(await p.gql(f"{{ {name}({args}) {{ edges {{ cursor }} }} }}"), field)


async def test_cursor_of_one_list_is_refused_by_the_other(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    await add_payout(p, await add_beneficiary(p, de_beneficiary("ben")))
    ben_cursor = ok(await p.gql("{ beneficiaries { pageInfo { endCursor } } }"))[
        "beneficiaries"]["pageInfo"]["endCursor"]
    pay_cursor = ok(await p.gql("{ payouts { pageInfo { endCursor } } }"))[
        "payouts"]["pageInfo"]["endCursor"]
    assert_bad_user_input(await p.gql(
        f'{{ payouts(after: "{ben_cursor}") {{ edges {{ cursor }} }} }}'), "after")
    assert_bad_user_input(await p.gql(
        f'{{ beneficiaries(after: "{pay_cursor}") {{ edges {{ cursor }} }} }}'), "after")


async def test_payouts_unknown_status(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = await p.gql("{ payouts(status: SENT) { edges { cursor } } }")
    assert out.get("data") is None, out
    assert out["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", out


async def test_pages_within_bounds(make_partner: MakePartner) -> None:
    """The control: first 1..100 and cursors from the lists themselves are accepted."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    bens = [await add_beneficiary(p, de_beneficiary(f"ben-{i}")) for i in range(3)]
    pays = [await add_payout(p, bens[0], f"pay-{i}", amount="1.00") for i in range(3)]
    for name, created in (("beneficiaries", bens), ("payouts", pays)):
        query = (f"query($first: Int, $after: String) {{ {name}(first: $first, after: $after) "
                 "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }")
        seen: list[str] = []
        after = None
        while True:
            page = ok(await p.gql(query, {"first": 1, "after": after}))[name]
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == created[::-1], name
        full = ok(await p.gql(query, {"first": first_max}))[name]
        assert [e["node"]["id"] for e in full["edges"]] == created[::-1]
        assert full["pageInfo"]["hasNextPage"] is False
    pending = ok(await p.gql("{ payouts(status: PENDING) { edges { node { id } } } }"))
    assert len(pending["payouts"]["edges"]) == 3
    cancelled = ok(await p.gql("{ payouts(status: CANCELLED) { edges { node { id } } } }"))
    assert cancelled["payouts"]["edges"] == []
