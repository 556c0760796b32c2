"""Authentication (API keys), roles, and tenant isolation over HTTP."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from payments.principal import Role
from regions import ledger_queries
from regions.router import Router
from tests.e2e.conftest import MakePartner, Partner, gql

VIEWER = "{ viewer { tenant { id name jurisdiction homeRegion } role } }"
REGIONS = "{ regions { code jurisdictions cloud location status } }"
ACCOUNTS = "{ accounts { edges { node { id currency balance { posted { amount } } } } } }"
TRANSFERS = "{ transfers { edges { node { id fromAccountId toAccountId amount { amount } } } } }"

ACCOUNT = """
query($id: ID!) {
  account(id: $id) {
    __typename
    ... on Account { id currency balance { posted { amount } available { amount } } }
    ... on NotFound { code message }
  }
}"""

TRANSFER = """
query($id: ID!) {
  transfer(id: $id) {
    __typename
    ... on Transfer { id amount { amount currency } }
    ... on NotFound { code message }
  }
}"""

TRANSFERS_OF = """
query($id: ID!) { transfers(accountId: $id) { edges { node { id } } } }"""

CREATE_TRANSFER = """
mutation($input: CreateTransferInput!) {
  createTransfer(input: $input) {
    __typename
    ... on Transfer { id }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}"""

CREATE_BATCH = """
mutation($input: CreateTransferBatchInput!) {
  createTransferBatch(input: $input) {
    __typename
    ... on TransferBatch { id succeeded }
    ... on TransferBatchRejected { index reasonCode }
    ... on Error { code message }
  }
}"""

CREATE_ACCOUNT = """
mutation($input: CreateAccountInput!) {
  createAccount(input: $input) { __typename ... on Account { id } ... on Error { code } }
}"""

MISSING_ACCOUNT = "acc_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY"
MISSING_TRANSFER = "trf_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY"


def ok(out: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in out, out
    data: dict[str, Any] = out["data"]
    return data


def assert_top_level(out: dict[str, Any], code: str) -> None:
    assert out.get("data") is None, out
    assert [e["extensions"]["code"] for e in out["errors"]] == [code], out


async def balances(p: Partner, key: str | None = None) -> dict[str, dict[str, str]]:
    out = {}
    for acc in p.accounts:
        result = ok(await p.gql(ACCOUNT, {"id": acc}, key=key))["account"]
        assert result["__typename"] == "Account", result
        out[acc] = {k: v["amount"] for k, v in result["balance"].items()}
    return out


async def transfer_ids(p: Partner, key: str | None = None) -> list[str]:
    return [e["node"]["id"] for e in ok(await p.gql(TRANSFERS, key=key))["transfers"]["edges"]]


async def account_ids(p: Partner, key: str | None = None) -> list[str]:
    return [e["node"]["id"] for e in ok(await p.gql(ACCOUNTS, key=key))["accounts"]["edges"]]


# --- authentication ---------------------------------------------------------------------------


async def post_raw(client: AsyncTestClient[Any], query: str, headers: dict[str, str],
                   variables: dict[str, Any] | None = None) -> Any:
    return await client.post("/graphql", json={"query": query, "variables": variables or {}},
                             headers=headers)


def assert_unauthenticated(resp: Any) -> None:
    assert resp.status_code == 401, (resp.status_code, resp.text)
    body = resp.json()
    assert "data" not in body or body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert body["errors"][0]["message"], body
    assert resp.headers["www-authenticate"].lower().startswith("bearer"), resp.headers


async def test_no_authorization_header_is_401(client: AsyncTestClient[Any]) -> None:
    assert_unauthenticated(await post_raw(client, VIEWER, {}))


@pytest.mark.parametrize("header", [
    pytest.param("Bearer cor_test_" + "A" * 43, id="unknown-test-key"),
    pytest.param("Bearer cor_live_" + "A" * 43, id="unknown-live-key"),
    pytest.param("Bearer nonsense", id="malformed-key"),
    pytest.param("Bearer ", id="empty-key"),
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("Basic " + base64.b64encode(b"user:pass").decode(), id="basic-scheme"),
    pytest.param("Token cor_test_abc", id="token-scheme"),
    pytest.param("cor_test_abc", id="no-scheme"),
    pytest.param("", id="empty-header"),
    pytest.param("Bearer cor_test_" + "A" * 500, id="overlong-key"),
])
async def test_bad_credentials_are_401(client: AsyncTestClient[Any], header: str) -> None:
    assert_unauthenticated(await post_raw(client, VIEWER, {"Authorization": header}))


async def test_valid_key_with_a_typo_is_401(make_partner: MakePartner,
                                            client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU")
    assert ok(await p.gql(VIEWER))["viewer"]["tenant"]["id"] == p.tenant_id
    last = "B" if p.key[-1] != "B" else "C"
    assert_unauthenticated(await post_raw(client, VIEWER,
                                          {"Authorization": f"Bearer {p.key[:-1]}{last}"}))
    assert_unauthenticated(await post_raw(client, VIEWER,
                                          {"Authorization": f"Bearer {p.key}x"}))


async def test_scheme_is_case_insensitive(make_partner: MakePartner,
                                          client: AsyncTestClient[Any]) -> None:
    """RFC 7235: the auth scheme is case-insensitive; the key itself is not."""
    p = await make_partner("EU")
    resp = await post_raw(client, VIEWER, {"Authorization": f"bearer {p.key}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["viewer"]["tenant"]["id"] == p.tenant_id
    assert_unauthenticated(await post_raw(client, VIEWER,
                                          {"Authorization": f"Bearer {p.key.upper()}"}))


async def test_get_query_without_key_is_401(client: AsyncTestClient[Any]) -> None:
    assert_unauthenticated(await client.get("/graphql", params={"query": VIEWER}))


async def test_unauthenticated_mutation_writes_nothing(make_partner: MakePartner,
                                                      client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await balances(p), await transfer_ids(p)
    variables = {"input": {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1],
                           "amount": "5.00", "currency": "EUR", "idempotencyKey": "anon"}}
    for headers in ({}, {"Authorization": "Bearer cor_test_" + secrets.token_urlsafe(32)}):
        assert_unauthenticated(await post_raw(client, CREATE_TRANSFER, headers, variables))
    assert (await balances(p), await transfer_ids(p)) == before
    # The key was not consumed by the refused requests.
    out = ok(await p.gql(CREATE_TRANSFER, variables))
    assert out["createTransfer"]["__typename"] == "Transfer", out


# --- viewer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("jurisdiction", "region"), [
    ("EU", "eu-central"), ("UK", "uk-south"), ("US", "us-east"), ("SG", "ap-southeast"),
    ("HK", "ap-southeast"), ("CN", "cn-east"),
])
@pytest.mark.parametrize("role", list(Role))
async def test_viewer(make_partner: MakePartner, jurisdiction: str, region: str,
                      role: Role) -> None:
    p = await make_partner(jurisdiction, role=role)
    viewer = ok(await p.gql(VIEWER))["viewer"]
    assert viewer["tenant"]["id"] == p.tenant_id
    assert viewer["tenant"]["jurisdiction"] == jurisdiction
    assert viewer["tenant"]["homeRegion"] == region == p.region
    assert viewer["tenant"]["name"] == "E2E Ltd"
    assert viewer["role"] == role.value


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR])
async def test_readers_can_read(make_partner: MakePartner, role: Role) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1}, role=role)
    assert sorted(await account_ids(p)) == sorted(p.accounts)
    assert await balances(p) == {
        p.accounts[0]: {"posted": "100.00", "available": "100.00"},
        p.accounts[1]: {"posted": "0.00", "available": "0.00"},
    }
    funding = await transfer_ids(p)
    assert len(funding) == 1
    one = ok(await p.gql(TRANSFER, {"id": funding[0]}))["transfer"]
    assert one == {"__typename": "Transfer", "id": funding[0],
                   "amount": {"amount": "100.00", "currency": "EUR"}}
    of_account = ok(await p.gql(TRANSFERS_OF, {"id": p.accounts[0]}))["transfers"]["edges"]
    assert [e["node"]["id"] for e in of_account] == funding
    assert ok(await p.gql(VIEWER))["viewer"]["role"] == role.value
    assert ok(await p.gql(REGIONS))["regions"]


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR, Role.COMPLIANCE_OFFICER,
                                  Role.SRE])
async def test_non_admins_cannot_write(make_partner: MakePartner, role: Role) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1}, role=role)
    readable = role in (Role.PARTNER_READONLY, Role.AUDITOR)
    before = (await balances(p), await transfer_ids(p), await account_ids(p)) if readable else None
    item = {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": "5.00",
            "currency": "EUR"}
    attempts = [
        (CREATE_ACCOUNT, {"input": {"currency": "EUR", "idempotencyKey": "ro-acc"}}),
        (CREATE_TRANSFER, {"input": {**item, "idempotencyKey": "ro-trf"}}),
        (CREATE_BATCH, {"input": {"transfers": [item, item], "idempotencyKey": "ro-batch"}}),
    ]
    for query, variables in attempts:
        out = await p.gql(query, variables)
        assert_top_level(out, "FORBIDDEN")
    if readable:
        assert (await balances(p), await transfer_ids(p), await account_ids(p)) == before


async def test_forbidden_mutation_writes_nothing(make_partner: MakePartner,
                                                 router: Router) -> None:
    """Checked on the ledger itself for roles that may not even read it."""
    for role in (Role.COMPLIANCE_OFFICER, Role.SRE):
        p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1}, role=role)
        item = {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1],
                "amount": "5.00", "currency": "EUR"}
        for query, variables in (
                (CREATE_ACCOUNT, {"input": {"currency": "EUR", "idempotencyKey": "a"}}),
                (CREATE_TRANSFER, {"input": {**item, "idempotencyKey": "t"}}),
                (CREATE_BATCH, {"input": {"transfers": [item], "idempotencyKey": "b"}})):
            assert_top_level(await p.gql(query, variables), "FORBIDDEN")

        async def look(conn: Any, p: Partner = p) -> tuple[Any, Any]:
            accs = await ledger_queries.account_page(conn, p.region, p.tenant_id, 100, None,
                                                     None)
            trfs = await ledger_queries.transfer_page(conn, p.region, p.tenant_id, 100, None,
                                                      None)
            return accs, trfs

        accs, trfs = await router.run(p.region, look)
        assert sorted(r.id for r in accs.items) == sorted(p.accounts)
        assert {r.id: r.debits_posted for r in accs.items} == {a: 0 for a in p.accounts}
        assert len(trfs.items) == 1  # the funding transfer only


@pytest.mark.parametrize("role", [Role.COMPLIANCE_OFFICER, Role.SRE])
async def test_ops_roles_cannot_read_the_ledger(make_partner: MakePartner, role: Role) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1}, role=role)
    assert_top_level(await p.gql(ACCOUNTS), "FORBIDDEN")
    assert_top_level(await p.gql(TRANSFERS), "FORBIDDEN")
    assert_top_level(await p.gql(ACCOUNT, {"id": p.accounts[0]}), "FORBIDDEN")
    assert_top_level(await p.gql(TRANSFERS_OF, {"id": p.accounts[0]}), "FORBIDDEN")
    assert_top_level(await p.gql(TRANSFER, {"id": MISSING_TRANSFER}), "FORBIDDEN")
    out = await p.gql("{ viewer { role } accounts { edges { node { id } } } }")
    assert out.get("data") is None
    assert out["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # ...but they know who they are and where Corridor runs.
    viewer = ok(await p.gql(VIEWER))["viewer"]
    assert (viewer["tenant"]["id"], viewer["role"]) == (p.tenant_id, role.value)
    regions = ok(await p.gql(REGIONS))["regions"]
    assert {r["code"] for r in regions} >= {"eu-central", "uk-south", "us-east", "cn-east"}
    assert all(r["jurisdictions"] for r in regions)


async def test_forbidden_error_reveals_no_data(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, role=Role.SRE)
    out = await p.gql(ACCOUNTS)
    assert p.accounts[0] not in str(out)
    assert "100.00" not in str(out)


# --- isolation --------------------------------------------------------------------------------


def without_ids(result: dict[str, Any], *ids: str) -> dict[str, Any]:
    """The result with the looked-up id blanked from the message, to compare two NotFounds."""
    message = result["message"]
    for ident in ids:
        message = message.replace(ident, "<id>")
    return {**result, "message": message}


@pytest.mark.parametrize("b_jurisdiction", ["EU", "UK"], ids=["same-region", "other-region"])
async def test_other_tenants_account_is_not_found(make_partner: MakePartner,
                                                  b_jurisdiction: str) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    b = await make_partner(b_jurisdiction, funded={"EUR": 50_00})
    theirs = ok(await b.gql(ACCOUNT, {"id": a.accounts[0]}))["account"]
    missing = ok(await b.gql(ACCOUNT, {"id": MISSING_ACCOUNT}))["account"]
    assert theirs["__typename"] == "NotFound", theirs
    assert without_ids(theirs, a.accounts[0]) == without_ids(missing, MISSING_ACCOUNT)
    assert "100.00" not in str(theirs)
    # A still sees its own account.
    assert ok(await a.gql(ACCOUNT, {"id": a.accounts[0]}))["account"]["__typename"] == "Account"


@pytest.mark.parametrize("b_jurisdiction", ["EU", "UK"], ids=["same-region", "other-region"])
async def test_other_tenants_transfer_is_not_found(make_partner: MakePartner,
                                                   b_jurisdiction: str) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    b = await make_partner(b_jurisdiction)
    [funding] = await transfer_ids(a)
    assert ok(await a.gql(TRANSFER, {"id": funding}))["transfer"]["__typename"] == "Transfer"
    theirs = ok(await b.gql(TRANSFER, {"id": funding}))["transfer"]
    missing = ok(await b.gql(TRANSFER, {"id": MISSING_TRANSFER}))["transfer"]
    assert theirs["__typename"] == "NotFound", theirs
    assert without_ids(theirs, funding) == without_ids(missing, MISSING_TRANSFER)


async def test_cannot_move_another_tenants_money(make_partner: MakePartner) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    b = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    a_before, b_before = await balances(a), await balances(b)
    a_transfers = await transfer_ids(a)

    async def attempt(frm: str, to: str, key: str) -> dict[str, Any]:
        out = ok(await b.gql(CREATE_TRANSFER, {"input": {
            "fromAccountId": frm, "toAccountId": to, "amount": "10.00", "currency": "EUR",
            "idempotencyKey": key}}))
        return out["createTransfer"]  # type: ignore[no-any-return]

    steal = await attempt(a.accounts[0], b.accounts[1], "steal")
    assert steal["__typename"] == "NotFound", steal
    assert steal["code"] == "NOT_FOUND"
    missing = await attempt(MISSING_ACCOUNT, b.accounts[1], "missing")
    assert without_ids(steal, a.accounts[0]) == without_ids(missing, MISSING_ACCOUNT)
    # Paying into A's account is refused the same way (no oracle, no unsolicited credit).
    pay = await attempt(b.accounts[0], a.accounts[1], "pay")
    assert pay["__typename"] == "NotFound", pay
    batch = ok(await b.gql(CREATE_BATCH, {"input": {"transfers": [
        {"fromAccountId": b.accounts[0], "toAccountId": b.accounts[1], "amount": "1.00",
         "currency": "EUR"},
        {"fromAccountId": a.accounts[0], "toAccountId": b.accounts[1], "amount": "1.00",
         "currency": "EUR"}], "idempotencyKey": "steal-batch"}}))["createTransferBatch"]
    assert batch["__typename"] == "TransferBatchRejected", batch
    assert (batch["index"], batch["reasonCode"]) == (1, "NOT_FOUND")
    assert await balances(a) == a_before
    assert await balances(b) == b_before
    assert await transfer_ids(a) == a_transfers


async def test_transfers_of_another_tenants_account(make_partner: MakePartner) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00})
    b = await make_partner("EU", funded={"EUR": 100_00})
    assert_top_level(await b.gql(TRANSFERS_OF, {"id": a.accounts[0]}), "NOT_FOUND")
    assert_top_level(await b.gql(TRANSFERS_OF, {"id": MISSING_ACCOUNT}), "NOT_FOUND")
    assert_top_level(await b.gql(TRANSFERS_OF, {"id": "nope"}), "NOT_FOUND")
    own = ok(await b.gql(TRANSFERS_OF, {"id": b.accounts[0]}))["transfers"]["edges"]
    assert len(own) == 1


async def test_lists_hold_only_own_rows(make_partner: MakePartner) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00, "USD": 5_00}, extra={"EUR": 2})
    b = await make_partner("EU", funded={"EUR": 100_00})
    b_accounts = await account_ids(b)
    assert b_accounts == b.accounts
    assert not set(b_accounts) & set(a.accounts)
    a_transfers = await transfer_ids(a)
    assert len(a_transfers) == 2
    assert not set(await transfer_ids(b)) & set(a_transfers)
    usd = ok(await b.gql('{ accounts(currency: "USD") { edges { node { id } } } }'))
    assert usd["accounts"]["edges"] == []  # A has a USD account; B has none


async def test_entries_of_another_tenants_account_are_unreachable(
        make_partner: MakePartner) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00})
    b = await make_partner("EU")
    out = ok(await b.gql(
        """query($id: ID!) { account(id: $id) { __typename
             ... on Account { entries { edges { node { transferId amount { amount } } } } } } }""",
        {"id": a.accounts[0]}))
    assert out["account"] == {"__typename": "NotFound"}


async def test_gql_helper_uses_the_callers_key(make_partner: MakePartner,
                                               client: AsyncTestClient[Any]) -> None:
    """Two keys of two tenants on one client never see each other's viewer."""
    a = await make_partner("EU")
    b = await make_partner("UK", role=Role.AUDITOR)
    va = ok(await gql(client, a.key, VIEWER))["viewer"]
    vb = ok(await gql(client, b.key, VIEWER))["viewer"]
    assert (va["tenant"]["id"], va["role"]) == (a.tenant_id, "partner_admin")
    assert (vb["tenant"]["id"], vb["role"]) == (b.tenant_id, "auditor")
