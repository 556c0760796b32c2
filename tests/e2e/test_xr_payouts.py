"""Payouts paid by another region's rail, end to end without a broker: GraphQL in, the home
region's worker sends the sealed instruction, the settlement relay's batches are handed to the
destination's receiver (what RabbitMQ carries in production; tests/integration/test_xr_flow.py
runs it over RabbitMQ), the destination's worker pays on its rail, and the answers come back.
Both regions' ledgers balance after every step; due-to in one equals due-from in the other."""

from __future__ import annotations

from typing import Any

import pytest

from payments.payouts import rails
from regions import xr
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from regions.xr_payouts import accepted_topic
from tests.e2e import conftest as e2e
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import (
    BALANCE,
    BENEFICIARY,
    GET_PAYOUT,
    PAYOUT,
    assert_ledger_consistent,
    sandbox_sealer,
)
from tests.settlement_helpers import gate_fixture, internal, pump, rates_fixture  # noqa: F401
from workers.payouts import apply_due_returns, process_batch, process_payout, process_xr_payout
from workers.rails import sandbox_rails

client = e2e.client
home, paying = "eu-central", "ap-southeast"
_rails = sandbox_rails(return_after_s=0)




async def _sg_beneficiary(p: Partner, key: str = "ben-sg") -> str:
    got = await p.gql(BENEFICIARY, {"i": {
        "name": "Tan Wei Ming", "country": "SG", "currency": "SGD", "bankCode": "7171",
        "accountNumber": "0012345678", "idempotencyKey": key}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    return str(ben["id"])


async def _payout(p: Partner, ben: str, amount: str, key: str, currency: str = "SGD"
                  ) -> dict[str, Any]:
    got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben,
                                     "amount": amount, "currency": currency,
                                     "reference": "invoice 9", "idempotencyKey": key}})
    result: dict[str, Any] = got["data"]["createPayout"]
    return result


async def _status(p: Partner, payout_id: str) -> dict[str, Any]:
    got = await p.gql(GET_PAYOUT, {"id": payout_id})
    result: dict[str, Any] = got["data"]["payout"]
    return result


async def _balance(p: Partner) -> dict[str, str]:
    got = await p.gql(BALANCE, {"id": p.accounts[0]})
    return {k: v["amount"] for k, v in got["data"]["account"]["balance"].items()}


async def _obligations(router: Router, region: str, payout_id: str) -> list[tuple[Any, ...]]:
    found = await rows(router, region, """
        SELECT id, peer, direction, currency, amount_minor, occurred_at FROM settlement_obligations
        WHERE region = :r AND payout_id = :p ORDER BY id""", r=region, p=payout_id)
    return [tuple(r) for r in found]


async def _xr_row(router: Router, payout_id: str) -> Any:
    [row] = await rows(router, paying, "SELECT * FROM xr_payouts WHERE region = :r AND id = :i",
                       r=paying, i=payout_id)
    return row


async def _consistent(router: Router, p: Partner) -> None:
    await assert_ledger_consistent(router, home, p.tenant_id)
    await assert_ledger_consistent(router, paying)


async def _dispatch(router: Router, topo: Topology, gate: PolicyGate, p: Partner,
                    payout_id: str) -> None:
    """The home worker's step, the trip over, and the paying region's worker's step."""
    sealer = sandbox_sealer()
    assert not await process_payout(router, sealer, gate, _rails, home, payout_id, "m1"), (
        "a payout paid elsewhere is not settled by the home worker")
    assert (await _status(p, payout_id))["status"] == "PROCESSING"
    assert await pump(router) == 1
    assert (await _xr_row(router, payout_id)).status == "ACCEPTED"
    await _consistent(router, p)
    assert await process_xr_payout(router, sealer, _rails, paying, payout_id)
    assert await pump(router) == 1


def test_sgd_is_paid_by_ap_southeast() -> None:
    fast = next(r for r in rails if r.name == "FAST")
    assert (fast.currency, fast.region) == ("SGD", paying)


async def test_a_payout_paid_in_another_region_settles_on_both_sides(
        router: Router, topo: Topology, gate: PolicyGate, make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"SGD": 1_000_00})
    before_due_to = await internal(router, home, f"due_to:{paying}", "SGD")
    before_due_from = await internal(router, paying, f"due_from:{home}", "SGD")
    created = await _payout(p, await _sg_beneficiary(p), "100.00", "x-1")
    assert created["__typename"] == "Payout", created
    assert (created["status"], created["rail"]) == ("PENDING", "FAST")
    fee = int(created["fee"]["amount"].replace(".", ""))
    held = await internal(router, home, f"due_to:{paying}", "SGD")
    assert held["credits_pending"] - before_due_to["credits_pending"] == 100_00
    await _dispatch(router, topo, gate, p, created["id"])

    done = await _status(p, created["id"])
    assert done["status"] == "COMPLETED", done
    posted = 1_000_00 - 100_00 - fee
    assert await _balance(p) == {"posted": f"{posted // 100}.{posted % 100:02d}",
                                 "pending": "0.00",
                                 "available": f"{posted // 100}.{posted % 100:02d}"}
    due_to = await internal(router, home, f"due_to:{paying}", "SGD")
    due_from = await internal(router, paying, f"due_from:{home}", "SGD")
    assert due_to["credits_posted"] - before_due_to["credits_posted"] == 100_00
    assert due_from["debits_posted"] - before_due_from["debits_posted"] == 100_00
    assert (due_to["credits_pending"], due_from["debits_pending"]) == (
        before_due_to["credits_pending"], before_due_from["debits_pending"])
    mine = await _obligations(router, home, created["id"])
    theirs = await _obligations(router, paying, created["id"])
    assert [o[:2] + o[3:] for o in mine] == [(created["id"], paying, "SGD", 100_00,
                                              theirs[0][5])]
    assert [o[2] for o in mine] == ["PAYABLE"]
    assert [(o[1], o[2]) for o in theirs] == [(home, "RECEIVABLE")]
    row = await _xr_row(router, created["id"])
    assert (row.status, row.origin, row.rail, row.reference) == ("COMPLETED", home, "FAST",
                                                                 "invoice 9")
    assert sorted(row.fields) == ["payee_account", "payee_name", "reference"]
    assert b"Tan Wei Ming" not in bytes(row.payee_sealed)
    assert b"0012345678" not in bytes(row.payee_sealed)
    [key] = await rows(router, paying, "SELECT kek_id, subject_id FROM data_keys "
                                       "WHERE region = :r AND id = :k", r=paying,
                       k=row.data_key_id)
    assert key.subject_id == f"xr:{created['id']}"
    assert paying in key.kek_id, "the payee's key is wrapped by the paying region's key"
    assert await pump(router) == 0, "nothing more to say"
    await _consistent(router, p)


@pytest.mark.parametrize(("amount", "code"), [("50.91", "AC04"), ("50.92", "AM05")])
async def test_a_failure_in_the_paying_region_voids_both_holds(
        router: Router, topo: Topology, gate: PolicyGate, make_partner: MakePartner,
        amount: str, code: str) -> None:
    p = await make_partner("EU", funded={"SGD": 1_000_00})
    created = await _payout(p, await _sg_beneficiary(p), amount, f"x-f-{code}")
    await _dispatch(router, topo, gate, p, created["id"])
    done = await _status(p, created["id"])
    assert (done["status"], done["failureCode"]) == ("FAILED", code)
    assert await _balance(p) == {"posted": "1000.00", "pending": "0.00",
                                 "available": "1000.00"}
    assert (await _xr_row(router, created["id"])).status == "FAILED"
    assert await _obligations(router, home, created["id"]) == []
    assert await _obligations(router, paying, created["id"]) == []
    await _consistent(router, p)


async def test_a_return_in_the_paying_region_comes_back_to_the_customer(
        router: Router, topo: Topology, gate: PolicyGate, make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"SGD": 1_000_00})
    created = await _payout(p, await _sg_beneficiary(p), "70.93", "x-r")
    fee = int(created["fee"]["amount"].replace(".", ""))
    await _dispatch(router, topo, gate, p, created["id"])
    assert (await _status(p, created["id"]))["status"] == "COMPLETED"
    assert await apply_due_returns(router, paying) >= 1
    assert await pump(router) >= 1
    done = await _status(p, created["id"])
    assert (done["status"], done["failureCode"]) == ("RETURNED", "MS03")
    posted = 1_000_00 - fee
    assert (await _balance(p))["posted"] == f"{posted // 100}.{posted % 100:02d}"
    mine = {o[0]: o[2] for o in await _obligations(router, home, created["id"])}
    theirs = {o[0]: o[2] for o in await _obligations(router, paying, created["id"])}
    rid = f"{created['id']}:return"
    assert mine == {created["id"]: "PAYABLE", rid: "RECEIVABLE"}
    assert theirs == {created["id"]: "RECEIVABLE", rid: "PAYABLE"}
    assert await apply_due_returns(router, paying) == 0, "returned once only"
    await _consistent(router, p)


async def test_a_payee_whose_details_may_not_cross_is_refused_at_creation(
        make_partner: MakePartner) -> None:
    """CN's defaults let no personal data out: a CN tenant's EUR payout would be paid by
    eu-central's rail, so it is refused before any money is held."""
    p = await make_partner("CN", funded={"EUR": 1_000_00})
    got = await p.gql(BENEFICIARY, {"i": {
        "name": "Max Mustermann", "country": "DE", "currency": "EUR",
        "iban": "DE89370400440532013000", "idempotencyKey": "ben-de"}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    refused = await _payout(p, ben["id"], "10.00", "x-cn", currency="EUR")
    assert refused["__typename"] == "PolicyDenied", refused
    assert any(r.startswith("DATA_RESIDENCY") and "payee_account" in r
               for r in refused["reasons"]), refused
    assert await _balance(p) == {"posted": "1000.00", "pending": "0.00",
                                 "available": "1000.00"}


class _ClosedGate(PolicyGate):
    """EU's policy as if an officer had since closed ap-southeast to payees' details."""

    def params(self, jurisdiction: str, now: Any = None) -> Any:
        found = super().params(jurisdiction, now)
        if jurisdiction != "EU":
            return found
        return {**found, "exportable_fields": {}}


async def test_a_policy_closed_before_dispatch_fails_the_payout_at_home(
        router: Router, topo: Topology, make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"SGD": 1_000_00})
    created = await _payout(p, await _sg_beneficiary(p), "20.00", "x-closed")
    closed = _ClosedGate()
    await closed.refresh(router, force=True)
    assert not await process_payout(router, sandbox_sealer(), closed, _rails, home,
                                    created["id"], "m1")
    done = await _status(p, created["id"])
    assert (done["status"], done["failureCode"]) == ("FAILED", "DATA_RESIDENCY")
    assert await _balance(p) == {"posted": "1000.00", "pending": "0.00",
                                 "available": "1000.00"}
    assert await pump(router) == 0, "nothing left home"
    await _consistent(router, p)


BATCH = """mutation($i: CreatePayoutBatchInput!) { createPayoutBatch(input: $i) { __typename
  ... on PayoutBatch { id status itemCount } ... on Error { code message } } }"""
GET_BATCH = """query($id: ID!) { payoutBatch(id: $id) { ... on PayoutBatch { status succeeded
  failed } } }"""


async def test_a_batch_paid_in_another_region_completes_when_the_answers_arrive(
        router: Router, topo: Topology, gate: PolicyGate, make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"SGD": 10_000_00})
    ben = await _sg_beneficiary(p)
    items = [{"beneficiaryId": ben, "amount": a, "currency": "SGD", "externalId": f"b{i}"}
             for i, a in enumerate(["10.00", "11.91", "12.00"])]
    got = await p.gql(BATCH, {"i": {"accountId": p.accounts[0], "items": items,
                                    "idempotencyKey": "xb"}})
    batch = got["data"]["createPayoutBatch"]
    assert batch["__typename"] == "PayoutBatch", got
    sealer = sandbox_sealer()
    assert await process_batch(router, sealer, gate, _rails, home, batch["id"]) == 0
    assert await pump(router) == 3
    ids = [r.id for r in await rows(router, home, "SELECT id FROM payouts WHERE region = :r "
                                    "AND batch_id = :b", r=home, b=batch["id"])]
    for payout_id in ids:
        assert await process_xr_payout(router, sealer, _rails, paying, payout_id)
    still = await p.gql(GET_BATCH, {"id": batch["id"]})
    assert still["data"]["payoutBatch"]["status"] == "PROCESSING"
    assert await pump(router) == 3
    done = await p.gql(GET_BATCH, {"id": batch["id"]})
    assert done["data"]["payoutBatch"] == {"status": "COMPLETED", "succeeded": 2, "failed": 1}
    await _consistent(router, p)


async def test_streams_stand_clear_after_the_traffic(router: Router, topo: Topology) -> None:
    await pump(router)
    for region in (home, paying):
        async def body(conn: Any, region: str = region) -> list[xr.Stream]:
            return await xr.streams(conn, region)

        for s in await router.read(region, body):
            assert (s.waiting, s.unpublished) == (0, 0), s
            if {s.region, s.peer} == {home, paying}:
                assert s.applied_seq > 0, s


async def test_the_workers_event_handler_pays_an_accepted_payout(
        router: Router, topo: Topology, db_urls: DatabaseUrls, gate: PolicyGate,
        make_partner: MakePartner) -> None:
    """``xr_payout.accepted``, relayed to the paying region's workers, is what pays the payout
    there: the dramatiq actor's dispatch, on the stub broker."""
    from workers.broker import install
    from workers.config import WorkerConfig
    from workers.fx.providers import provider_from_settings
    from workers.runtime import Runtime

    config = WorkerConfig(topology=topo, urls=db_urls, amqp_url=None)
    _, actors = install(config)
    rt = Runtime(config, provider_from_settings("fixed", None), _rails, router=router,
                 _sealer=sandbox_sealer())
    p = await make_partner("EU", funded={"SGD": 1_000_00})
    created = await _payout(p, await _sg_beneficiary(p), "33.00", "x-actor")
    assert not await process_payout(router, sandbox_sealer(), gate, _rails, home,
                                    created["id"], "m1")
    assert await pump(router) == 1
    [event] = await rows(router, paying, """
        SELECT id, topic, payload FROM outbox WHERE region = :r AND topic = :t
          AND payload->>'payout_id' = :p""", r=paying, t=accepted_topic, p=created["id"])
    await actors._trigger(rt, paying, event.id, event.topic, dict(event.payload))
    assert (await _xr_row(router, created["id"])).status == "COMPLETED"
    assert await pump(router) == 1
    assert (await _status(p, created["id"]))["status"] == "COMPLETED"
    await actors._trigger(rt, paying, event.id, event.topic, dict(event.payload))
    assert await pump(router) == 0, "a redelivered event pays nothing twice"


class _OpenGate(PolicyGate):
    """CN's and EU's policies as if their officers had approved exporting a payee's name and
    account between cn-east and eu-central (maker-checker is tested elsewhere)."""

    def params(self, jurisdiction: str, now: Any = None) -> Any:
        found = super().params(jurisdiction, now)
        opened = {"CN": "eu-central", "EU": "cn-east"}.get(jurisdiction)
        if opened is None:
            return found
        table = dict(found["exportable_fields"])
        table[opened] = frozenset({"payee_name", "payee_account"})
        return {**found, "exportable_fields": table}


async def test_a_sovereign_tenants_payee_crosses_only_what_its_policy_opened(
        router: Router, make_partner: MakePartner) -> None:
    """With CN's policy opened for the payee's name and account to eu-central (and EU's to
    receive them), a cn-east tenant's EUR payout is paid by eu-central's SEPA rail: only those
    two fields cross, sealed for eu-central, never the reference."""
    from regions.payouts import CreatePayout, create_payout_txn

    opened = _OpenGate()
    await opened.refresh(router, force=True)
    p = await make_partner("CN", funded={"EUR": 1_000_00})
    got = await p.gql(BENEFICIARY, {"i": {
        "name": "Max Mustermann", "country": "DE", "currency": "EUR",
        "iban": "DE89370400440532013000", "idempotencyKey": "ben-cn"}})
    ben = got["data"]["createBeneficiary"]["id"]

    async def principal(conn: Any) -> Any:
        from regions.tenants import authenticate
        from tests.conftest import test_pepper

        return await authenticate(conn, test_pepper, p.key)

    who = await router.run_control(principal)
    cmd = CreatePayout(p.accounts[0], ben, 25_00, "EUR", "invoice 12", None, "cn-open")

    async def create(conn: Any) -> dict[str, Any]:
        return await create_payout_txn(conn, who, sandbox_sealer(), opened, cmd)

    made = await router.run("cn-east", create)
    sealer = sandbox_sealer()
    assert not await process_payout(router, sealer, opened, _rails, "cn-east", made["id"], "m")
    assert await pump(router) == 1
    [row] = await rows(router, "eu-central", "SELECT * FROM xr_payouts WHERE region = :r "
                       "AND id = :i", r="eu-central", i=made["id"])
    assert (row.origin, row.rail, row.reference) == ("cn-east", "SEPA_INSTANT", None)
    assert sorted(row.fields) == ["payee_account", "payee_name"]
    assert b"Mustermann" not in bytes(row.payee_sealed)
    assert await process_xr_payout(router, sealer, _rails, "eu-central", made["id"])
    assert await pump(router) == 1
    assert (await _status(p, made["id"]))["status"] == "COMPLETED"
    await assert_ledger_consistent(router, "cn-east", p.tenant_id)
    await assert_ledger_consistent(router, "eu-central")


ERASE = """mutation($i: EraseBeneficiaryInput!) { eraseBeneficiary(input: $i) { __typename
  ... on Error { code message } } }"""


async def _copy(router: Router, payout_id: str) -> Any:
    [row] = await rows(router, paying, """
        SELECT x.payee_sealed, k.destroyed_at, k.wrapped_key FROM xr_payouts x
        JOIN data_keys k ON k.region = x.region AND k.id = x.data_key_id
        WHERE x.region = :r AND x.id = :i""", r=paying, i=payout_id)
    return row


async def test_erasing_a_beneficiary_shreds_the_copy_the_paying_region_holds(
        router: Router, topo: Topology, gate: PolicyGate, make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"SGD": 1_000_00})
    ben = await _sg_beneficiary(p, "ben-erase")
    paid = await _payout(p, ben, "11.00", "x-erase-1")
    failed = await _payout(p, ben, "12.91", "x-erase-2")
    for made in (paid, failed):
        await _dispatch(router, topo, gate, p, made["id"])
    assert (await _copy(router, paid["id"])).destroyed_at is None
    got = await p.gql(ERASE, {"i": {"beneficiaryId": ben, "idempotencyKey": "erase"}})
    assert got["data"]["eraseBeneficiary"]["__typename"] == "Beneficiary", got
    assert await pump(router) == 1, "one message names both payouts"
    for made in (paid, failed):
        copy = await _copy(router, made["id"])
        assert copy.destroyed_at is not None
        assert copy.wrapped_key is None
        assert copy.payee_sealed is None
    sealer = sandbox_sealer()

    async def reopen(conn: Any) -> Any:
        from regions.xr_payouts import begin_txn

        return await begin_txn(conn, sealer, paying, paid["id"])

    assert await router.run(paying, reopen) is None, "a completed payout is not paid again"
    await _consistent(router, p)


async def test_erasing_a_tenant_shreds_every_copy_in_paying_regions(
        router: Router, topo: Topology, gate: PolicyGate, make_partner: MakePartner) -> None:
    from regions.erasure import erase_tenant_region_txn

    p = await make_partner("EU", funded={"SGD": 1_000_00})
    made = await _payout(p, await _sg_beneficiary(p, "ben-t"), "13.00", "x-erase-t")
    await _dispatch(router, topo, gate, p, made["id"])
    done = await router.run(home, lambda c: erase_tenant_region_txn(
        c, home, p.tenant_id, "test", "right to erasure"))
    assert done.beneficiaries_erased == 1
    assert await pump(router) == 1
    copy = await _copy(router, made["id"])
    assert copy.destroyed_at is not None
    assert copy.payee_sealed is None
    [event] = await rows(router, paying, """
        SELECT payload FROM outbox WHERE region = :r AND topic = 'xr_payout.payee_erased'
          AND payload->>'origin' = :o ORDER BY created_at DESC LIMIT 1""", r=paying, o=home)
    assert event.payload["data_keys_destroyed"] == 1
