"""Netting and reconciliation of cross-region obligations on real PostgreSQL: both directions,
several currencies, two netting jobs at once, a dispute, and the breaks reconciliation names.

The traffic: an EU tenant (eu-central) pays SGD and HKD over ap-southeast's rails, and an SG
tenant (ap-southeast) pays EUR over eu-central's SEPA rail; ap-southeast coordinates the pair.
The dispute runs on its own pair (uk-south, us-east) so that it leaves the others clean.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api import settlement_cli
from payments.principal import Role
from regions import netting, reconciliation
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import run_cli
from tests.e2e import conftest as e2e
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import BENEFICIARY, PAYOUT, assert_ledger_consistent, sandbox_sealer
from tests.settlement_helpers import gate_fixture, internal, pump, rates_fixture  # noqa: F401
from workers.payouts import process_payout, process_xr_payout
from workers.rails import sandbox_rails
from workers.settlement import net_region

client = e2e.client
_rails = sandbox_rails(return_after_s=0)
window_s = 3_600
later = datetime.now(UTC) + timedelta(seconds=2 * window_s)
"""A moment at which every window holding this test's obligations has closed."""




BENEFICIARIES = {
    "SGD": {"name": "Tan Wei Ming", "country": "SG", "currency": "SGD", "bankCode": "7171",
            "accountNumber": "0012345678"},
    "HKD": {"name": "Chan Tai Man", "country": "HK", "currency": "HKD", "bankCode": "004",
            "accountNumber": "123456789"},
    "EUR": {"name": "Max Mustermann", "country": "DE", "currency": "EUR",
            "iban": "DE89370400440532013000"},
    "USD": {"name": "John Smith", "country": "US", "currency": "USD", "bankCode": "021000021",
            "accountNumber": "123456789"},
}


async def _pay(router: Router, gate: PolicyGate, p: Partner, currency: str, amounts: list[str],
               key: str, account: int = 0) -> list[str]:
    """Payouts from the partner's account in ``currency``, each taken to its final status by
    both regions' workers; their ids."""
    got = await p.gql(BENEFICIARY, {"i": {**BENEFICIARIES[currency], "idempotencyKey": key}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    made = []
    for i, amount in enumerate(amounts):
        out = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[account],
                                         "beneficiaryId": ben["id"],
                                         "amount": amount, "currency": currency,
                                         "idempotencyKey": f"{key}-{i}"}})
        payout = out["data"]["createPayout"]
        assert payout["status"] == "PENDING", out
        made.append(payout["id"])
    sealer = sandbox_sealer()
    for payout_id in made:
        await process_payout(router, sealer, gate, _rails, p.region, payout_id, "m")
    await pump(router)
    paying = {"SGD": "ap-southeast", "HKD": "ap-southeast", "EUR": "eu-central",
              "USD": "us-east"}[currency]
    for payout_id in made:
        assert await process_xr_payout(router, sealer, _rails, paying, payout_id)
    await pump(router)
    return made


async def _batches(router: Router, region: str, peer: str) -> dict[str, Any]:
    found = await rows(router, region, """
        SELECT * FROM settlement_batches WHERE region = :r AND peer = :p""", r=region, p=peer)
    return {b.id: b for b in found}


async def test_obligations_in_both_directions_and_currencies_net_and_reconcile(
        router: Router, gate: PolicyGate, make_partner: MakePartner) -> None:
    eu = await make_partner("EU", funded={"SGD": 10_000_00, "HKD": 10_000_00})
    sg = await make_partner("SG", funded={"EUR": 10_000_00})
    await _pay(router, gate, eu, "SGD", ["100.00", "250.50", "9.91"], "n-sgd")
    await _pay(router, gate, eu, "HKD", ["300.00"], "n-hkd", account=1)
    await _pay(router, gate, sg, "EUR", ["40.00", "60.25"], "n-eur")
    a, b = "ap-southeast", "eu-central"
    assert netting.coordinator(a, b) == a
    before = {c: await reconciliation.reconcile(router, a, b, c) for c in ("SGD", "HKD", "EUR")}
    for c, report in before.items():
        assert report.breaks == [], (c, report)
    assert (before["SGD"].receivable_a_minor - before["SGD"].payable_a_minor) >= 350_50

    assert await net_region(router, b, window_s, "job-b", later) == [], (
        "eu-central does not coordinate this pair")
    made = await net_region(router, a, window_s, "job-a", later)
    assert {m.split("_")[3] for m in made} >= {"SGD", "HKD", "EUR"}
    assert all(m.startswith(f"stb_{a}_{b}_") for m in made)
    assert await pump(router) >= 2 * len(made), "each batch and its confirmation"

    mine, theirs = await _batches(router, a, b), await _batches(router, b, a)
    for bid in made:
        x, y = mine[bid], theirs[bid]
        assert (x.status, y.status) == ("SETTLED", "SETTLED"), (x, y)
        assert (x.payable_minor, x.receivable_minor) == (y.receivable_minor, y.payable_minor)
        assert x.obligations == y.obligations > 0
        assert (x.coordinator, y.coordinator) == (a, a)
        # These obligations are older than the window the run closes: the label covers them.
        held = await rows(router, a, "SELECT min(occurred_at) AS first, max(occurred_at) AS "
                          "last FROM settlement_obligations WHERE region = :r AND batch_id = :b",
                          r=a, b=bid)
        for side in (x, y):
            assert side.window_start <= held[0].first <= held[0].last < side.window_end, side
            assert (side.window_start, side.window_end) == (x.window_start, x.window_end)
    for c in ("SGD", "HKD", "EUR"):
        report = await reconciliation.reconcile(router, a, b, c)
        assert report.breaks == [], report
        assert report.quiet
        assert report.in_flight == 0
        assert (report.due_to_a_minor, report.due_from_a_minor) == (0, 0), (
            "everything owed was cleared")
        assert (report.due_to_b_minor, report.due_from_b_minor) == (0, 0)
        assert (report.payable_a_minor, report.receivable_a_minor) == (
            report.receivable_b_minor, report.payable_b_minor)
        # The net moved between the two regions' banks: equal and opposite on each side.
        cash_a = await internal(router, a, f"settlement:{b}", c)
        cash_b = await internal(router, b, f"settlement:{a}", c)
        net_a = cash_a["credits_posted"] - cash_a["debits_posted"]
        net_b = cash_b["credits_posted"] - cash_b["debits_posted"]
        assert net_a == -net_b
        assert net_a == report.payable_a_minor - report.receivable_a_minor
    open_left = await rows(router, a, "SELECT count(*) AS n FROM settlement_obligations "
                           "WHERE region = :r AND peer = :p AND batch_id IS NULL", r=a, p=b)
    assert open_left[0].n == 0
    assert await net_region(router, a, window_s, "job-a", later) == [], "nothing netted twice"
    for region in (a, b):
        await assert_ledger_consistent(router, region)


async def test_two_netting_jobs_at_once_make_one_batch(
        router: Router, gate: PolicyGate, make_partner: MakePartner) -> None:
    eu = await make_partner("EU", funded={"SGD": 1_000_00})
    await _pay(router, gate, eu, "SGD", ["10.00", "20.00"], "two-jobs")
    a, b = "ap-southeast", "eu-central"
    # Two schedulers (different lease holders) at once: one holds the pair's lease.
    first, second = await asyncio.gather(net_region(router, a, window_s, "holder-1", later),
                                         net_region(router, a, window_s, "holder-2", later))
    assert len(first) + len(second) >= 1
    assert not (first and second), (first, second)
    # Without the lease (straight to the transaction), a second run finds nothing open.
    end = netting.window_end(later, window_s)

    async def again(conn: AsyncConnection) -> str | None:
        return await netting.net_txn(conn, a, b, "SGD", end, window_s)

    assert await asyncio.gather(router.run(a, again), router.run(a, again)) == [None, None]
    await pump(router)
    report = await reconciliation.reconcile(router, a, b, "SGD")
    assert report.breaks == [], report


async def test_the_same_batch_delivered_twice_settles_once(
        router: Router, gate: PolicyGate, make_partner: MakePartner) -> None:
    eu = await make_partner("EU", funded={"SGD": 1_000_00})
    await _pay(router, gate, eu, "SGD", ["15.00"], "twice")
    a, b = "ap-southeast", "eu-central"
    made = await net_region(router, a, window_s, "job-twice", later)
    assert made
    before = await internal(router, b, f"settlement:{a}", "SGD")
    sent: list[tuple[str, bytes]] = []
    from workers.settlement import XrRelay, receiver

    relay = XrRelay(router, [a], lambda o, d, ms: sent.extend((d, body) for _, body in ms),
                    holder="test-pump")
    await relay.relay_region(a)
    receive = receiver(router, sandbox_sealer())
    for destination, body in sent + sent:
        await receive(destination, body)
    after = await internal(router, b, f"settlement:{a}", "SGD")
    moved = [after[k] - before[k] for k in ("credits_posted", "debits_posted")]
    batch = (await _batches(router, b, a))[made[-1]]
    assert moved == [batch.payable_minor, batch.receivable_minor], "cleared once"
    await pump(router)
    assert (await reconciliation.reconcile(router, a, b, "SGD")).breaks == []


async def test_a_batch_the_peer_cannot_match_is_disputed_and_reported(
        router: Router, gate: PolicyGate, make_partner: MakePartner) -> None:
    """uk-south's record of an obligation is altered behind the ledger's back: us-east's
    batch no longer adds up there, so uk-south disputes it, and reconciliation says where."""
    uk = await make_partner("UK", funded={"USD": 1_000_00})
    [payout_id, _] = await _pay(router, gate, uk, "USD", ["30.00", "45.00"], "dispute")
    a, b = "uk-south", "us-east"

    async def tamper(conn: AsyncConnection) -> None:
        await conn.execute(text("UPDATE settlement_obligations SET amount_minor = 3001 "
                                "WHERE region = :r AND id = :i"), {"r": a, "i": payout_id})

    await router.run(a, tamper)
    report = await reconciliation.reconcile(router, a, b, "USD")
    assert [(x.kind, x.obligation_id) for x in report.breaks] == [
        ("OBLIGATION_MISMATCH", payout_id)], report
    assert "3001" in report.breaks[0].detail
    made = await net_region(router, a, window_s, "job-dispute", later)
    assert made
    await pump(router)
    mine, theirs = await _batches(router, a, b), await _batches(router, b, a)
    bid = made[-1]
    assert (mine[bid].status, theirs[bid].status) == ("DISPUTED", "DISPUTED")
    assert "totals differ" in theirs[bid].dispute
    report = await reconciliation.reconcile(router, a, b, "USD")
    kinds = {x.kind for x in report.breaks}
    assert {"BATCH_DISPUTED", "OBLIGATION_MISMATCH"} <= kinds, report
    rows_out = [r for r in reconciliation.csv_rows(report) if r["kind"] == "BATCH_DISPUTED"]
    assert rows_out
    assert rows_out[0]["batch_id"] == bid


def _side(region: str, peer: str, obligations: list[tuple[str, str, int, str | None]],
          batches: list[tuple[str, str, int, int, int]] = (),  # type: ignore[assignment]
          due_to: int = 0, due_from: int = 0, sent: int = 0, applied: int = 0,
          waiting: int = 0, failing: int = 0, unacked_s: float = 0.0) -> reconciliation.Side:
    from regions.xr import Stream

    return reconciliation.Side(
        region, peer, "EUR",
        {o[0]: reconciliation.Obligation(o[0], o[1], "EUR", o[2], o[3]) for o in obligations},
        {x[0]: reconciliation.Batch(x[0], x[1], x[2], x[3], x[4], None) for x in batches},
        due_to, due_from, Stream(region, peer, sent, 0, applied, waiting, 0, failing, unacked_s))


def test_compare_names_each_break() -> None:
    a = _side("a-one", "b-two", [("o1", "PAYABLE", 100, None), ("o2", "RECEIVABLE", 5, None)],
              due_to=100, due_from=5, sent=3, applied=2)
    b = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, None), ("o2", "PAYABLE", 5, None)],
              due_to=5, due_from=100, sent=2, applied=3)
    assert reconciliation.compare(a, b).breaks == []
    # An obligation only one side has, with every message applied: missing.
    b_missing = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, None)], due_to=0,
                      due_from=100, sent=2, applied=3)
    kinds = [(x.kind, x.obligation_id) for x in reconciliation.compare(a, b_missing).breaks]
    assert ("OBLIGATION_MISSING", "o2") in kinds
    assert "BALANCE_MISMATCH" in {k for k, _ in kinds}
    # The same, while a message to b is unapplied: in flight, not a break.
    b_behind = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, None)], sent=2, applied=1)
    report = reconciliation.compare(a, b_behind)
    assert report.breaks == []
    assert report.in_flight == 1
    assert not report.quiet
    # Mirrored direction and amount.
    b_wrong = _side("b-two", "a-one", [("o1", "PAYABLE", 100, None),
                                       ("o2", "PAYABLE", 6, None)],
                    due_to=5, due_from=100, sent=2, applied=3)
    broken = reconciliation.compare(a, b_wrong).breaks
    assert [x.obligation_id for x in broken if x.kind == "OBLIGATION_MISMATCH"] == ["o1", "o2"]
    # A stuck stream: a message b cannot apply (it waits with its error), so a looks ahead.
    b_stuck = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, None)],
                    due_to=5, due_from=100, sent=2, applied=2, waiting=1, failing=1)
    stuck = reconciliation.compare(a, b_stuck)
    assert [x.kind for x in stuck.breaks] == ["STREAM_STUCK"]
    assert "cannot apply" in stuck.breaks[0].detail
    assert stuck.in_flight == 1
    # Messages a sent long ago that b never acknowledged.
    a_waiting = _side("a-one", "b-two", [("o1", "PAYABLE", 100, None),
                                         ("o2", "RECEIVABLE", 5, None)],
                      due_to=100, due_from=5, sent=3, applied=2,
                      unacked_s=reconciliation.stuck_after_s + 1)
    assert [x.kind for x in reconciliation.compare(a_waiting, b_missing).breaks][:1] == [
        "STREAM_STUCK"]


def test_compare_checks_batches_on_both_sides() -> None:
    a = _side("a-one", "b-two", [("o1", "PAYABLE", 100, "stb1")],
              [("stb1", "SETTLED", 100, 0, 1)], sent=1, applied=1)
    b = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, "stb1")],
              [("stb1", "SETTLED", 0, 100, 1)], sent=1, applied=1)
    assert reconciliation.compare(a, b).breaks == []
    b_other = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, "stb1")],
                    [("stb1", "SETTLED", 0, 99, 1)], sent=1, applied=1)
    assert [x.kind for x in reconciliation.compare(a, b_other).breaks] == ["BATCH_MISMATCH"]
    b_none = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, None)], sent=1, applied=1)
    kinds = sorted(x.kind for x in reconciliation.compare(a, b_none).breaks)
    assert kinds == ["BATCH_MISSING", "OBLIGATION_MISMATCH"]


def test_csv_rows_give_one_row_per_break_or_a_clean_row() -> None:
    a = _side("a-one", "b-two", [("o1", "PAYABLE", 100, None)], due_to=100, sent=1, applied=1)
    b = _side("b-two", "a-one", [("o1", "RECEIVABLE", 100, None)], due_from=100, sent=1,
              applied=1)
    [clean] = reconciliation.csv_rows(reconciliation.compare(a, b))
    assert clean["kind"] == "NONE"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(clean))
    writer.writeheader()
    writer.writerow(clean)
    assert out.getvalue().splitlines()[0] == (
        "region_a,region_b,currency,kind,obligation_id,batch_id,detail")


BATCHES = """query($after: String) { settlementBatches(first: 2, after: $after) {
  edges { node { id region peer currency coordinator status payable { amount currency }
  receivable { amount } net { amount } obligations dispute windowStart windowEnd settledAt } }
  pageInfo { hasNextPage endCursor } } }"""
RECONCILE = """query($a: String!, $b: String!, $c: String!) {
  reconciliation(regionA: $a, regionB: $b, currency: $c) { regionA regionB currency quiet
  inFlight breaks { kind detail obligationId batchId } payableA { amount currency }
  receivableA { amount } payableB { amount } receivableB { amount } dueToA { amount }
  dueFromA { amount } dueToB { amount } dueFromB { amount } } }"""


async def test_operators_read_batches_and_reconcile_over_graphql(
        router: Router, gate: PolicyGate, make_partner: MakePartner) -> None:
    eu = await make_partner("EU", funded={"SGD": 1_000_00})
    await _pay(router, gate, eu, "SGD", ["12.34"], "gql")
    await net_region(router, "ap-southeast", window_s, "job-gql", later)
    await pump(router)
    sre = await make_partner("SG", role=Role.SRE)
    assert sre.region == "ap-southeast"
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        got = await sre.gql(BATCHES, {"after": after})
        assert "errors" not in got, got
        page = got["data"]["settlementBatches"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len({b["id"] for b in seen}) == len(seen) > 1
    assert all(b["region"] == "ap-southeast" for b in seen)
    ends = [b["windowEnd"] for b in seen]
    assert ends == sorted(ends, reverse=True)
    settled = [b for b in seen if b["status"] == "SETTLED" and b["peer"] == "eu-central"]
    assert settled
    one = settled[0]
    assert one["settledAt"] is not None
    payable = int(one["payable"]["amount"].replace(".", ""))
    receivable = int(one["receivable"]["amount"].replace(".", ""))
    assert int(one["net"]["amount"].replace(".", "")) == payable - receivable

    got = await sre.gql(RECONCILE, {"a": "ap-southeast", "b": "eu-central", "c": "sgd"})
    assert "errors" not in got, got
    r = got["data"]["reconciliation"]
    assert (r["regionA"], r["regionB"], r["currency"], r["breaks"], r["quiet"]) == (
        "ap-southeast", "eu-central", "SGD", [], True)
    assert r["payableA"]["amount"] == r["receivableB"]["amount"]
    assert r["receivableA"]["amount"] == r["payableB"]["amount"]
    assert r["dueToA"]["amount"] == r["dueFromB"]["amount"]

    partner = await make_partner("SG")
    refused = await partner.gql(RECONCILE, {"a": "ap-southeast", "b": "eu-central", "c": "SGD"})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(("variables", "field", "message"), [
    ({"a": "mars-north", "b": "eu-central", "c": "SGD"}, "regionA", "is not a region"),
    ({"a": "ap-southeast", "b": "EU", "c": "SGD"}, "regionB", "is not a region"),
    ({"a": "ap-southeast", "b": "ap-southeast", "c": "SGD"}, "regionB", "must differ"),
    ({"a": "us-east", "b": "eu-central", "c": "SGD"}, "regionA", "of its own region"),
    ({"a": "ap-southeast", "b": "eu-central", "c": "XXX"}, "currency", ""),
    ({"a": "ap-southeast", "b": "eu-central", "c": "S" * 500}, "currency", ""),
])
async def test_reconciliation_refuses_bad_arguments(
        make_partner: MakePartner, variables: dict[str, str], field: str, message: str) -> None:
    sre = await make_partner("SG", role=Role.SRE)
    got = await sre.gql(RECONCILE, variables)
    [error] = got["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", got
    assert error["extensions"]["field"] == field, got
    assert message in error["message"]


async def test_settlement_batches_refuse_a_foreign_cursor(make_partner: MakePartner) -> None:
    sre = await make_partner("SG", role=Role.SRE)
    got = await sre.gql(BATCHES, {"after": "bm90LWEtY3Vyc29y"})
    assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_corridor_reconcile_exports_csv_and_exits_1_on_breaks(
        topo: Topology, db_urls: DatabaseUrls, tmp_path: Path) -> None:
    """Run after the dispute above: uk-south/us-east has breaks, so the whole run exits 1 and
    the CSV lists them; the clean pair alone exits 0."""
    out = tmp_path / "breaks.csv"
    done = run_cli(topo, db_urls, "reconcile", "--export", "csv", "--out", str(out))
    assert done.returncode == 1, done.stderr
    found = list(csv.DictReader(out.open(encoding="utf-8")))
    assert found[0].keys() == set(settlement_cli.csv_fields)
    disputed = [r for r in found if r["kind"] == "BATCH_DISPUTED"]
    assert disputed
    assert {(r["region_a"], r["region_b"]) for r in disputed} == {("uk-south", "us-east")}
    clean = run_cli(topo, db_urls, "reconcile", "--region-a", "ap-southeast", "--region-b",
                    "eu-central", "--currency", "SGD", "--export", "csv")
    assert clean.returncode == 0, clean.stderr
    [row] = list(csv.DictReader(io.StringIO(clean.stdout)))
    assert (row["kind"], row["currency"]) == ("NONE", "SGD")
    as_json = run_cli(topo, db_urls, "reconcile", "--region-a", "eu-central", "--region-b",
                      "ap-southeast", "--currency", "SGD")
    assert as_json.returncode == 0, as_json.stderr
    [report] = json.loads(as_json.stdout)["reports"]
    assert (report["region_a"], report["breaks"], report["quiet"]) == ("eu-central", [], True)


@pytest.mark.parametrize(("args", "problem"), [
    (["--region-a", "eu-central"], "together"),
    (["--region-a", "eu-central", "--region-b", "eu-central", "--currency", "EUR"], "differ"),
    (["--region-a", "mars-north", "--region-b", "eu-central", "--currency", "EUR"], "unknown"),
])
def test_corridor_reconcile_refuses_bad_arguments(
        topo: Topology, db_urls: DatabaseUrls, args: list[str], problem: str) -> None:
    done = run_cli(topo, db_urls, "reconcile", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert problem in done.stderr


def test_corridor_settlement_streams_and_net(topo: Topology, db_urls: DatabaseUrls) -> None:
    streams = run_cli(topo, db_urls, "settlement", "streams", "--region", "eu-central")
    assert streams.returncode == 0, streams.stderr
    found = {s["peer"]: s for s in json.loads(streams.stdout)["streams"]}
    assert found["ap-southeast"]["sent_seq"] > 0
    assert found["ap-southeast"]["waiting"] == 0
    net = run_cli(topo, db_urls, "settlement", "net", "--region", "ap-southeast")
    assert net.returncode == 0, net.stderr
    made = json.loads(net.stdout)["batches"]
    assert list(made) == ["ap-southeast"]
    assert all(b.startswith("stb_ap-southeast_") for b in made["ap-southeast"])
    bad = run_cli(topo, db_urls, "settlement", "streams", "--region", "atlantis-1")
    assert bad.returncode == 2
    assert "unknown region" in bad.stderr
