"""The dramatiq broker: RabbitMQ with publisher confirms, or the in-process stub for dev.

Actors bind to the broker that is current when ``workers.actors`` is imported, so ``install``
sets the broker first and imports the actors after. dramatiq acknowledges a message only after
its actor returns, so a worker that dies mid-message leaves it to be redelivered; a message that
fails all its retries goes to the queue's dead-letter queue (``<queue>.XQ``).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage

from regions import telemetry
from workers.config import WorkerConfig
from workers.runtime import configure
from workers.tracing import TraceMiddleware


def make_broker(amqp_url: str | None) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if amqp_url is None:
        broker = StubBroker()
    else:
        broker = RabbitmqBroker(url=amqp_url, confirm_delivery=True)
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(TraceMiddleware())
    return broker


def install(config: WorkerConfig) -> tuple[dramatiq.Broker, ModuleType]:
    """Make the broker current, configure the runtime, and declare the actors on it."""
    telemetry.setup("corridor-worker", config.environment)
    if config.environment == "production":
        telemetry.json_logs()
    broker = make_broker(config.amqp_url)
    dramatiq.set_broker(broker)
    configure(config)
    loaded = sys.modules.get("workers.actors")
    actors = importlib.reload(loaded) if loaded else importlib.import_module("workers.actors")
    return broker, actors
