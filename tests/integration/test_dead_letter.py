"""An actor that keeps failing ends, after its retries, in the queue's dead-letter queue."""

from __future__ import annotations

import time
import uuid

import dramatiq

from tests import rabbit
from workers.broker import make_broker

wait_s_max = 30


def test_failing_message_is_dead_lettered_after_its_retries() -> None:
    url = rabbit.require_rabbitmq()
    queue = f"corridor_test_dlq_{uuid.uuid4().hex[:8]}"
    broker = make_broker(url)
    attempts: list[int] = []

    def always_fails() -> None:
        attempts.append(1)
        raise RuntimeError("provider exploded")

    actor = dramatiq.actor(always_fails, broker=broker, queue_name=queue, max_retries=2,
                           min_backoff=10, max_backoff=50)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        actor.send()
        deadline = time.monotonic() + wait_s_max
        while time.monotonic() < deadline:
            state = rabbit.queue_state(f"{queue}.XQ", url)
            if state is not None and state[0] == 1:
                break
            time.sleep(0.2)
        assert rabbit.queue_state(f"{queue}.XQ", url) == (1, 0)
        assert len(attempts) == 3  # the first try and two retries, then the dead-letter queue
        assert rabbit.queue_state(queue, url)[0] == 0
    finally:
        worker.stop()
        with rabbit.connect(url) as conn:
            channel = conn.channel()
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel.queue_delete(name)
        broker.close()
