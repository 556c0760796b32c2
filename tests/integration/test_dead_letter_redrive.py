"""Re-driving dead-lettered messages on a real RabbitMQ (a vhost of the test's own): what lies
dead is counted by actor and region without being taken, a re-drive moves only what matches,
with its full retries again and the same message id, and leaves the rest (and anything that
is not a dramatiq message) where it was; ``corridor queues`` prints it and refuses bad input."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pika
import pytest

from regions.router import DatabaseUrls
from regions.topology import Topology
from tests import rabbit
from tests.conftest import run_cli
from workers import dead_letters
from workers.broker import make_broker

wait_s_max = 30
queue = "events"


@pytest.fixture
def vhost_url() -> Iterator[str]:
    rabbit.require_rabbitmq()
    name = f"corridor-test-dlq-{uuid.uuid4().hex[:8]}"
    url = rabbit.ensure_vhost(name)
    try:
        yield url
    finally:
        rabbit.delete_vhost(name)


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + wait_s_max
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {wait_s_max} s")
        time.sleep(0.1)


def dead_count(url: str) -> int:
    state = rabbit.queue_state(f"{queue}.XQ", url)
    return 0 if state is None else state[0]


class Rail:
    """The actors' outside world: down, then up but failing each message's first try."""

    def __init__(self) -> None:
        self.down = True
        self.tries: dict[str, int] = {}
        self.done: list[tuple[str, str]] = []

    def call(self, region: str, what: str) -> None:
        self.tries[what] = self.tries.get(what, 0) + 1
        if self.down:
            raise RuntimeError(f"rail down for {what}")
        if self.tries[what] % 2 == 1:
            raise RuntimeError(f"a blip on {what}")  # the re-driven try fails once more
        self.done.append((region, what))


def test_dead_messages_are_counted_and_redriven_by_region_and_actor(vhost_url: str) -> None:
    broker = make_broker(vhost_url)
    rail = Rail()

    def handle_events_t(region: str, what: str) -> None:
        rail.call(region, what)

    def deliver_webhooks_t(region: str) -> None:
        rail.call(region, f"webhooks-{region}")

    options: dict[str, Any] = {"broker": broker, "queue_name": queue, "max_retries": 1,
                               "min_backoff": 10, "max_backoff": 20}
    handle = dramatiq.actor(handle_events_t, **options)
    webhooks = dramatiq.actor(deliver_webhooks_t, **options)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        sent = [handle.send("eu-central", f"eu-{i}") for i in range(3)]
        sent += [handle.send("us-east", f"us-{i}") for i in range(2)]
        sent.append(webhooks.send("eu-central"))
        wait_for(lambda: dead_count(vhost_url) == 6, "six messages dead-lettered")
        with rabbit.connect(vhost_url) as conn:  # something that is not a dramatiq message
            conn.channel().basic_publish("", f"{queue}.XQ", b"\xff not json")

        seen = dead_letters.survey(vhost_url, queue)
        assert (seen["dead"], seen["looked_at"], seen["undecodable"]) == (7, 7, 1)
        assert seen["by_actor_and_region"] == [
            {"actor": "deliver_webhooks_t", "region": "eu-central", "count": 1},
            {"actor": "handle_events_t", "region": "eu-central", "count": 3},
            {"actor": "handle_events_t", "region": "us-east", "count": 2}]
        assert seen["oldest"]["retries"] == 1
        assert seen["oldest"]["error"].startswith("RuntimeError: rail down for")
        assert dead_count(vhost_url) == 7, "a survey takes nothing"

        dry = dead_letters.redrive(vhost_url, queue, region="eu-central",
                                   actor="handle_events_t", dry_run=True)
        # Dead letters lie in the order their last try failed, which the retry backoff's jitter
        # decides, not the order they were sent in.
        eu_ids = sorted(m.message_id for m in sent[:3])
        assert sorted(m.message_id for m in dry.moved) == eu_ids
        assert (dry.left, dead_count(vhost_url)) == (7, 7)

        rail.down = False
        moved = dead_letters.redrive(vhost_url, queue, region="eu-central",
                                     actor="handle_events_t")
        assert sorted(m.message_id for m in moved.moved) == eu_ids
        assert moved.left == 4
        # Each fails once more and then succeeds: its retries were cleared, else max_retries=1
        # would have sent it straight back to the dead-letter queue.
        wait_for(lambda: len(rail.done) == 3, "the three re-driven messages handled")
        assert sorted(rail.done) == [("eu-central", f"eu-{i}") for i in range(3)]
        assert dead_count(vhost_url) == 4

        one = dead_letters.redrive(vhost_url, queue, region="us-east", limit=1)
        us = {sent[3].message_id: "us-0", sent[4].message_id: "us-1"}
        assert len(one.moved) == 1
        assert one.moved[0].message_id in us
        wait_for(lambda: len(rail.done) == 4, "the fourth handled")
        assert rail.done[-1] == ("us-east", us[one.moved[0].message_id])
        assert dead_count(vhost_url) == 3

        rest = dead_letters.redrive(vhost_url, queue)
        assert {m.actor for m in rest.moved} == {"handle_events_t", "deliver_webhooks_t"}
        wait_for(lambda: len(rail.done) == 6, "everything handled")
        assert dead_count(vhost_url) == 1  # only the undecodable message is left
        assert dead_letters.redrive(vhost_url, queue).moved == []
    finally:
        worker.stop()
        broker.close()


def test_a_queue_no_worker_declared_has_nothing_dead(vhost_url: str) -> None:
    assert dead_letters.survey(vhost_url, "fx")["dead"] == 0
    assert dead_letters.redrive(vhost_url, "fx").moved == []


def test_bad_arguments_are_refused(vhost_url: str) -> None:
    with pytest.raises(dead_letters.UnknownQueue, match=r"unknown queue 'fx\.XQ'"):
        dead_letters.survey(vhost_url, "fx.XQ")
    for limit in (0, dead_letters.redrive_limit_max + 1):
        with pytest.raises(ValueError, match="limit must be 1 to"):
            dead_letters.redrive(vhost_url, queue, limit=limit)


def test_the_command(vhost_url: str, topo: Topology, db_urls: DatabaseUrls) -> None:
    with rabbit.connect(vhost_url) as conn:
        channel = conn.channel()
        channel.queue_declare(f"{queue}.XQ", durable=True)
        channel.queue_declare(queue, durable=True)
        body = dramatiq.Message(queue_name=queue, actor_name="handle_events", args=(
            "us-east", []), kwargs={}, options={"retries": 20, "traceback": "Boom: x"}).encode()
        channel.basic_publish("", f"{queue}.XQ", body, pika.BasicProperties(delivery_mode=2))

    def corridor(*args: str) -> Any:
        return run_cli(topo, db_urls, "queues", *args, AMQP_URL=vhost_url)

    listed = corridor("dead", "--queue", queue)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["by_actor_and_region"] == [
        {"actor": "handle_events", "region": "us-east", "count": 1}]
    assert corridor("redrive", "--queue", queue, "--region", "eu-central").returncode == 1
    unknown = corridor("redrive", "--queue", queue, "--region", "mars")
    assert (unknown.returncode, "unknown region 'mars'" in unknown.stderr) == (2, True)
    assert corridor("redrive", "--queue", "nope").returncode == 2
    assert corridor("redrive", "--queue", queue, "--limit", "0").returncode == 2
    moved = corridor("redrive", "--queue", queue, "--region", "us-east")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["left"] == 0
    assert rabbit.queue_state(queue, vhost_url) == (1, 0)
    with rabbit.connect(vhost_url) as conn:
        _, _, back = conn.channel().basic_get(queue, auto_ack=True)
    down = run_cli(topo, db_urls, "queues", "dead", AMQP_URL="amqp://u:secret@127.0.0.1:1/%2F")
    assert down.returncode == 2
    assert "corridor: RabbitMQ at amqp://127.0.0.1:1/" in down.stderr
    assert "secret" not in down.stderr
    assert "Traceback" not in down.stderr
    again = dramatiq.Message.decode(back)
    assert again.options == {}
    assert again.args == ("us-east", [])


def test_the_known_queues_are_the_actors_queues(topo: Topology) -> None:
    from workers.broker import install
    from workers.config import WorkerConfig

    broker, _ = install(WorkerConfig(topology=topo, urls=DatabaseUrls("postgresql+psycopg://x/y",
                                                                      {}), amqp_url=None))
    assert {a.queue_name for a in broker.actors.values()} == set(dead_letters.known_queues)
