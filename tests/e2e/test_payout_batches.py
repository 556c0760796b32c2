"""Mass payouts through GraphQL: per-item validation, atomic and non-atomic batches, the
worker's chunked processing, live counts, and a 10,000-item batch checked to the minor unit."""

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
    assert_ledger_consistent,
    de_iban,
    sandbox_sealer,
)
from workers.payouts import process_batch
from workers.rails import RailTimeout, sandbox_rails

gate = PolicyGate()
"""Policies at their defaults (no approved change in these tests)."""

BATCH = """mutation($i: CreatePayoutBatchInput!) { createPayoutBatch(input: $i) { __typename
  ... on PayoutBatch { id status itemCount rejected { index code message } pending succeeded
  failed } ... on PayoutBatchRejected { index reasonCode code }
  ... on Error { code message } ... on ValidationError { field } } }"""
GET = """query($id: ID!) { payoutBatch(id: $id) { __typename ... on PayoutBatch { id status
  itemCount pending processing succeeded failed held returned
  items(first: 3) { edges { node { id status amount { amount } } } pageInfo { hasNextPage } }
} } }"""

_rails = sandbox_rails(return_after_s=0)


def _eur(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


async def _setup(make_partner: MakePartner, funded_minor: int = 1_000_000_00
                 ) -> tuple[Partner, str]:
    p = await make_partner("EU", funded={"EUR": funded_minor})
    got = await p.gql(BENEFICIARY, {"i": {"name": "Batch Payee", "country": "DE",
                                          "currency": "EUR", "iban": de_iban,
                                          "idempotencyKey": "ben"}})
    return p, got["data"]["createBeneficiary"]["id"]


def _items(ben: str, amounts: list[str]) -> list[dict[str, Any]]:
    return [{"beneficiaryId": ben, "amount": a, "currency": "EUR", "externalId": f"x{i}"}
            for i, a in enumerate(amounts)]


async def _create(p: Partner, items: list[dict[str, Any]], key: str,
                  atomic: bool = False) -> dict[str, Any]:
    got = await p.gql(BATCH, {"i": {"accountId": p.accounts[0], "items": items,
                                    "atomic": atomic, "idempotencyKey": key}})
    assert "errors" not in got, got
    result: dict[str, Any] = got["data"]["createPayoutBatch"]
    return result


async def _available(p: Partner) -> str:
    got = await p.gql(BALANCE, {"id": p.accounts[0]})
    return str(got["data"]["account"]["balance"]["available"]["amount"])


async def test_non_atomic_batch_accepts_valid_items_and_reports_the_rest(
        router: Router, make_partner: MakePartner) -> None:
    p, ben = await _setup(make_partner, funded_minor=100_00)
    items = _items(ben, ["10.00", "1.001", "20.00", "50.00", "30.00"])
    items.append({"beneficiaryId": ben, "amount": "1.00", "currency": "EUR",
                  "externalId": "x0"})
    items.append({"beneficiaryId": "ben_eu-central_01J0000000000000000000000Z",
                  "amount": "1.00", "currency": "EUR"})
    got = await _create(p, items, "b-1")
    assert got["__typename"] == "PayoutBatch", got
    assert (got["itemCount"], got["pending"], got["status"]) == (7, 3, "PROCESSING")
    assert [(r["index"], r["code"]) for r in got["rejected"]] == [
        (1, "VALIDATION_ERROR"), (4, "INSUFFICIENT_FUNDS"), (5, "VALIDATION_ERROR"),
        (6, "NOT_FOUND")]
    assert await _available(p) == _eur(100_00 - 80_00 - 3 * 35)
    again = await _create(p, items, "b-1")
    assert (again["id"], again["rejected"]) == (got["id"], got["rejected"])
    await assert_ledger_consistent(router, p.region, p.tenant_id)

    settled = await process_batch(router, sandbox_sealer(), gate, _rails, p.region, got["id"])
    assert settled == 3
    topics = await rows(router, p.region, """
        SELECT topic, count(*) AS n FROM outbox WHERE region = :r AND tenant_id = :t
          AND payload->>'batch_id' = :b GROUP BY topic""", r=p.region, t=p.tenant_id,
        b=got["id"])
    assert {t.topic: t.n for t in topics} == {
        "payout_batch.created": 1, "payout.created": 3, "payout.processing": 3,
        "payout.completed": 3, "payout_batch.completed": 1}, "every status change an event"
    audited = await rows(router, p.region, """
        SELECT action, count(*) AS n FROM audit_events WHERE region = :r AND tenant_id = :t
          AND detail->>'batch_id' = :b GROUP BY action""", r=p.region, t=p.tenant_id,
        b=got["id"])
    assert {a.action: a.n for a in audited} == {
        "payout_batch.created": 1, "payout_batch.completed": 1}, "the batch stands for items"
    read = await p.gql(GET, {"id": got["id"]})
    batch = read["data"]["payoutBatch"]
    assert (batch["status"], batch["succeeded"], batch["pending"]) == ("COMPLETED", 3, 0)
    assert batch["items"]["pageInfo"]["hasNextPage"] is False
    assert await process_batch(router, sandbox_sealer(), gate, _rails, p.region, got["id"]) == 0
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_atomic_batch_is_all_or_nothing(router: Router,
                                              make_partner: MakePartner) -> None:
    p, ben = await _setup(make_partner, funded_minor=100_00)
    before = await _available(p)
    refused = await _create(p, _items(ben, ["10.00", "95.00"]), "b-a", atomic=True)
    assert (refused["__typename"], refused["index"], refused["reasonCode"]) == (
        "PayoutBatchRejected", 1, "INSUFFICIENT_FUNDS")
    invalid = await _create(p, _items(ben, ["10.00", "x"]), "b-b", atomic=True)
    assert (invalid["__typename"], invalid["index"], invalid["reasonCode"]) == (
        "PayoutBatchRejected", 1, "VALIDATION_ERROR")
    assert await _available(p) == before
    found = await rows(router, p.region, "SELECT count(*) AS n FROM payouts WHERE tenant_id = :t",
                       t=p.tenant_id)
    assert found[0].n == 0
    ok = await _create(p, _items(ben, ["10.00", "20.00"]), "b-c", atomic=True)
    assert (ok["__typename"], ok["pending"], ok["rejected"]) == ("PayoutBatch", 2, [])


async def test_batch_outcomes_and_time_outs_resume(router: Router,
                                                   make_partner: MakePartner) -> None:
    p, ben = await _setup(make_partner)
    got = await _create(p, _items(ben, ["1.00", "2.91", "3.94", "4.93"]), "b-o")
    with pytest.raises(RailTimeout):  # the .94 item times out on its first try
        await process_batch(router, sandbox_sealer(), gate, _rails, p.region, got["id"])
    mid = (await p.gql(GET, {"id": got["id"]}))["data"]["payoutBatch"]
    assert (mid["status"], mid["succeeded"], mid["failed"], mid["processing"]) == (
        "PROCESSING", 2, 1, 1)
    assert await process_batch(router, sandbox_sealer(), gate, _rails, p.region, got["id"]) == 1
    done = (await p.gql(GET, {"id": got["id"]}))["data"]["payoutBatch"]
    assert (done["status"], done["succeeded"], done["failed"]) == ("COMPLETED", 3, 1)
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_ten_thousand_items_are_held_processed_and_balance(
        router: Router, make_partner: MakePartner) -> None:
    p, ben = await _setup(make_partner, funded_minor=10_000_000_00)
    amounts = [f"{1 + i % 50}.{(i * 7) % 90:02d}" for i in range(10_000)]
    got = await _create(p, _items(ben, amounts), "b-10k")
    assert (got["itemCount"], got["pending"], got["rejected"]) == (10_000, 10_000, [])
    total_minor = sum(int(a.replace(".", "")) for a in amounts) + 10_000 * 35
    assert await _available(p) == _eur(10_000_000_00 - total_minor)
    settled = await process_batch(router, sandbox_sealer(), gate, _rails, p.region, got["id"])
    assert settled == 10_000
    done = (await p.gql(GET, {"id": got["id"]}))["data"]["payoutBatch"]
    assert (done["status"], done["succeeded"]) == ("COMPLETED", 10_000)
    posted = await p.gql(BALANCE, {"id": p.accounts[0]})
    assert posted["data"]["account"]["balance"]["posted"]["amount"] == _eur(
        10_000_000_00 - total_minor)
    await assert_ledger_consistent(router, p.region, p.tenant_id)
