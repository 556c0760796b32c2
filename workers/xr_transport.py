"""RabbitMQ transport for cross-region settlement messages: confirmed publish, ack-after-apply.

Each region has a vhost of its own (``amqp_vhost`` in regions.yaml). A region's relay publishes
the messages for region D into D's vhost, queue ``corridor.xr``, and returns only once the broker
confirmed them; D's consumer hands each body to a handler (one database transaction) and acks
only after the handler returned. A message is therefore on disk in the broker before its sender
marks it sent, and it leaves the queue only after it was applied: a consumer that dies, or a
broker that restarts, makes the broker deliver it again. Duplicates and their order are the
handler's business (it deduplicates by sequence number).

The queue is durable, the messages persistent, the consumer's prefetch bounded; every wait has a
timeout, and both sides reconnect after a lost connection (the publisher on its next call, the
consumer by itself until told to stop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import pika
import pika.exceptions

queue_name = "corridor.xr"


def queue_from(origin: str) -> str:
    """The queue of a region's vhost that holds what ``origin`` sent it: one per sending region,
    so a message that cannot be applied holds up only its own stream."""
    return f"{queue_name}.from.{origin}"

heartbeat_s = 30
"""AMQP heartbeat unless the URL sets one: a dead peer is noticed within about twice this."""
connect_timeout_s = 5.0
stack_timeout_s = 10.0
"""Bound on opening a connection (TCP, TLS and the AMQP handshake)."""
blocked_timeout_s = 30.0
"""A connection the broker blocks (memory or disk alarm) for longer than this is dropped."""
poll_s = 0.5
"""How often the consumer thread looks at its stop flag and services its connection."""
handle_timeout_s = 300.0
"""A handler still running after this is cancelled and its message requeued; kept well under
RabbitMQ's delivery acknowledgement timeout (consumer_timeout, 30 min by default)."""
stop_drain_s_max = 5.0
"""After stop, how long a handler in progress may still finish before it is cancelled."""
prefetch_max = 1_000
publish_messages_max = 10_000

_log = logging.getLogger(__name__)

_lost = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError, OSError)
"""What a lost or refused connection or a channel the broker closed raises in pika."""


def region_amqp_url(base_url: str, vhost: str) -> str:
    """base_url with its vhost path replaced by vhost (percent-encoded, e.g. '/' -> %2F); keeps
    credentials, host, port and query (e.g. heartbeat=30)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ValueError(f"not an AMQP URL (amqp:// or amqps://): {parts.scheme}://...")
    if not vhost:
        raise ValueError("empty vhost")
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


class XrPublishError(Exception):
    """The broker did not confirm every message: the caller keeps them and publishes again."""


class XrPublisher:
    """Publishes to each destination region's vhost over one cached connection per region.

    Calls are serialised by a lock (a pika connection is not thread-safe; the relay calls from
    worker threads). A connection the broker dropped while idle, for example after missed
    heartbeats between calls, is noticed before publishing and replaced without an error.
    """

    def __init__(self, urls: Mapping[str, str], *, confirm_timeout_s: float = 10.0) -> None:
        assert confirm_timeout_s > 0
        self._urls = dict(urls)
        self._confirm_timeout_s = confirm_timeout_s
        self._channels: dict[str, Any] = {}
        self._declared: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def publish(self, destination: str, messages: Sequence[tuple[str, bytes]],
                queue: str = queue_name) -> None:
        """Publish (message_id, body) pairs in order; returns once the broker confirmed each
        (pika waits for each confirm in turn, for at most confirm_timeout_s).

        Raises XrPublishError otherwise; some of the messages may then have been queued, so the
        caller publishes all of them again (the receiving handler drops duplicates).
        """
        assert len(messages) <= publish_messages_max
        url = self._urls.get(destination)
        if url is None:
            raise XrPublishError(f"no AMQP URL for destination region {destination!r}")
        if not messages:
            return
        with self._lock:
            channel = self._channel(destination, url)
            try:
                if queue not in self._declared.setdefault(destination, set()):
                    _declare(channel, queue)
                    self._declared[destination].add(queue)
                for message_id, body in messages:
                    with _confirm_deadline(channel.connection, self._confirm_timeout_s):
                        channel.basic_publish(exchange="", routing_key=queue, body=body,
                                              properties=_properties(message_id),
                                              mandatory=True)
            except _lost as exc:
                self._drop(destination)
                raise XrPublishError(f"publishing to region {destination}: {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            for destination in list(self._channels):
                self._drop(destination)

    def _channel(self, destination: str, url: str) -> Any:
        channel = self._channels.get(destination)
        if channel is not None and not _alive(channel):
            _log.info("xr publisher: connection to region %s was lost; reconnecting", destination)
            self._drop(destination)
            channel = None
        if channel is None:
            try:
                channel = _open_publisher_channel(url)
            except _lost as exc:
                raise XrPublishError(f"connecting to region {destination}: {exc!r}") from exc
            self._channels[destination] = channel
        return channel

    def _drop(self, destination: str) -> None:
        self._declared.pop(destination, None)
        channel = self._channels.pop(destination, None)
        if channel is not None:
            _close_quietly(channel.connection)


def _properties(message_id: str) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                message_id=message_id, content_type="application/json")


def _open_publisher_channel(url: str) -> Any:
    connection = pika.BlockingConnection(_parameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
    except BaseException:
        _close_quietly(connection)
        raise
    return channel


def _alive(channel: Any) -> bool:
    """Reads what the broker sent since the last call, which shows a connection it closed."""
    try:
        channel.connection.process_data_events(time_limit=0)
    except _lost:
        return False
    return bool(channel.is_open)


@contextlib.contextmanager
def _confirm_deadline(connection: Any, timeout_s: float) -> Iterator[None]:
    """Tears the connection down if the broker has not confirmed within timeout_s.

    pika's BlockingChannel waits for a confirm without a time limit, and the timers of
    BlockingConnection's public API fire only inside process_data_events, never during that
    wait; so this schedules on the I/O loop beneath it (pika 1.x's ``_impl``). Terminating the
    stream makes the waiting basic_publish raise.
    """
    impl = connection._impl

    def expire() -> None:
        if impl.is_open:
            impl._terminate_stream(pika.exceptions.AMQPConnectionError(
                f"no publisher confirm within {timeout_s} s"))

    timer = impl._adapter_call_later(timeout_s, expire)
    try:
        yield
    finally:
        impl._adapter_remove_timeout(timer)


class XrConsumer:
    """Consumes ``corridor.xr`` on one vhost, acking each message after its handler returned.

    pika's BlockingConnection runs in a worker thread; each body is handed to the handler on the
    caller's event loop, one at a time and in delivery order. While a handler runs, the thread
    keeps servicing the connection (heartbeats), so a handler's duration is bounded only by
    ``handle_timeout_s``. A handler that raises has its message requeued after ``retry_delay_s``
    together with every message prefetched after it, so the retry comes before them.
    """

    def __init__(self, url: str, handle: Callable[[bytes], Awaitable[None]], *,
                 prefetch: int = 50, retry_delay_s: float = 1.0,
                 reconnect_delay_s: float = 1.0, queue: str = queue_name) -> None:
        assert 1 <= prefetch <= prefetch_max
        assert retry_delay_s >= 0
        assert reconnect_delay_s >= 0
        self.url = url
        self.queue = queue
        self.prefetch = prefetch
        self.retry_delay_s = retry_delay_s
        self.reconnect_delay_s = reconnect_delay_s
        self._handle = handle
        self._handled = 0

    @property
    def handled(self) -> int:
        """Messages acked so far."""
        return self._handled

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until stop is set (or this task is cancelled); reconnects after losses."""
        loop = asyncio.get_running_loop()
        halt = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self._consume, _Loop(loop, stop), halt))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({worker, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            stopped.cancel()
            # The thread hands work to this loop until it ends, so it is awaited here.
            await worker

    def _consume(self, loop: _Loop, halt: threading.Event) -> None:
        while not halt.is_set():
            try:
                self._session(loop, halt)
            except _lost as exc:
                _log.warning("xr consumer: connection to %s lost (%r); reconnecting in %.1f s",
                             safe_url(self.url), exc, self.reconnect_delay_s)
                halt.wait(self.reconnect_delay_s)

    def _session(self, loop: _Loop, halt: threading.Event) -> None:
        connection = pika.BlockingConnection(_parameters(self.url))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.prefetch)
            _declare(channel, self.queue)
            _log.info("xr consumer: consuming %s on %s", self.queue, safe_url(self.url))
            while not halt.is_set():
                self._consume_until_failure(loop, halt, channel)
        finally:
            _close_quietly(connection)

    def _consume_until_failure(self, loop: _Loop, halt: threading.Event,
                               channel: Any) -> None:
        """Returns on halt, after a failed handler, or when the broker cancelled the consumer;
        on the first two it cancels the consumer, which requeues what it had prefetched."""
        for method, properties, body in channel.consume(self.queue, inactivity_timeout=poll_s):
            if halt.is_set() or (method is not None and not self._deliver(
                    loop, halt, channel, method.delivery_tag, properties.message_id, body)):
                channel.cancel()
                return

    def _deliver(self, loop: _Loop, halt: threading.Event, channel: Any,
                 delivery_tag: int, message_id: str | None, body: bytes) -> bool:
        """Runs the handler on one delivery and acks it; False if the handler failed (the
        message is then nacked back onto the queue)."""
        future = asyncio.run_coroutine_threadsafe(_call(self._handle, body, loop.stop, halt),
                                                  loop.loop)
        error = _await_handler(future, halt, channel.connection)
        if error is None:
            channel.basic_ack(delivery_tag)
            self._handled += 1
            return True
        _log.error("xr consumer: handler failed on message %s (delivery %d); requeueing it in "
                   "%.1f s", message_id, delivery_tag, self.retry_delay_s, exc_info=error)
        _service(channel.connection, self.retry_delay_s, halt)
        channel.basic_nack(delivery_tag, requeue=True)
        return False


class _Loop(NamedTuple):
    """The consumer's event loop, where handlers run, and the stop event they may set."""

    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event


async def _call(handle: Callable[[bytes], Awaitable[None]], body: bytes, stop: asyncio.Event,
                halt: threading.Event) -> None:
    try:
        await handle(body)
    finally:
        # A handler that set stop is the last one started: the thread must see the halt
        # before it takes the next prefetched delivery, not when run() next wakes.
        if stop.is_set():
            halt.set()


def _await_handler(future: concurrent.futures.Future[None], halt: threading.Event,
                   connection: Any) -> BaseException | None:
    """Waits for the handler while servicing the connection; returns its error (None if it
    returned). If the connection was lost meanwhile, raises that once the handler has ended,
    so the same message is never handled twice at once here."""
    deadline = time.monotonic() + handle_timeout_s
    draining = False
    lost: BaseException | None = None
    while not concurrent.futures.wait([future], timeout=poll_s).done:
        if halt.is_set() and not draining:
            draining = True
            deadline = min(deadline, time.monotonic() + stop_drain_s_max)
        if time.monotonic() >= deadline:
            future.cancel()
            break
        if lost is None:
            try:
                connection.process_data_events(time_limit=0)
            except _lost as exc:
                lost = exc
    if lost is not None:
        raise lost
    if future.cancelled():
        return TimeoutError(f"handler cancelled: still running after "
                            f"{'stop' if draining else f'{handle_timeout_s} s'}")
    return future.exception()


def _service(connection: Any, duration_s: float, halt: threading.Event) -> None:
    """Like time.sleep, but keeps the connection serviced, and ends early on halt."""
    deadline = time.monotonic() + duration_s
    while not halt.is_set() and (left_s := deadline - time.monotonic()) > 0:
        connection.process_data_events(time_limit=min(left_s, poll_s))


def queue_depth(url: str, queue: str = queue_name) -> int:
    """Messages ready in the queue on url (passive declare; 0 if it does not exist yet)."""
    connection = pika.BlockingConnection(_parameters(url))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            return 0
        return int(ok.method.message_count)
    finally:
        _close_quietly(connection)


def _declare(channel: Any, queue: str) -> None:
    """Publisher and consumer declare the queue alike: a declare with other arguments fails."""
    channel.queue_declare(queue, durable=True)


_bounds: dict[str, int | float] = {"heartbeat": heartbeat_s, "socket_timeout": connect_timeout_s,
                             "stack_timeout": stack_timeout_s,
                             "blocked_connection_timeout": blocked_timeout_s}


def _parameters(url: str) -> pika.URLParameters:
    """The URL's connection parameters, with this module's bounds where the URL sets none."""
    params = pika.URLParameters(url)
    given = parse_qs(urlsplit(url).query)
    for name, value in _bounds.items():
        if name not in given:
            setattr(params, name, value)
    return params


def _close_quietly(connection: Any) -> None:
    if connection.is_open:
        try:
            connection.close()
        except _lost as exc:
            _log.debug("closing an AMQP connection: %r", exc)


def safe_url(url: str) -> str:
    """The URL without its credentials, for logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))
