"""The RabbitMQ the worker tests use: ``CORRIDOR_TEST_AMQP_URL``, else the local default.

Tests that need RabbitMQ fail (never skip) when it does not answer, saying what to do. Vhosts
and broker restarts go through ``rabbitmqctl`` on this machine, so they act on the local node
whatever host ``CORRIDOR_TEST_AMQP_URL`` names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import pytest

from workers.xr_transport import region_amqp_url

amqp_url_local = "amqp://guest:guest@127.0.0.1:5672/%2F"
connect_timeout_s = 3.0
rabbitmqctl_timeout_s = 60.0
restart_wait_s_max = 60.0


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


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs ``rabbitmqctl args``; raises RuntimeError if it is missing or fails."""
    path = shutil.which("rabbitmqctl")
    if path is None:
        raise RuntimeError("rabbitmqctl is not on PATH: these tests manage RabbitMQ vhosts and "
                           "restart the broker with it; install RabbitMQ's server tools "
                           "(e.g. apt-get install rabbitmq-server) or put them on PATH")
    done = subprocess.run([path, *args], capture_output=True, text=True,
                          timeout=rabbitmqctl_timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr.strip() or done.stdout.strip()}")
    return done


def ensure_vhost(name: str) -> str:
    """Creates the vhost (if missing) with full permissions for the test user; its AMQP URL."""
    base = amqp_url()
    user = unquote(urlsplit(base).username or "guest")
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return region_amqp_url(base, name)


def delete_vhost(name: str) -> None:
    """Deletes the vhost with its queues and messages; one already gone is fine."""
    try:
        rabbitmqctl("delete_vhost", name)
    except RuntimeError as exc:
        if "does not exist" not in str(exc):
            raise


@contextlib.contextmanager
def restarted_broker() -> Iterator[None]:
    """Stops the RabbitMQ application for the body of the with block, then starts it and waits
    until it accepts AMQP connections again (at most ``restart_wait_s_max``)."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        rabbitmqctl("start_app")
        wait_accepting(amqp_url(), restart_wait_s_max)


def restart_broker() -> None:
    with restarted_broker():
        pass


def wait_accepting(url: str, wait_s_max: float) -> None:
    """Returns once an AMQP connection to url opens; RuntimeError after wait_s_max."""
    deadline = time.monotonic() + wait_s_max
    while True:
        try:
            connect(url).close()
            return
        except (pika.exceptions.AMQPError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"RabbitMQ at {url} did not accept connections within "
                                   f"{wait_s_max} s after start_app: {exc!r}") from exc
            time.sleep(0.2)
