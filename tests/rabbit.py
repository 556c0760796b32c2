"""The RabbitMQ the worker tests use: ``CORRIDOR_TEST_AMQP_URL``, else the local default.

Tests that need RabbitMQ fail (never skip) when it does not answer, saying what to do.
"""

from __future__ import annotations

import os

import pika
import pika.exceptions
import pytest

amqp_url_local = "amqp://guest:guest@127.0.0.1:5672/%2F"
connect_timeout_s = 3.0


def amqp_url() -> str:
    return os.environ.get("CORRIDOR_TEST_AMQP_URL") or amqp_url_local


def _parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.socket_timeout = connect_timeout_s
    params.stack_timeout = connect_timeout_s * 2
    params.blocked_connection_timeout = connect_timeout_s * 2
    params.connection_attempts = 1
    return params


def connect(url: str | None = None) -> pika.BlockingConnection:
    return pika.BlockingConnection(_parameters(url or amqp_url()))


def require_rabbitmq(url: str | None = None) -> str:
    """The AMQP URL, after checking that RabbitMQ answers there; fails the test if not."""
    url = url or amqp_url()
    try:
        connect(url).close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        pytest.fail(
            f"RabbitMQ does not answer at {url} ({type(exc).__name__}: {exc}). "
            "Start it with `rabbitmq-server -detached` (local default "
            f"{amqp_url_local}), or set CORRIDOR_TEST_AMQP_URL to a RabbitMQ that answers.",
            pytrace=False)
    return url


def purge(queues: list[str], url: str | None = None) -> dict[str, int]:
    """Purge each queue that exists; returns how many messages each held."""
    purged: dict[str, int] = {}
    conn = connect(url)
    try:
        for name in queues:
            channel = conn.channel()
            try:
                result = channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:  # a queue nobody declared yet has nothing to purge
                    raise
                continue
            purged[name] = int(result.method.message_count)
            channel.close()
    finally:
        conn.close()
    return purged


def queue_state(name: str, url: str | None = None) -> tuple[int, int] | None:
    """(ready messages, consumers) of a queue, or None when it does not exist."""
    conn = connect(url)
    try:
        channel = conn.channel()
        try:
            ok = channel.queue_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            return None
        return int(ok.method.message_count), int(ok.method.consumer_count)
    finally:
        conn.close()
