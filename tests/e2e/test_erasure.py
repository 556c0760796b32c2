"""Crypto-shredding: ``eraseBeneficiary`` over HTTP and ``corridor tenant erase`` as a process.

After erasure the personal fields read null (the ciphertexts are still in the rows: only the
keys are gone), the ledger still balances and every amount is readable, the erasure is audited,
a replay changes nothing, and another process that had the key cached stops opening it within
a second or so. Erasure waits for payouts still on their way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from regions import sealing
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import run_cli
from tests.e2e.conftest import MakePartner, Partner
from tests.e2e.test_webhooks import ISSUE, REGISTER, SIMULATE
from tests.integration.helpers import rows
from tests.payouts_helpers import (
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

ERASE = """mutation($i: EraseBeneficiaryInput!) { eraseBeneficiary(input: $i) { __typename
  ... on Beneficiary { id status name address accountNumberMasked currency }
  ... on Error { code message } } }"""
GET = """query($id: ID!) { beneficiary(id: $id) { __typename
  ... on Beneficiary { id status name address } } }"""

name, address = "Erasmus Shredwell", "Keizersgracht 123, Amsterdam"


async def _beneficiary(p: Partner, key: str) -> str:
    got = await p.gql(BENEFICIARY, {"i": {"name": name, "country": "DE", "currency": "EUR",
                                          "iban": de_iban, "address": address,
                                          "idempotencyKey": key}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    return str(ben["id"])


async def _payout(p: Partner, ben_id: str, key: str) -> dict[str, Any]:
    got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben_id,
                                     "amount": "10.00", "currency": "EUR",
                                     "reference": "erasure test", "idempotencyKey": key}})
    payout: dict[str, Any] = got["data"]["createPayout"]
    assert payout["__typename"] == "Payout", got
    return payout


async def _erase(p: Partner, ben_id: str, key: str) -> dict[str, Any]:
    got = await p.gql(ERASE, {"i": {"beneficiaryId": ben_id, "idempotencyKey": key}})
    result: dict[str, Any] = got["data"]["eraseBeneficiary"]
    return result


async def test_erase_beneficiary_shreds_its_data_and_keeps_the_money(
        router: Router, make_partner: MakePartner, monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00})
    ben_id = await _beneficiary(p, "b1")
    other = await _beneficiary(p, "b2")
    payout = await _payout(p, ben_id, "p1")
    other_process = sandbox_sealer()
    [key_row] = await rows(router, p.region, "SELECT data_key_id FROM beneficiaries "
                           "WHERE region = :r AND id = :id", r=p.region, id=ben_id)
    assert await router.run(p.region, lambda c: other_process.key(
        c, p.region, key_row.data_key_id)) is not None  # cached in the other process

    refused = await _erase(p, ben_id, "e1")
    assert (refused["__typename"], refused["code"]) == ("ErasureRefused", "ERASURE_REFUSED")
    cancelled = await p.gql(CANCEL, {"i": {"payoutId": payout["id"], "idempotencyKey": "c1"}})
    assert cancelled["data"]["cancelPayout"]["status"] == "CANCELLED", cancelled

    erased = await _erase(p, ben_id, "e2")
    assert erased == {"__typename": "Beneficiary", "id": ben_id, "status": "ERASED",
                      "name": None, "address": None, "accountNumberMasked": "••••3000",
                      "currency": "EUR"}
    assert await _erase(p, ben_id, "e2") == erased  # a replay
    assert await _erase(p, ben_id, "e3") == erased  # erased already: nothing more to do
    read = (await p.gql(GET, {"id": ben_id}))["data"]["beneficiary"]
    assert (read["status"], read["name"], read["address"]) == ("ERASED", None, None)
    kept = (await p.gql(GET, {"id": other}))["data"]["beneficiary"]
    assert (kept["status"], kept["name"]) == ("ACTIVE", name)
    after = (await p.gql(GET_PAYOUT, {"id": payout["id"]}))["data"]["payout"]
    assert after["amount"] == payout["amount"]
    assert after["beneficiary"] == {"id": ben_id, "name": None}

    [row] = await rows(router, p.region, """
        SELECT b.name_sealed, k.wrapped_key, k.destroyed_at FROM beneficiaries b
        JOIN data_keys k ON k.region = b.region AND k.id = b.data_key_id
        WHERE b.region = :r AND b.id = :id""", r=p.region, id=ben_id)
    assert row.name_sealed is not None  # the ciphertext stays; its key does not
    assert row.wrapped_key is None
    assert row.destroyed_at is not None
    again = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben_id,
                                       "amount": "1.00", "currency": "EUR",
                                       "idempotencyKey": "p2"}})
    assert again["data"]["createPayout"]["code"] == "NOT_FOUND", again

    actions = [r.action for r in await rows(router, p.region, """
        SELECT action FROM audit_events WHERE region = :r AND tenant_id = :t
        ORDER BY created_at, id""", r=p.region, t=p.tenant_id)]
    assert actions.count("beneficiary.erased") == 1
    assert actions.count("eraseBeneficiary.refused") == 1
    await assert_ledger_consistent(router, p.region, p.tenant_id)

    monkeypatch.setattr(sealing, "erasure_check_s", 0.0)
    assert await router.run(p.region, lambda c: other_process.key(
        c, p.region, key_row.data_key_id)) is None


@pytest.mark.parametrize("ben_id", ["ben_eu-central_01ARZ3NDEKTSV4RRFFQ69G5FAV", "garbage",
                                    "ben_us-east_01ARZ3NDEKTSV4RRFFQ69G5FAV"])
async def test_erase_unknown_or_foreign_beneficiary_is_not_found(
        make_partner: MakePartner, ben_id: str) -> None:
    p = await make_partner("EU")
    got = await _erase(p, ben_id, "x")
    assert got["code"] == "NOT_FOUND", got


async def test_erase_another_tenants_beneficiary_is_not_found(
        make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    q = await make_partner("EU")
    ben_id = await _beneficiary(p, "b")
    assert (await _erase(q, ben_id, "x"))["code"] == "NOT_FOUND"
    assert (await p.gql(GET, {"id": ben_id}))["data"]["beneficiary"]["name"] == name


async def test_erase_needs_a_partner_admin(make_partner: MakePartner) -> None:
    from payments.principal import Role

    p = await make_partner("EU", role=Role.PARTNER_READONLY)
    got = await p.gql(ERASE, {"i": {"beneficiaryId": "garbage", "idempotencyKey": "x"}})
    assert got["errors"][0]["extensions"]["code"] == "FORBIDDEN", got


async def test_tenant_erase_shreds_every_key_of_the_tenant_and_stops_it(
        router: Router, topo: Topology, db_urls: DatabaseUrls,
        make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 1_000_00}, extra={"EUR": 1})
    bystander = await make_partner("EU")
    kept = await _beneficiary(bystander, "k")
    ben_ids = [await _beneficiary(p, f"b{n}") for n in range(3)]
    payout = await _payout(p, ben_ids[0], "p1")
    vib = await p.gql(ISSUE, {"i": {"accountId": p.accounts[1], "country": "DE",
                                    "idempotencyKey": "vib"}})
    iban = vib["data"]["issueVirtualIban"]["iban"]
    paid = await p.gql(SIMULATE, {"i": {"iban": iban, "amount": "12.00", "currency": "EUR",
                                        "senderName": "Sender Shredwell",
                                        "idempotencyKey": "in-1"}})
    assert paid["data"]["simulateIncomingPayment"]["status"] == "CREDITED", paid
    hook = await p.gql(REGISTER, {"i": {"url": "https://hooks.example.com/x", "events": ["*"],
                                        "idempotencyKey": "hook"}})
    assert hook["data"]["registerWebhookEndpoint"]["__typename"] == "WebhookEndpointSecret"

    refused = await asyncio.to_thread(run_cli, topo, db_urls, "tenant", "erase", p.tenant_id,
                                      "--reason", "GDPR art. 17 request #42")
    assert refused.returncode == 1, refused.stderr
    assert '"status": "erasing"' in refused.stdout
    assert "payout(s) on their way" in refused.stdout
    # Suspended already: its keys are revoked; the payout on its way goes on to its rail.
    assert await process_payout(router, sandbox_sealer(), PolicyGate(), sandbox_rails(0),
                                p.region, payout["id"], "m1")

    done = await asyncio.to_thread(run_cli, topo, db_urls, "tenant", "erase", p.tenant_id,
                                   "--reason", "GDPR art. 17 request #42")
    assert done.returncode == 0, done.stderr
    assert '"status": "erased"' in done.stdout
    again = await asyncio.to_thread(run_cli, topo, db_urls, "tenant", "erase", p.tenant_id,
                                    "--reason", "GDPR art. 17 request #42")
    assert again.returncode == 0, again.stderr
    assert '"data_keys_destroyed": 0' in again.stdout

    live = await rows(router, p.region, "SELECT id FROM data_keys WHERE region = :r AND "
                      "tenant_id = :t AND wrapped_key IS NOT NULL", r=p.region, t=p.tenant_id)
    assert live == []
    statuses = await rows(router, p.region, "SELECT DISTINCT status FROM beneficiaries "
                          "WHERE region = :r AND tenant_id = :t", r=p.region, t=p.tenant_id)
    assert [s.status for s in statuses] == ["ERASED"]
    [tenant] = await router.read_control(lambda c: _tenant(c, p.tenant_id))
    assert tenant.status == "erased"
    assert tenant.erased_at is not None
    assert (await p.client.post("/graphql", json={"query": "{ accounts { edges { cursor } } }"},
                                headers={"Authorization": f"Bearer {p.key}"})).status_code \
        == 401
    actions = [r.action for r in await router.read_control(lambda c: _trail(c, p.tenant_id))]
    assert actions == ["tenant.erasure_started", "tenant.erasure_started", "tenant.erased",
                       "tenant.erased"]  # each run of the command is the operator's action
    regional = await rows(router, p.region, "SELECT detail FROM audit_events WHERE region = :r "
                          "AND tenant_id = :t AND action = 'tenant.erased'",
                          r=p.region, t=p.tenant_id)
    assert [r.detail["data_keys_destroyed"] for r in regional] == [4, 0]  # 3 + its shared key
    assert (await bystander.gql(GET, {"id": kept}))["data"]["beneficiary"]["name"] == name
    await assert_ledger_consistent(router, p.region, p.tenant_id)


def test_tenant_erase_bad_input(topo: Topology, db_urls: DatabaseUrls) -> None:
    unknown = run_cli(topo, db_urls, "tenant", "erase", "ten_nope", "--reason", "x")
    assert unknown.returncode == 2
    assert "not found" in unknown.stderr
    empty = run_cli(topo, db_urls, "tenant", "erase", "ten_nope", "--reason", "  ")
    assert empty.returncode == 2
    assert "--reason" in empty.stderr


async def _tenant(conn: Any, tenant_id: str) -> list[Any]:
    from sqlalchemy import text

    return list(await conn.execute(text("SELECT status, erased_at FROM tenants WHERE id = :t"),
                                   {"t": tenant_id}))


async def _trail(conn: Any, tenant_id: str) -> list[Any]:
    from sqlalchemy import text

    return list(await conn.execute(text(
        "SELECT action FROM control_audit_events WHERE tenant_id = :t AND action LIKE "
        "'tenant.%' ORDER BY created_at, id"), {"t": tenant_id}))
