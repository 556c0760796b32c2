"""Cross-region settlement under faults, on two PostgreSQL servers and real RabbitMQ.

eu-central's cluster lives on the main test server, ap-southeast's on a server of its own
(embedded, restartable). Each region runs a real ``corridor settlement run --region R`` process
on its own vhost. An EU tenant pays SGD over ap-southeast's rail and an SG tenant pays EUR over
eu-central's, while the test:

1. SIGKILLs ap-southeast's settlement process mid-stream, then starts another;
2. stops ap-southeast's database server while eu-central keeps accepting and sending payouts,
   then starts it again;
3. restarts RabbitMQ.

Afterwards every payout is final, the pair nets, and reconciliation shows zero breaks, with
what eu-central owes equal to what ap-southeast is owed to the minor unit, and each payout paid
once. The payout workers' steps are driven by the test (the dramatiq side is covered by
test_payout_workers); the settlement transport is the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.bank_details import BankDetails
from payments.principal import Environment, Principal, Role
from regions import beneficiaries, commands, migrate, reconciliation, tenants, xr
from regions.databases import drop_databases, ensure_databases, local_urls, sqlalchemy_url
from regions.ledger_store import insert_account
from regions.payouts import CreatePayout, create_payout_txn
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology, load
from tests import pg, rabbit
from tests.cluster_helpers import SecondServer, two_region_topology
from tests.conftest import corridor_env, test_pepper
from tests.fx_helpers import load_rates
from tests.integration.helpers import rows
from tests.integration.test_fx_workers import WorkerProcess, eventually
from tests.payouts_helpers import assert_ledger_consistent, sandbox_sealer
from workers.payouts import process_payout, process_xr_payout
from workers.rails import sandbox_rails
from workers.settlement import net_region

home, paying = "eu-central", "ap-southeast"
settled_s_max = 180.0
window_s = 3_600
_rails = sandbox_rails(return_after_s=3_600)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tag = f"xrf{uuid.uuid4().hex[:8]}"
    directory = tmp_path_factory.mktemp("xrf")
    topo = load(two_region_topology(directory, tag, home, paying, {
        "control": "CORRIDOR_XRF_CONTROL_URL", "global": "CORRIDOR_XRF_GLOBAL_URL",
        "apac": "CORRIDOR_XRF_APAC_URL"}))
    # The embedded server's Unix socket lives in its data directory: keep the path short.
    short = tempfile.mkdtemp(prefix="xrf-", dir="/tmp")
    os.chmod(short, 0o777)  # noqa: S103 - a throwaway directory of this test's own
    apac = SecondServer(Path(short))
    apac_url = apac.start()
    vhosts = [rabbit.ensure_vhost(r.amqp_vhost) for r in topo.regions]
    with pg.server_url() as main:
        prefix = f"corridor_{tag}"
        ensure_databases(main, topo, prefix, fresh=True)
        urls, by_target = local_urls(main, topo, prefix)
        by_target["cluster:apac"] = sqlalchemy_url(apac_url)
        urls = DatabaseUrls(urls.control, {**urls.clusters, "apac": sqlalchemy_url(apac_url)})
        migrate.apply(topo, by_target)
        try:
            yield {"topo": topo, "urls": urls, "apac": apac, "dir": directory,
                   "amqp": vhosts, "regions_file": directory / "regions.yaml"}
        finally:
            with contextlib.suppress(Exception):
                apac.stop()
            drop_databases(main, topo, prefix)
            for r in topo.regions:
                rabbit.delete_vhost(r.amqp_vhost)


@pytest_asyncio.fixture(loop_scope="session")
async def xrouter(world: dict[str, Any]) -> AsyncIterator[Router]:
    r = Router(world["topo"], world["urls"], pool_size=4)
    yield r
    await r.dispose()


class Settlement:
    """``corridor settlement run --region R`` processes, one per region."""

    def __init__(self, world: dict[str, Any]) -> None:
        self.env = corridor_env(world["topo"], world["urls"],
                                CORRIDOR_REGIONS_FILE=str(world["regions_file"]),
                                AMQP_URL=rabbit.amqp_url(), PYTHONUNBUFFERED="1")
        self.dir: Path = world["dir"]
        self.procs: dict[str, WorkerProcess] = {}
        self.count = 0

    def start(self, region: str) -> WorkerProcess:
        self.count += 1
        log = self.dir / f"settlement-{region}-{self.count}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "api.cli", "settlement", "run",
                                     "--region", region], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs[region] = WorkerProcess(proc, log)
        return self.procs[region]

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                         for log in sorted(self.dir.glob("settlement-*.log")))

    def stop_all(self) -> None:
        for p in self.procs.values():
            p.stop()


async def _principal(router: Router, topo: Topology, jurisdiction: str, region: str
                     ) -> Principal:
    async def body(conn: AsyncConnection) -> Principal:
        t = await tenants.create_tenant(conn, topo, f"XRF {jurisdiction}", jurisdiction,
                                        region, Environment.TEST, gate=PolicyGate())
        key = await tenants.create_api_key(conn, test_pepper, t.id, Role.PARTNER_ADMIN, [])
        who = await tenants.authenticate(conn, test_pepper, key.key)
        assert who is not None
        return who

    return await router.run_control(body)


class Traffic:
    """Payouts of one tenant to one beneficiary, created and sent home-side."""

    def __init__(self, router: Router, gate: PolicyGate, who: Principal, currency: str,
                 details: BankDetails, name: str) -> None:
        self.router, self.gate, self.who = router, gate, who
        self.currency, self.details, self.name = currency, details, name
        self.account = ""
        self.beneficiary = ""
        self.made: list[str] = []

    async def open(self) -> None:
        sealer = sandbox_sealer()

        async def body(conn: AsyncConnection) -> tuple[str, str]:
            acc = await insert_account(conn, self.who.region, self.who.tenant.id,
                                       self.currency, "xrf")
            await commands.fund_account_txn(conn, self.who.region, self.who.tenant.id, acc,
                                            1_000_000_00, self.currency, "xrf")
            ben = await beneficiaries.create_beneficiary_txn(
                conn, self.who, sealer, beneficiaries.CreateBeneficiary(
                    self.name, self.currency, self.details, None, "xrf-ben"))
            return acc, str(ben["id"])

        self.account, self.beneficiary = await self.router.run(self.who.region, body)

    async def pay(self, count: int) -> None:
        sealer = sandbox_sealer()
        for _ in range(count):
            n = len(self.made)
            cents = (91 if n % 7 == 3 else 0)  # some the paying rail refuses
            cmd = CreatePayout(self.account, self.beneficiary, 10_00 + n * 100 + cents,
                               self.currency, f"xrf {n}", None, f"xrf-{n}")

            async def body(conn: AsyncConnection, cmd: CreatePayout = cmd) -> dict[str, Any]:
                return await create_payout_txn(conn, self.who, sealer, self.gate, cmd)

            made = await self.router.run(self.who.region, body)
            self.made.append(str(made["id"]))


async def _drive(router: Router, gate: PolicyGate, stop: asyncio.Event) -> None:
    """The payout workers of both regions: home steps for PENDING payouts, the paying region's
    steps for ACCEPTED ones; a region that is down is tried again on the next round."""
    sealer = sandbox_sealer()
    while not stop.is_set():
        for region in (home, paying):
            try:
                for r in await rows(router, region, "SELECT id FROM payouts WHERE region = :r "
                                    "AND status = 'PENDING'", r=region):
                    await process_payout(router, sealer, gate, _rails, region, r.id, "drive")
                for r in await rows(router, region, "SELECT id FROM xr_payouts WHERE "
                                    "region = :r AND status IN ('ACCEPTED', 'PROCESSING')",
                                    r=region):
                    await process_xr_payout(router, sealer, _rails, region, r.id)
            except Exception:  # noqa: BLE001, S112 - that region's database is down
                continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.2)


async def _count(router: Router, region: str, sql: str, **params: Any) -> int:
    try:
        return int((await rows(router, region, sql, r=region, **params))[0].n)
    except Exception:  # noqa: BLE001 - the region's database is down
        return -1


async def _all_final(router: Router) -> bool:
    for region in (home, paying):
        open_ = await _count(router, region, "SELECT count(*) AS n FROM payouts WHERE "
                             "region = :r AND status NOT IN ('COMPLETED', 'FAILED')")
        if open_ != 0:
            return False
    return True


async def _quiet(router: Router) -> bool:
    for region in (home, paying):
        try:
            streams = await router.read(region, lambda c, region=region: xr.streams(c, region))
        except Exception:  # noqa: BLE001
            return False
        peers = {s.peer: s for s in streams}
        other = paying if region == home else home
        try:
            theirs = await router.read(other, lambda c, other=other: xr.streams(c, other))
        except Exception:  # noqa: BLE001
            return False
        mine = peers.get(other)
        back = next((s for s in theirs if s.peer == region), None)
        if mine is None or back is None:
            return False
        if (mine.unpublished, mine.waiting) != (0, 0) or back.applied_seq != mine.sent_seq:
            return False
    return True


async def test_settlement_survives_a_killed_consumer_a_stopped_database_and_a_broker_restart(
        world: dict[str, Any], xrouter: Router) -> None:
    router, topo = xrouter, world["topo"]
    await load_rates(router)
    gate = PolicyGate()
    await gate.refresh(router, force=True)
    eu = Traffic(router, gate, await _principal(router, topo, "EU", home), "SGD",
                 BankDetails("SG", None, None, "7171", "0012345678"), "Tan Wei Ming")
    sg = Traffic(router, gate, await _principal(router, topo, "SG", paying), "EUR",
                 BankDetails("DE", "DE89370400440532013000", None, None, None), "Max Mustermann")
    await eu.open()
    await sg.open()
    settlement = Settlement(world)
    stop = asyncio.Event()
    driver = asyncio.create_task(_drive(router, gate, stop))
    try:
        settlement.start(home)
        settlement.start(paying)
        await eu.pay(8)
        await sg.pay(4)

        async def some_accepted() -> bool:
            return await _count(router, paying, "SELECT count(*) AS n FROM xr_payouts "
                                "WHERE region = :r") >= 3

        await eventually(some_accepted, settled_s_max, "ap-southeast to accept payouts",
                         settlement.logs)
        # 1. The destination's consumer dies mid-stream; another takes over.
        assert settlement.procs[paying].kill() != 0
        await eu.pay(6)
        second = settlement.start(paying)
        # 2. The destination's database stops; the origin keeps accepting and sending. It
        # stays down until the new consumer has failed to apply a message (a fixed pause let
        # a loaded machine deliver nothing meanwhile).
        world["apac"].stop()
        await eu.pay(6)

        async def a_handler_failed() -> bool:
            return "handler failed" in second.output()

        await eventually(a_handler_failed, settled_s_max,
                         "ap-southeast's consumer to fail while its database is down",
                         settlement.logs)
        world["apac"].start()
        # 3. RabbitMQ restarts while messages are on their way.
        await eu.pay(4)
        await sg.pay(3)
        await asyncio.to_thread(rabbit.restart_broker)
        await eu.pay(4)

        await eventually(lambda: _all_final(router), settled_s_max, "every payout final",
                         settlement.logs)
        await eventually(lambda: _quiet(router), settled_s_max, "the streams to drain",
                         settlement.logs)
        later = datetime.now(UTC) + timedelta(seconds=2 * window_s)
        made = await net_region(router, paying, window_s, "xrf", later)
        assert made, "the pair has something to net"

        async def settled() -> bool:
            for region, peer in ((paying, home), (home, paying)):
                found = await rows(router, region, "SELECT status FROM settlement_batches "
                                   "WHERE region = :r AND peer = :p", r=region, p=peer)
                if len(found) < len(made) or any(b.status != "SETTLED" for b in found):
                    return False
            return await _quiet(router)

        await eventually(settled, settled_s_max, "the batches to settle", settlement.logs)
    finally:
        stop.set()
        await driver
        settlement.stop_all()

    for currency, origin, traffic in (("SGD", home, eu), ("EUR", paying, sg)):
        report = await reconciliation.reconcile(router, paying, home, currency)
        assert report.breaks == [], (report, settlement.logs())
        assert report.quiet
        completed = await rows(router, origin, "SELECT coalesce(sum(amount_minor), 0) AS n, "
                               "count(*) AS c FROM payouts WHERE region = :r AND tenant_id = :t "
                               "AND status = 'COMPLETED'", r=origin, t=traffic.who.tenant.id)
        paid_minor = int(completed[0].n)
        assert paid_minor > 0
        payable_origin = report.payable_b_minor if origin == home else report.payable_a_minor
        receivable_paying = (report.receivable_a_minor if origin == home
                             else report.receivable_b_minor)
        assert payable_origin == receivable_paying == paid_minor, report
        assert (report.due_to_a_minor, report.due_from_a_minor, report.due_to_b_minor,
                report.due_from_b_minor) == (0, 0, 0, 0), report
        # Each payout was paid once: one paying-side record per payout that crossed.
        destination = paying if origin == home else home
        [once] = await rows(router, destination, "SELECT count(*) AS n, count(DISTINCT id) AS d "
                            "FROM xr_payouts WHERE region = :r AND origin = :o",
                            r=destination, o=origin)
        assert once.n == once.d == len(traffic.made)
    for region in (home, paying):
        await assert_ledger_consistent(router, region)
    # The faults happened where they were meant to (the second ap-southeast consumer failed to
    # apply while its database was down: waited for above), and both consumers lost RabbitMQ
    # and came back.
    for log in (f"settlement-{home}-1.log", f"settlement-{paying}-3.log"):
        text = (world["dir"] / log).read_text(errors="replace")
        assert "reconnecting" in text, text[-3000:]
