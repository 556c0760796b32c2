"""The cross-region transport against a real RabbitMQ: confirmed publish, ack after the handler.

Each test has a vhost of its own (``corridor-test-xr-<random>``), deleted afterwards. The broker
restart test stops and starts the local RabbitMQ application, so it disturbs whatever else uses
that broker at the same moment. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest

from tests import rabbit
from workers.xr_transport import (
    XrConsumer,
    XrPublisher,
    XrPublishError,
    queue_depth,
    queue_from,
    queue_name,
    region_amqp_url,
)

region = "eu-central"
wait_s_max = 20.0
stop_s_max = 10.0
"""The consumer must stop within a few seconds of being told to."""
process_exit_s_max = 10.0
repo_root = Path(__file__).resolve().parents[2]


class Vhost(NamedTuple):
    name: str
    url: str


@pytest.fixture
def vhost() -> Iterator[Vhost]:
    name = f"corridor-test-xr-{uuid.uuid4().hex[:8]}"
    url = rabbit.ensure_vhost(name)
    rabbit.require_rabbitmq(url)
    yield Vhost(name, url)
    rabbit.delete_vhost(name)


def messages(prefix: str, count: int) -> list[tuple[str, bytes]]:
    return [(f"{prefix}-{i}", json.dumps({"id": f"{prefix}-{i}"}).encode())
            for i in range(count)]


def ids(sent: list[tuple[str, bytes]]) -> list[str]:
    return [message_id for message_id, _ in sent]


def body_id(body: bytes) -> str:
    message_id = json.loads(body)["id"]
    assert isinstance(message_id, str)
    return message_id


async def wait_until(condition: Callable[[], bool], what: str,
                     task: asyncio.Task[None] | None = None) -> None:
    """Polls condition; fails the test after wait_s_max, or when the consumer task ended."""
    deadline = asyncio.get_running_loop().time() + wait_s_max
    while not condition():
        if task is not None and task.done():
            await task
            pytest.fail(f"the consumer stopped before: {what}")
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {wait_s_max} s: {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def consuming(consumer: XrConsumer) -> AsyncIterator[asyncio.Task[None]]:
    """Runs the consumer for the body of the with block, then stops it (bounded)."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_s_max)


async def test_consumer_gets_published_messages_in_order_once(vhost: Vhost) -> None:
    publisher = XrPublisher({region: vhost.url})
    queued, live = messages("queued", 30), messages("live", 10)
    got: list[str] = []

    async def handle(body: bytes) -> None:
        got.append(body_id(body))

    consumer = XrConsumer(vhost.url, handle, prefetch=7)
    try:
        publisher.publish(region, queued)
        async with consuming(consumer) as task:
            await wait_until(lambda: consumer.handled == 30, "30 queued messages handled", task)
            await asyncio.to_thread(publisher.publish, region, live)
            await wait_until(lambda: consumer.handled == 40, "10 more handled", task)
    finally:
        publisher.close()
    assert got == ids(queued) + ids(live)
    assert consumer.handled == 40
    assert queue_depth(vhost.url) == 0


async def test_each_sending_region_has_a_queue_of_its_own(vhost: Vhost) -> None:
    """A message that keeps failing holds up only its sender's queue: another sender's
    messages reach the handler meanwhile."""
    publisher = XrPublisher({region: vhost.url})
    stuck, free = queue_from("uk-south"), queue_from("us-east")
    assert (stuck, free) == ("corridor.xr.from.uk-south", "corridor.xr.from.us-east")
    got: list[str] = []

    async def refuse(body: bytes) -> None:
        raise RuntimeError("cannot apply")

    async def handle(body: bytes) -> None:
        got.append(body_id(body))

    failing = XrConsumer(vhost.url, refuse, queue=stuck, retry_delay_s=0.1)
    working = XrConsumer(vhost.url, handle, queue=free)
    try:
        publisher.publish(region, messages("uk", 2), stuck)
        publisher.publish(region, messages("us", 3), free)
        assert queue_depth(vhost.url) == 0, "nothing went to the shared queue"
        async with consuming(failing), consuming(working) as task:
            await wait_until(lambda: working.handled == 3, "the other sender's messages", task)
        assert got == ids(messages("us", 3))
        assert failing.handled == 0
        assert queue_depth(vhost.url, stuck) == 2, "the refused messages wait in their queue"
    finally:
        publisher.close()


def test_publish_returns_once_the_broker_has_the_messages(vhost: Vhost) -> None:
    publisher = XrPublisher({region: vhost.url})
    sent = messages("m", 5)
    assert queue_depth(vhost.url) == 0  # no queue yet
    try:
        publisher.publish(region, sent)
        assert queue_depth(vhost.url) == 5  # confirmed, so already queued: no wait needed
    finally:
        publisher.close()
    listed = rabbit.rabbitmqctl("list_queues", "-s", "-p", vhost.name, "name", "durable")
    assert listed.stdout.split() == [queue_name, "true"]
    with rabbit.connect(vhost.url) as conn:
        channel = conn.channel()
        for message_id, body in sent:
            method, properties, got = channel.basic_get(queue_name, auto_ack=False)
            assert (properties.message_id, got) == (message_id, body)
            assert properties.delivery_mode == pika.DeliveryMode.Persistent.value
            assert properties.content_type == "application/json"
            assert not method.redelivered


async def test_failed_handler_gets_the_message_again_before_later_ones(vhost: Vhost) -> None:
    publisher = XrPublisher({region: vhost.url})
    sent = messages("m", 10)
    attempts: Counter[str] = Counter()
    applied: list[str] = []

    async def handle(body: bytes) -> None:
        message_id = body_id(body)
        attempts[message_id] += 1
        if message_id == "m-3" and attempts[message_id] == 1:
            raise RuntimeError("database unavailable")
        applied.append(message_id)

    consumer = XrConsumer(vhost.url, handle, prefetch=5, retry_delay_s=0.1)
    try:
        publisher.publish(region, sent)
        async with consuming(consumer) as task:
            await wait_until(lambda: consumer.handled == 10, "10 messages acked", task)
    finally:
        publisher.close()
    assert applied == ids(sent)  # m-3 retried in its place, though m-4..m-7 were prefetched
    assert attempts == Counter({**dict.fromkeys(ids(sent), 1), "m-3": 2})
    assert queue_depth(vhost.url) == 0


async def test_stopped_consumer_returns_what_it_had_prefetched(vhost: Vhost) -> None:
    publisher = XrPublisher({region: vhost.url})
    sent = messages("m", 10)
    first: list[str] = []
    stop = asyncio.Event()

    async def handle_three(body: bytes) -> None:
        first.append(body_id(body))
        if len(first) == 3:
            stop.set()

    try:
        publisher.publish(region, sent)
    finally:
        publisher.close()
    consumer = XrConsumer(vhost.url, handle_three, prefetch=10)
    await asyncio.wait_for(consumer.run(stop), wait_s_max)
    assert first == ids(sent)[:3]
    assert consumer.handled == 3
    assert queue_depth(vhost.url) == 7  # the other 7 were prefetched, never acked, requeued

    rest: list[str] = []

    async def handle(body: bytes) -> None:
        rest.append(body_id(body))

    second = XrConsumer(vhost.url, handle)
    async with consuming(second) as task:
        await wait_until(lambda: second.handled == 7, "the 7 requeued messages handled", task)
    assert rest == ids(sent)[3:]


stuck_consumer_script = """
import asyncio, sys
from workers.xr_transport import XrConsumer

url, started_path, stuck_at = sys.argv[1], sys.argv[2], int(sys.argv[3])


async def main() -> None:
    started = 0

    async def handle(body: bytes) -> None:
        nonlocal started
        started += 1
        with open(started_path, "ab") as started_file:
            started_file.write(body + b"\\n")
        if started == stuck_at:
            await asyncio.Event().wait()

    await XrConsumer(url, handle, prefetch=5).run(asyncio.Event())

asyncio.run(main())
"""
"""A consumer process whose handler hangs in its stuck_at-th message, to be killed there."""


async def test_messages_of_a_killed_consumer_go_to_the_next(vhost: Vhost,
                                                            tmp_path: Path) -> None:
    publisher = XrPublisher({region: vhost.url})
    sent = messages("m", 12)
    try:
        publisher.publish(region, sent)
    finally:
        publisher.close()
    started_path = tmp_path / "started"
    started_path.touch()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", stuck_consumer_script, vhost.url, str(started_path), "4",
        cwd=repo_root, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_until(lambda: len(started_path.read_bytes().splitlines()) == 4
                         or process.returncode is not None,
                         "the consumer process in its 4th message")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        _, stderr = await asyncio.wait_for(process.communicate(), process_exit_s_max)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    started = [body_id(line) for line in started_path.read_bytes().splitlines()]
    assert started == ids(sent)[:4]

    # The broker requeues the killed consumer's unacked messages when it drops its consumer;
    # a consumer that subscribed before that would get m-8.. first.
    await wait_until(lambda: (rabbit.queue_state(queue_name, vhost.url) or (0, 1))[1] == 0,
                     "RabbitMQ to drop the killed consumer")
    got: list[str] = []

    async def handle(body: bytes) -> None:
        got.append(body_id(body))

    consumer = XrConsumer(vhost.url, handle)
    async with consuming(consumer) as task:
        await wait_until(lambda: set(ids(sent)[3:]) <= set(got), "m-3..m-11 handled", task)
    # m-0..m-2 were acked before the kill; m-3 (in the hung handler) and the prefetched
    # m-4..m-7 were not, and come again. An ack still in flight at the kill may add one before.
    assert got[-9:] == ids(sent)[3:]
    assert set(got[:-9]) <= set(ids(sent)[:3])
    assert queue_depth(vhost.url) == 0


async def test_long_handler_keeps_its_connection(vhost: Vhost) -> None:
    """A handler running past the heartbeat timeout: the consumer thread keeps sending
    heartbeats meanwhile, so the broker keeps the connection and the ack goes through."""
    url = f"{vhost.url}?heartbeat=1"
    publisher = XrPublisher({region: url})
    attempts: list[str] = []

    async def slow_handle(body: bytes) -> None:
        attempts.append(body_id(body))
        await asyncio.sleep(5)  # RabbitMQ drops a silent client after 2 heartbeats (2 s here)

    consumer = XrConsumer(url, slow_handle, reconnect_delay_s=0.1)
    try:
        publisher.publish(region, messages("m", 1))
        async with consuming(consumer) as task:
            await wait_until(lambda: consumer.handled == 1, "the message acked", task)
    finally:
        publisher.close()
    assert attempts == ["m-0"]  # a lost connection would have redelivered it


async def test_publisher_and_consumer_outlive_a_broker_restart(vhost: Vhost) -> None:
    publisher = XrPublisher({region: vhost.url}, confirm_timeout_s=5.0)
    before, during, after = messages("before", 6), messages("during", 1), messages("after", 4)
    gate = asyncio.Event()
    entered: list[str] = []
    applied: list[str] = []

    async def handle(body: bytes) -> None:
        entered.append(body_id(body))
        await gate.wait()
        applied.append(body_id(body))

    def outage() -> None:
        with rabbit.restarted_broker(), pytest.raises(XrPublishError):
            publisher.publish(region, during)

    consumer = XrConsumer(vhost.url, handle, prefetch=2, reconnect_delay_s=0.2)
    try:
        async with consuming(consumer) as task:
            await asyncio.to_thread(publisher.publish, region, before)
            # before-0 is in the handler, before-1 prefetched, before-2..5 still queued.
            await wait_until(lambda: entered == ["before-0"], "before-0 in the handler", task)
            await asyncio.to_thread(outage)
            gate.set()
            await asyncio.to_thread(publisher.publish, region, after)
            await wait_until(lambda: consumer.handled == 10, "all 10 messages acked", task)
    finally:
        publisher.close()
    # before-0's ack died with the connection, so it came again, like everything unacked.
    assert applied == ["before-0", *ids(before), *ids(after)]
    assert queue_depth(vhost.url) == 0


class FreezableProxy:
    """A TCP proxy to RabbitMQ that can stop passing the broker's bytes on (frozen), as a
    stalled broker or a half-broken network would: the client hears nothing back."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.upstream_url = upstream_url
        self.frozen = False
        self._writers: list[asyncio.StreamWriter] = []
        self._connections: set[asyncio.Task[object]] = set()

    async def __aenter__(self) -> str:
        """Starts listening; the AMQP URL through the proxy."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self.upstream_url)
        netloc = f"{parts.netloc.rpartition('@')[0]}@127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def __aexit__(self, *_exc: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        if self._connections:
            await asyncio.wait(self._connections, timeout=stop_s_max)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer, lambda: False),
                             self._pipe(up_reader, writer, lambda: self.frozen),
                             return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    frozen: Callable[[], bool]) -> None:
        try:
            while data := await reader.read(65_536):
                if not frozen():
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.close()


async def test_publish_without_a_confirm_in_time_raises(vhost: Vhost) -> None:
    proxy = FreezableProxy(vhost.url)
    async with proxy as url:
        # Long enough for the confirms of "a" and "c" on a busy disk (persistent messages are
        # confirmed after an fsync); only the frozen "b" runs into it.
        publisher = XrPublisher({region: url}, confirm_timeout_s=5.0)
        try:
            await asyncio.to_thread(publisher.publish, region, messages("a", 1))
            proxy.frozen = True
            with pytest.raises(XrPublishError, match=r"no publisher confirm within 5\.0 s"):
                await asyncio.wait_for(
                    asyncio.to_thread(publisher.publish, region, messages("b", 1)), wait_s_max)
            proxy.frozen = False
            await asyncio.to_thread(publisher.publish, region, messages("c", 1))  # reconnects
        finally:
            # In a thread: closing waits for the broker's answer, which comes through this loop.
            await asyncio.to_thread(publisher.close)
    assert queue_depth(vhost.url) == 3  # b reached the queue, unconfirmed: the caller resends


def test_unknown_destination_raises() -> None:
    publisher = XrPublisher({region: rabbit.amqp_url()})
    with pytest.raises(XrPublishError, match="no AMQP URL for destination region 'mars'"):
        publisher.publish("mars", messages("m", 1))


@pytest.mark.parametrize(("base_url", "vhost_name", "expected"), [
    ("amqp://guest:guest@127.0.0.1:5672/%2F", "/", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    ("amqp://guest:guest@127.0.0.1:5672/%2F", "corridor-eu-central",
     "amqp://guest:guest@127.0.0.1:5672/corridor-eu-central"),
    ("amqps://corridor:p%40ss@mq.example:5671/old?heartbeat=30", "corridor-us-east",
     "amqps://corridor:p%40ss@mq.example:5671/corridor-us-east?heartbeat=30"),
    ("amqp://mq.example", "a/b", "amqp://mq.example/a%2Fb"),
])
def test_region_amqp_url(base_url: str, vhost_name: str, expected: str) -> None:
    url = region_amqp_url(base_url, vhost_name)
    assert url == expected
    assert pika.URLParameters(url).virtual_host == vhost_name


def test_region_amqp_url_keeps_credentials_for_pika() -> None:
    params = pika.URLParameters(region_amqp_url(
        "amqp://corridor:p%40ss@mq.example:5671/%2F?heartbeat=30", "corridor-eu-central"))
    assert (params.credentials.username, params.credentials.password) == ("corridor", "p@ss")
    assert (params.host, params.port, params.heartbeat) == ("mq.example", 5671, 30)


def test_region_amqp_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not an AMQP URL"):
        region_amqp_url("http://mq.example/", "corridor-eu-central")
