"""Payouts for real: GraphQL -> outbox -> ``corridor relay`` -> RabbitMQ -> ``corridor worker``
-> sandbox rail -> hold posted or voided, with a worker SIGKILLed mid-stream.

Every wait is bounded; every process is stopped at teardown; the events queues are purged
before and after. Outbox rows left by earlier tests are marked published first, so the relay
here carries only this module's events.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests import rabbit
from tests.conftest import corridor_env
from tests.e2e import conftest as e2e
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.integration.test_fx_workers import WorkerProcess, Workers, eventually
from tests.payouts_helpers import BENEFICIARY, PAYOUT, assert_ledger_consistent, de_iban

client = e2e.client
make_partner = e2e.make_partner

event_queues = ["events", "events.DQ", "events.XQ", "fx", "fx.DQ", "fx.XQ"]
settled_s_max = 120.0
final = ("COMPLETED", "FAILED")


@pytest.fixture(scope="module")
def amqp_url() -> str:
    return rabbit.require_rabbitmq()


@pytest.fixture(scope="module")
def env(topo: Topology, db_urls: DatabaseUrls, amqp_url: str) -> dict[str, str]:
    return corridor_env(topo, db_urls, AMQP_URL=amqp_url, PYTHONUNBUFFERED="1",
                        CORRIDOR_SANDBOX_RETURN_AFTER_S="3600")


@pytest.fixture
def workers(env: dict[str, str], amqp_url: str, tmp_path: Path) -> Iterator[Workers]:
    rabbit.purge(event_queues, amqp_url)
    started = Workers(env, tmp_path, amqp_url)
    try:
        yield started
    finally:
        started.stop_all()
        rabbit.purge(event_queues, amqp_url)


@pytest_asyncio.fixture
async def relay(env: dict[str, str], router: Router, tmp_path: Path
                ) -> AsyncIterator[WorkerProcess]:
    """A ``corridor relay`` process, started after older outbox rows were marked published."""
    for region in ("eu-central", "uk-south", "us-east", "ap-southeast", "cn-east"):
        async def body(conn: AsyncConnection, region: str = region) -> None:
            await conn.execute(text("UPDATE outbox SET published_at = now() "
                                    "WHERE region = :r AND published_at IS NULL"), {"r": region})

        await router.run(region, body)
    relay = _spawn_relay(env, tmp_path / "relay.log")
    try:
        yield relay
    finally:
        relay.stop()


def _spawn_relay(env: dict[str, str], log: Path) -> WorkerProcess:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "relay"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    return WorkerProcess(proc, log)


async def _setup(make_partner: MakePartner, count: int) -> tuple[Partner, list[str]]:
    p = await make_partner("EU", funded={"EUR": 10_000_000_00})
    got = await p.gql(BENEFICIARY, {"i": {"name": "Max Mustermann", "country": "DE",
                                          "currency": "EUR", "iban": de_iban,
                                          "idempotencyKey": "ben"}})
    ben = got["data"]["createBeneficiary"]["id"]
    made = []
    for i in range(count):
        cents = (91, 94, 0, 0, 0)[i % 5]  # a failure, a rail time-out, three plain successes
        got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben,
                                         "amount": f"{10 + i}.{cents:02d}", "currency": "EUR",
                                         "idempotencyKey": f"pay-{i}"}})
        assert got["data"]["createPayout"]["status"] == "PENDING", got
        made.append(got["data"]["createPayout"]["id"])
    return p, made


async def _statuses(router: Router, p: Partner) -> dict[str, str]:
    found = await rows(router, p.region, "SELECT id, status FROM payouts WHERE tenant_id = :t",
                       t=p.tenant_id)
    return {r.id: r.status for r in found}


async def _settled_once(router: Router, p: Partner) -> None:
    """On the paying account, each hold and fee transfer has one PENDING entry and one
    settling (POSTED or VOIDED) entry, no more: every hold was settled exactly once."""
    counts = await rows(router, p.region, """
        SELECT e.transfer_id, e.phase, count(*) AS n FROM entries e
        WHERE e.region = :r AND e.account_id = :a GROUP BY e.transfer_id, e.phase""",
        r=p.region, a=p.accounts[0])
    held = {r.id for r in await rows(router, p.region, """
        SELECT unnest(ARRAY[hold_transfer_id, fee_transfer_id]) AS id FROM payouts
        WHERE region = :r AND tenant_id = :t""", r=p.region, t=p.tenant_id) if r.id}
    per_transfer: dict[str, dict[str, int]] = {}
    for c in counts:
        per_transfer.setdefault(c.transfer_id, {})[c.phase] = int(c.n)
    assert held <= set(per_transfer), held - set(per_transfer)
    for transfer in held:
        phases = per_transfer[transfer]
        assert phases.get("PENDING") == 1, (transfer, phases)
        assert sum(n for ph, n in phases.items() if ph != "PENDING") == 1, (transfer, phases)


async def test_payouts_run_through_relay_rabbitmq_and_worker(
        router: Router, make_partner: MakePartner, workers: Workers, relay: WorkerProcess
) -> None:
    p, made = await _setup(make_partner, 15)
    await workers.start()

    async def all_final() -> bool:
        return all(s in final for s in (await _statuses(router, p)).values())

    await eventually(all_final, settled_s_max, "every payout to reach a final status",
                     lambda: workers.outputs() + relay.output()[-3000:])
    statuses = await _statuses(router, p)
    assert sorted(statuses) == sorted(made)
    assert [statuses[m] for m in made] == [
        ("FAILED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED")[i % 5]
        for i in range(len(made))]
    await _settled_once(router, p)
    await assert_ledger_consistent(router, p.region, p.tenant_id)


async def test_worker_killed_mid_stream_every_payout_settles_once(
        router: Router, make_partner: MakePartner, workers: Workers, relay: WorkerProcess
) -> None:
    p, made = await _setup(make_partner, 150)
    first = await workers.start()

    async def some_final() -> bool:
        return sum(s in final for s in (await _statuses(router, p)).values()) >= 10

    await eventually(some_final, settled_s_max, "the first payouts to settle", workers.outputs)
    first.kill()
    done_at_kill = sum(s in final for s in (await _statuses(router, p)).values())
    assert done_at_kill < len(made), "the kill came too late to test anything"
    await workers.start()

    async def all_final() -> bool:
        return all(s in final for s in (await _statuses(router, p)).values())

    await eventually(all_final, settled_s_max, "every payout to settle after the restart",
                     workers.outputs)
    await _settled_once(router, p)
    await assert_ledger_consistent(router, p.region, p.tenant_id)

    async def outbox_drained() -> bool:
        left = await rows(router, p.region, "SELECT count(*) AS n FROM outbox "
                          "WHERE region = :r AND published_at IS NULL", r=p.region)
        return int(left[0].n) == 0

    await eventually(outbox_drained, settled_s_max, "the relay to publish every event",
                     relay.output)


BATCH = """mutation($i: CreatePayoutBatchInput!) { createPayoutBatch(input: $i) { __typename
  ... on PayoutBatch { id pending } ... on Error { code message } } }"""


async def test_worker_killed_mid_batch_the_batch_completes_once(
        router: Router, make_partner: MakePartner, workers: Workers, relay: WorkerProcess
) -> None:
    p = await make_partner("EU", funded={"EUR": 10_000_000_00})
    got = await p.gql(BENEFICIARY, {"i": {"name": "Batch Payee", "country": "DE",
                                          "currency": "EUR", "iban": de_iban,
                                          "idempotencyKey": "ben"}})
    ben = got["data"]["createBeneficiary"]["id"]
    items = [{"beneficiaryId": ben, "amount": f"{1 + i % 40}.{(0, 91, 0, 0)[i % 4]:02d}",
              "currency": "EUR", "externalId": str(i)} for i in range(10_000)]
    made = await p.gql(BATCH, {"i": {"accountId": p.accounts[0], "items": items,
                                     "idempotencyKey": "batch-kill"}})
    assert made["data"]["createPayoutBatch"]["pending"] == 10_000, made
    first = await workers.start()

    async def some_final() -> bool:
        return sum(s in final for s in (await _statuses(router, p)).values()) >= 1_000

    await eventually(some_final, settled_s_max, "the first chunks to settle", workers.outputs)
    first.kill()
    assert sum(s in final for s in (await _statuses(router, p)).values()) < 10_000, (
        "the kill came too late to test anything")
    await workers.start()

    async def all_final() -> bool:
        return all(s in final for s in (await _statuses(router, p)).values())

    await eventually(all_final, settled_s_max, "the batch to finish after the restart",
                     workers.outputs)
    statuses = await _statuses(router, p)
    assert sum(s == "FAILED" for s in statuses.values()) == 2_500
    await _settled_once(router, p)
    await assert_ledger_consistent(router, p.region, p.tenant_id)
    batch = await rows(router, p.region, "SELECT status FROM payout_batches WHERE tenant_id = :t",
                       t=p.tenant_id)
    assert [b.status for b in batch] == ["COMPLETED"]
