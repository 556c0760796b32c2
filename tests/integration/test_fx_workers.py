"""FX workers for real: a ``corridor worker`` process consuming from RabbitMQ.

The worker process reads the test databases and the rates server below (the ``json`` provider);
messages come from ``corridor fx refresh`` or from this process through dramatiq's broker. The
fx queues are purged before and after each test, and every worker process is killed at
teardown. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import dramatiq
import pytest
import pytest_asyncio
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.fx import display
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests import rabbit
from tests import rates_server as rates_server_module
from tests.conftest import corridor_env
from tests.e2e import conftest as e2e
from tests.fx_helpers import load_rates, sample_rates
from tests.rates_server import RatesServer

client = e2e.client
make_partner = e2e.make_partner
module_rates_server = rates_server_module.module_rates_server

fx_queues = ["fx", "fx.DQ", "fx.XQ"]
worker_ready_s_max = 30.0
applied_s_max = 30.0
redelivered_s_max = 60.0
cli_timeout_s = 60.0
stop_s_max = 10.0

T = TypeVar("T")


# Fixtures


@pytest.fixture(scope="module")
def amqp_url() -> str:
    return rabbit.require_rabbitmq()


@pytest.fixture(scope="module")
def worker_env(topo: Topology, db_urls: DatabaseUrls, amqp_url: str,
               module_rates_server: RatesServer) -> dict[str, str]:
    return corridor_env(topo, db_urls, AMQP_URL=amqp_url, CORRIDOR_FX_PROVIDER="json",
                        CORRIDOR_FX_URL=module_rates_server.url, PYTHONUNBUFFERED="1")


@pytest.fixture
def rates(module_rates_server: RatesServer) -> RatesServer:
    module_rates_server.ok()
    return module_rates_server


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> int:
        """SIGKILL, and wait (bounded) until it is gone; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=stop_s_max)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=stop_s_max)
            except subprocess.TimeoutExpired:
                self.kill()


class Workers:
    """Starts ``corridor worker`` processes; the fixture stops all of them at teardown."""

    def __init__(self, env: dict[str, str], logs: Path, amqp_url: str) -> None:
        self.env = env
        self.logs = logs
        self.amqp_url = amqp_url
        self.started: list[WorkerProcess] = []

    def _spawn(self) -> WorkerProcess:
        log = self.logs / f"worker-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--threads", "2"],
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)
        worker = WorkerProcess(proc, log)
        self.started.append(worker)
        return worker

    async def start(self) -> WorkerProcess:
        """A new worker process, once it consumes the fx queue."""
        worker = self._spawn()
        proc = worker.proc

        async def consuming() -> bool:
            assert proc.poll() is None, f"worker exited early:\n{worker.output()}"
            state = await asyncio.to_thread(rabbit.queue_state, "fx", self.amqp_url)
            return state is not None and state[1] >= 1

        await eventually(consuming, worker_ready_s_max, "the worker to consume the fx queue",
                         lambda: worker.output())
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def outputs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.output()[-4000:]}" for w in self.started)


@pytest.fixture
def workers(worker_env: dict[str, str], amqp_url: str, tmp_path: Path) -> Iterator[Workers]:
    rabbit.purge(fx_queues, amqp_url)
    started = Workers(worker_env, tmp_path, amqp_url)
    try:
        yield started
    finally:
        started.stop_all()
        rabbit.purge(fx_queues, amqp_url)


@pytest_asyncio.fixture
async def baseline(router: Router) -> AsyncIterator[dict[str, tuple[Decimal, datetime, str]]]:
    """The sample rates, freshly loaded: what each test starts from."""
    await load_rates(router)
    yield await stored_rates(router)


# Helpers


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float, what: str,
                     context: Callable[[], str] = lambda: "", interval_s: float = 0.2) -> T:
    """The first truthy result of ``check``, polled until ``timeout_s``; fails the test after."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{context()}")
        await asyncio.sleep(interval_s)


async def rows(router: Router, sql: str, **params: Any) -> list[Any]:
    async def body(conn: AsyncConnection) -> list[Any]:
        return list(await conn.execute(text(sql), params))

    return await router.run_control(body)


async def stored_rates(router: Router) -> dict[str, tuple[Decimal, datetime, str]]:
    found = await rows(router, "SELECT quote, rate, as_of, source FROM fx_rates "
                               "WHERE base = 'EUR'")
    return {r.quote: (r.rate, r.as_of, r.source) for r in found}


async def refreshes(router: Router, message_id: str) -> list[tuple[Any, ...]]:
    found = await rows(router, "SELECT status, source, rates_written, rates_held, error "
                               "FROM fx_refreshes WHERE message_id = :m", m=message_id)
    return [tuple(r) for r in found]


async def inbox_count(router: Router, message_id: str) -> int:
    found = await rows(router, "SELECT count(*) AS n FROM inbox "
                               "WHERE consumer = 'fx.refresh' AND message_id = :m", m=message_id)
    return int(found[0].n)


def corridor_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True,
                         text=True, timeout=cli_timeout_s, check=False)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def moved(bps: int) -> dict[str, str]:
    """The sample rates, each moved by ``bps`` basis points (within the jump limit)."""
    return {k: format(Decimal(v) * (10_000 + bps) / 10_000, "f") for k, v in sample_rates.items()}


def enqueue_twice(amqp_url: str, message: dramatiq.Message[Any]) -> None:
    broker = RabbitmqBroker(url=amqp_url, confirm_delivery=True)
    try:
        broker.enqueue(message)
        broker.enqueue(message)
    finally:
        broker.close()


# Tests


async def test_refresh_message_is_consumed_by_the_worker_process(
        router: Router, baseline: dict[str, Any], rates: RatesServer, workers: Workers,
        worker_env: dict[str, str], make_partner: e2e.MakePartner) -> None:
    texts = moved(30)
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    rates.ok(texts, as_of=as_of)
    await workers.start()

    sent = await asyncio.to_thread(corridor_cli, worker_env, "fx", "refresh")
    assert sent["sent"] == "refresh_fx_rates"
    mid = sent["message_id"]

    async def applied() -> list[tuple[Any, ...]]:
        return await refreshes(router, mid)

    done = await eventually(applied, applied_s_max, f"the refresh of message {mid}",
                            workers.outputs)
    assert done == [("ok", "json", len(texts), 0, None)]
    assert await inbox_count(router, mid) == 1
    stored = await stored_rates(router)
    assert {k: stored[k] for k in texts} == {k: (Decimal(v), as_of, "json")
                                             for k, v in texts.items()}

    p = await make_partner("EU")
    listed = (await p.gql('{ fxRates(base: "EUR") { quote rate stale source } }'))
    by_quote = {r["quote"]: r for r in listed["data"]["fxRates"]}
    assert by_quote["USD"] == {"quote": "USD", "rate": display(Fraction(Decimal(texts["USD"]))),
                               "stale": False, "source": "json"}
    assert by_quote["JPY"]["rate"] == display(Fraction(Decimal(texts["JPY"])))


async def test_the_same_message_delivered_twice_has_one_effect(
        router: Router, baseline: dict[str, Any], rates: RatesServer, workers: Workers,
        amqp_url: str) -> None:
    texts = moved(-40)
    rates.ok(texts)
    worker = await workers.start()
    requests_before = rates.requests
    # Each fetch waits for the other: the second delivery cannot find the first one's result
    # before it fetches (the early inbox check), so the write's own dedupe is what is tested.
    rates.together(2)
    mid = str(uuid.uuid4())
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="fx", actor_name="refresh_fx_rates", args=(), kwargs={}, options={},
        message_id=mid)

    await asyncio.to_thread(enqueue_twice, amqp_url, message)

    async def both_handled() -> bool:
        return (f"message {mid} was already applied" in worker.output()
                and f"message={mid}" in worker.output())

    await eventually(both_handled, applied_s_max, "both deliveries to be handled",
                     workers.outputs)
    assert rates.requests - requests_before == 2  # both deliveries reached the actor
    assert await refreshes(router, mid) == [("ok", "json", len(texts), 0, None)]
    assert await inbox_count(router, mid) == 1
    stored = await stored_rates(router)
    assert {k: stored[k][0] for k in texts} == {k: Decimal(v) for k, v in texts.items()}
    assert worker.output().count(f"message={mid}") == 1  # one "fx refresh ok" line


async def test_worker_killed_mid_refresh_is_redelivered_and_applied_once(
        router: Router, baseline: dict[str, Any], rates: RatesServer, workers: Workers,
        worker_env: dict[str, str], amqp_url: str) -> None:
    rates.slow(20)
    requests_before = rates.requests
    first = await workers.start()

    mid = (await asyncio.to_thread(corridor_cli, worker_env, "fx", "refresh"))["message_id"]
    fetching = await asyncio.to_thread(rates.wait_for_requests, requests_before + 1, 30)
    assert fetching, f"the worker never asked the provider\n{workers.outputs()}"
    assert first.kill() == -signal.SIGKILL

    assert await refreshes(router, mid) == []
    assert await inbox_count(router, mid) == 0
    assert await stored_rates(router) == baseline

    texts = moved(25)
    rates.ok(texts)

    async def no_consumers() -> bool:
        state = await asyncio.to_thread(rabbit.queue_state, "fx", amqp_url)
        return state is not None and state[1] == 0

    await eventually(no_consumers, 15, "RabbitMQ to drop the killed worker's consumer")
    second = await workers.start()

    async def applied() -> list[tuple[Any, ...]]:
        return await refreshes(router, mid)

    done = await eventually(applied, redelivered_s_max,
                            f"message {mid} to be redelivered and applied", workers.outputs)
    assert done == [("ok", "json", len(texts), 0, None)]
    assert await inbox_count(router, mid) == 1
    stored = await stored_rates(router)
    assert {k: stored[k][0] for k in texts} == {k: Decimal(v) for k, v in texts.items()}

    async def drained() -> bool:
        state = await asyncio.to_thread(rabbit.queue_state, "fx", amqp_url)
        return state == (0, 1)

    await eventually(drained, 15, "the fx queue to be empty", workers.outputs)
    await asyncio.sleep(1)  # a second application, if any, would show up now
    assert await refreshes(router, mid) == [("ok", "json", len(texts), 0, None)]
    assert rates.requests - requests_before == 2  # the killed fetch and the redelivered one
    assert second.output().count(f"message={mid}") == 1
    assert second.proc.poll() is None
