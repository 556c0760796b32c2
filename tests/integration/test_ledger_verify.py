"""``corridor ledger verify`` on real PostgreSQL, on databases of this module's own (other tests
bend the shared ledger on purpose, and a region-wide check would see their work).

A clean ledger (funding, posted and pending transfers, a voided hold, a completed payout) has
no finding, also while transfers run beside the check; each way of breaking it is named, alone,
and undone before the next; the command prints the reports and exits 0, 1 or 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.ledger import TransferStatus
from payments.principal import Environment
from regions import commands, ledger_checks, migrate, tenants
from regions.databases import drop_databases, ensure_databases, local_urls
from regions.holds import settle
from regions.ledger_store import PlannedTransfer, insert_account, post_journal
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.tables import payouts, xr_payouts
from regions.topology import Topology
from tests.conftest import run_cli
from tests.integration.test_connection_loss import unreachable

region = "eu-central"


@dataclass
class Ledger:
    router: Router
    urls: DatabaseUrls
    tenant_id: str
    payer: str
    payee: str
    payout_id: str
    xr_payout_id: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger(pg_server: str, topo: Topology) -> AsyncIterator[Ledger]:
    prefix = f"corridor_ledger_{os.getpid()}"
    ensure_databases(pg_server, topo, prefix, fresh=True)
    urls, by_target = local_urls(pg_server, topo, prefix)
    migrate.apply(topo, by_target)
    router = Router(topo, urls, pool_size=2)
    try:
        tenant = await router.run_control(lambda c: tenants.create_tenant(
            c, topo, "Ledger Check", "EU", region, Environment.TEST, gate=PolicyGate()))

        async def world(conn: AsyncConnection) -> tuple[str, str, str, str]:
            payer = await insert_account(conn, region, tenant.id, "EUR", "payer")
            payee = await insert_account(conn, region, tenant.id, "EUR", "payee")
            clearing = await insert_account(conn, region, None, "EUR", "clearing",
                                            kind="internal", purpose="payout_clearing.0")
            await commands.fund_account_txn(conn, region, tenant.id, payer, 1_000_00, "EUR",
                                            "test")
            await post_journal(conn, region, tenant.id, "transfer",
                               [PlannedTransfer(payer, payee, 300_00, "EUR", "posted")])
            await post_journal(conn, region, tenant.id, "transfer",
                               [PlannedTransfer(payer, payee, 20_00, "EUR", "pending")],
                               pending=True)
            voided = await post_journal(conn, region, tenant.id, "transfer",
                                        [PlannedTransfer(payer, payee, 5_00, "EUR", "voided")],
                                        pending=True)
            await settle(conn, region, list(voided.transfer_ids), TransferStatus.VOIDED)
            hold = await post_journal(conn, region, tenant.id, "payout_hold",
                                      [PlannedTransfer(payer, clearing, 100_00, "EUR", "payout")],
                                      internal_ids=[clearing], pending=True)
            await settle(conn, region, list(hold.transfer_ids), TransferStatus.POSTED)
            payout_id = f"po_{region}_ledgercheck"
            await conn.execute(insert(payouts).values(
                region=region, id=payout_id, tenant_id=tenant.id, account_id=payer,
                beneficiary_id="ben_test", amount_minor=100_00, fee_minor=0, currency="EUR",
                rail="sepa_ct", rail_region=region, status="COMPLETED",
                hold_transfer_id=hold.transfer_ids[0]))
            # A payout of ap-southeast's paid on this region's rail, in progress: its hold is
            # pending.
            xr_hold = await post_journal(conn, region, tenant.id, "xr_payout_hold",
                                         [PlannedTransfer(clearing, payer, 10_00, "EUR",
                                                          "paid for ap-southeast")],
                                         internal_ids=[clearing], pending=True)
            xr_payout_id = "po_ap-southeast_ledgercheck"
            await conn.execute(insert(xr_payouts).values(
                region=region, id=xr_payout_id, origin="ap-southeast",
                origin_tenant_id="ten_ap-southeast_x", amount_minor=10_00, currency="EUR",
                rail="sepa_ct", fields=[], status="PROCESSING",
                hold_transfer_id=xr_hold.transfer_ids[0]))
            return payer, payee, payout_id, xr_payout_id

        ids = await router.run(region, world)
        yield Ledger(router, urls, tenant.id, *ids)
    finally:
        await router.dispose()
        drop_databases(pg_server, topo, prefix)


async def _verify(ledger: Ledger, limit: int = ledger_checks.findings_per_kind_max
                  ) -> ledger_checks.Report:
    async def body(conn: AsyncConnection) -> ledger_checks.Report:
        return await ledger_checks.verify(conn, region, limit)

    return await ledger.router.run(region, body)


def _kinds(report: ledger_checks.Report) -> set[tuple[str, str]]:
    return {(f.kind, f.subject) for f in report.findings}


async def _sql(ledger: Ledger, statements: str, **params: Any) -> None:
    """Run ``;``-separated statements in one transaction."""
    async def body(conn: AsyncConnection) -> None:
        for statement in statements.split(";"):
            await conn.execute(text(statement), params)

    await ledger.router.run(region, body)


async def test_a_clean_ledger_has_no_finding(ledger: Ledger) -> None:
    report = await _verify(ledger)
    assert report.findings == [], report.findings
    assert report.intact
    assert report.currencies == {"EUR": 4}  # payer, payee, clearing, incoming funds
    assert report.truncated == []


async def test_transfers_running_beside_the_check_do_not_break_it(ledger: Ledger) -> None:
    """Each check is one statement over a snapshot: money moving between the accounts while
    the checks run is never seen half-moved."""
    stop = asyncio.Event()

    async def move(conn: AsyncConnection) -> None:
        await post_journal(conn, region, ledger.tenant_id, "transfer",
                           [PlannedTransfer(ledger.payer, ledger.payee, 1, "EUR", "beside"),
                            PlannedTransfer(ledger.payee, ledger.payer, 1, "EUR", "back")])

    async def traffic() -> int:
        moved = 0
        while not stop.is_set():
            await ledger.router.run(region, move)
            moved += 1
        return moved

    mover = asyncio.create_task(traffic())
    try:
        reports = [await _verify(ledger) for _ in range(10)]
    finally:
        stop.set()
        moved = await mover
    assert moved > 0
    assert [r.findings for r in reports] == [[]] * 10


async def _broken(ledger: Ledger, do: str, undo: str,
                  check: Callable[[ledger_checks.Report], None]) -> None:
    """Break the ledger with ``do``, check the report, undo it, and see it whole again."""
    names = {"r": region, "a": ledger.payer, "b": ledger.payee, "p": ledger.payout_id,
             "x": ledger.xr_payout_id}
    await _sql(ledger, do, **names)
    try:
        check(await _verify(ledger))
    finally:
        await _sql(ledger, undo, **names)
    assert (await _verify(ledger)).intact, "the break was undone"


async def test_money_from_nowhere_is_named(ledger: Ledger) -> None:
    def check(report: ledger_checks.Report) -> None:
        assert _kinds(report) == {("JOURNALS_UNBALANCED", "EUR"),
                                  ("BALANCE_DISAGREES_WITH_TRANSFERS", ledger.payee)}
        [unbalanced] = [f for f in report.findings if f.kind == "JOURNALS_UNBALANCED"]
        assert unbalanced.detail == "posted credits minus debits +1, pending +0"
        [payee] = [f for f in report.findings if f.subject == ledger.payee]
        found = re.fullmatch(r"EUR: credits_posted (\d+) \(transfers (\d+)\)", payee.detail)
        assert found is not None, payee.detail
        assert int(found[1]) == int(found[2]) + 1
        assert not report.intact

    await _broken(ledger, "UPDATE accounts SET credits_posted = credits_posted + 1 "
                          "WHERE region = :r AND id = :b",
                  "UPDATE accounts SET credits_posted = credits_posted - 1 "
                  "WHERE region = :r AND id = :b", check)


async def test_balances_that_balance_but_disagree_with_the_transfers_are_named(
        ledger: Ledger) -> None:
    """A balance moved between two accounts with no transfer: every journal still sums to
    zero, only the transfers show it. A pending amount that was settled twice looks so."""
    def check(report: ledger_checks.Report) -> None:
        assert _kinds(report) == {("BALANCE_DISAGREES_WITH_TRANSFERS", ledger.payer),
                                  ("BALANCE_DISAGREES_WITH_TRANSFERS", ledger.payee)}

    await _broken(ledger, "UPDATE accounts SET debits_pending = debits_pending + 7 "
                          "WHERE region = :r AND id = :a; "
                          "UPDATE accounts SET credits_pending = credits_pending + 7 "
                          "WHERE region = :r AND id = :b",
                  "UPDATE accounts SET debits_pending = debits_pending - 7 "
                  "WHERE region = :r AND id = :a; "
                  "UPDATE accounts SET credits_pending = credits_pending - 7 "
                  "WHERE region = :r AND id = :b", check)


async def test_an_overdrawn_account_is_named_even_without_the_database_constraint(
        ledger: Ledger) -> None:
    """The schema refuses an overdraft (``accounts_no_overdraft``); a database that lost the
    constraint (a hand-made migration, a restore into an older schema) is still checked."""
    await _sql(ledger, "ALTER TABLE accounts DROP CONSTRAINT accounts_no_overdraft")

    def check(report: ledger_checks.Report) -> None:
        assert ("OVERDRAWN", ledger.payer) in _kinds(report)
        [over] = [f for f in report.findings if f.kind == "OVERDRAWN"]
        found = re.fullmatch(r"EUR: debits posted (\d+) \+ pending (\d+) > credits posted "
                             r"(\d+)", over.detail)
        assert found is not None, over.detail
        assert int(found[1]) + int(found[2]) > int(found[3])

    try:
        await _broken(ledger, "UPDATE accounts SET debits_posted = debits_posted + 300000 "
                              "WHERE region = :r AND id = :a",
                      "UPDATE accounts SET debits_posted = debits_posted - 300000 "
                      "WHERE region = :r AND id = :a", check)
    finally:
        await _sql(ledger, """ALTER TABLE accounts ADD CONSTRAINT accounts_no_overdraft CHECK (
            NOT debits_must_not_exceed_credits
            OR debits_posted + debits_pending <= credits_posted)""")


async def test_a_lost_entry_is_named(ledger: Ledger) -> None:
    async def count(conn: AsyncConnection) -> int:
        return int((await conn.execute(text(
            "SELECT count(*) FROM entries WHERE region = :r AND account_id = :b"),
            {"r": region, "b": ledger.payee})).scalar_one())

    entries = await ledger.router.run(region, count)
    assert entries > 0

    def check(report: ledger_checks.Report) -> None:
        assert _kinds(report) == {("ENTRIES_NOT_DENSE", ledger.payee)}
        assert report.findings[0].detail == (f"entry sequence {entries + 1}, {entries} entries, "
                                             f"the highest {entries}")

    await _broken(ledger, "UPDATE accounts SET entry_seq = entry_seq + 1 "
                          "WHERE region = :r AND id = :b",
                  "UPDATE accounts SET entry_seq = entry_seq - 1 "
                  "WHERE region = :r AND id = :b", check)


async def test_a_gap_in_the_entry_numbers_is_named(ledger: Ledger) -> None:
    """As many entries as the sequence says, but one numbered past it: one is missing below."""
    def check(report: ledger_checks.Report) -> None:
        assert _kinds(report) == {("ENTRIES_NOT_DENSE", ledger.payee)}
        found = re.fullmatch(r"entry sequence (\d+), (\d+) entries, the highest (\d+)",
                             report.findings[0].detail)
        assert found is not None, report.findings[0].detail
        assert found[1] == found[2]
        assert int(found[3]) == int(found[1]) + 5

    last = ("(SELECT entry_seq FROM accounts WHERE region = :r AND id = :b)")
    await _broken(ledger, f"UPDATE entries SET seq = seq + 5 WHERE region = :r "
                          f"AND account_id = :b AND seq = {last}",
                  f"UPDATE entries SET seq = seq - 5 WHERE region = :r "
                  f"AND account_id = :b AND seq = {last} + 5", check)


@pytest.mark.parametrize(("do", "undo", "subject", "detail"), [
    ("UPDATE payouts SET status = 'FAILED' WHERE region = :r AND id = :p",
     "UPDATE payouts SET status = 'COMPLETED' WHERE region = :r AND id = :p",
     "payout", "FAILED: hold POSTED, fee -, return -"),
    ("UPDATE payouts SET fee_minor = 1, fee_transfer_id = 'trf_nowhere' "
     "WHERE region = :r AND id = :p",
     "UPDATE payouts SET fee_minor = 0, fee_transfer_id = NULL WHERE region = :r AND id = :p",
     "payout", "COMPLETED: hold POSTED, fee missing, return -"),
    # The region paying another region's payout on its rail holds what the origin will owe;
    # that hold follows the payout's status here too.
    ("UPDATE xr_payouts SET status = 'COMPLETED' WHERE region = :r AND id = :x",
     "UPDATE xr_payouts SET status = 'PROCESSING' WHERE region = :r AND id = :x",
     "xr_payout", "paid for ap-southeast, COMPLETED: hold PENDING, fee -, return -"),
], ids=["hold against status", "fee transfer missing", "another region's payout"])
async def test_a_payout_whose_transfers_contradict_its_status_is_named(
        ledger: Ledger, do: str, undo: str, subject: str, detail: str) -> None:
    named = {"payout": ledger.payout_id, "xr_payout": ledger.xr_payout_id}[subject]

    def check(report: ledger_checks.Report) -> None:
        assert _kinds(report) == {("PAYOUT_HOLD_MISMATCH", named)}
        assert report.findings[0].detail == detail

    await _broken(ledger, do, undo, check)


async def test_findings_of_one_kind_are_bounded(ledger: Ledger) -> None:
    def check(report: ledger_checks.Report) -> None:
        assert [f.kind for f in report.findings] == ["ENTRIES_NOT_DENSE"]
        assert report.truncated == ["ENTRIES_NOT_DENSE"]

    await _sql(ledger, "UPDATE accounts SET entry_seq = entry_seq + 1 "
                       "WHERE region = :r AND id IN (:a, :b)", r=region, a=ledger.payer,
               b=ledger.payee)
    try:
        check(await _verify(ledger, limit=1))
    finally:
        await _sql(ledger, "UPDATE accounts SET entry_seq = entry_seq - 1 "
                           "WHERE region = :r AND id IN (:a, :b)", r=region, a=ledger.payer,
                   b=ledger.payee)
    assert (await _verify(ledger)).intact


def _reports(out: str) -> dict[str, dict[str, Any]]:
    return {r["region"]: r for r in map(json.loads, out.splitlines())}


async def test_the_command(ledger: Ledger, topo: Topology) -> None:
    done = await asyncio.to_thread(run_cli, topo, ledger.urls, "ledger", "verify")
    assert done.returncode == 0, done.stderr
    reports = _reports(done.stdout)
    assert set(reports) == {r.code for r in topo.regions}
    assert all(r["intact"] and r["findings"] == [] for r in reports.values())
    assert reports[region]["currencies"] == {"EUR": 4}

    await _sql(ledger, "UPDATE payouts SET status = 'FAILED' WHERE region = :r AND id = :p",
               r=region, p=ledger.payout_id)
    try:
        done = await asyncio.to_thread(run_cli, topo, ledger.urls, "ledger", "verify",
                                       "--region", region)
    finally:
        await _sql(ledger, "UPDATE payouts SET status = 'COMPLETED' "
                           "WHERE region = :r AND id = :p", r=region, p=ledger.payout_id)
    assert done.returncode == 1, done.stderr
    [report] = _reports(done.stdout).values()
    assert report["intact"] is False
    assert report["findings"] == [{"kind": "PAYOUT_HOLD_MISMATCH", "subject": ledger.payout_id,
                                   "detail": "FAILED: hold POSTED, fee -, return -"}]

    # A cluster that cannot be reached: its regions are reported, the others still checked.
    down = next(c.name for c in topo.clusters if c.name != topo.region(region).cluster)
    half = DatabaseUrls(ledger.urls.control, {**ledger.urls.clusters, down: unreachable})
    done = await asyncio.to_thread(run_cli, topo, half, "ledger", "verify")
    assert done.returncode == 1, done.stderr
    reports = _reports(done.stdout)
    assert set(reports) == {r.code for r in topo.regions}
    for code, report in reports.items():
        if topo.region(code).cluster == down:
            assert report == {"region": code, "intact": None,
                              "error": "the database could not be reached"}
        else:
            assert report["intact"] is True, report

    bad = await asyncio.to_thread(run_cli, topo, ledger.urls, "ledger", "verify",
                                  "--region", "mars")
    assert bad.returncode == 2
    assert "unknown region 'mars'" in bad.stderr
    assert bad.stdout == ""


@pytest.mark.parametrize("argv", [["ledger"], ["ledger", "verify", "--bogus"]])
def test_bad_arguments_are_refused(argv: list[str], topo: Topology,
                                   db_urls: DatabaseUrls) -> None:
    done = run_cli(topo, db_urls, *argv)
    assert done.returncode == 2
    assert "usage:" in done.stderr
