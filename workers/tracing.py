"""Traces across dramatiq: the sender's trace context rides in the message's options, and the
worker processes the message in a span that continues it.

The span is made current in the worker thread before the actor runs; an async actor's
coroutine starts from a copy of that thread's context (``asyncio.run_coroutine_threadsafe``
schedules it with the caller's context), so the span is current inside it too.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from regions import telemetry

option = "traceparent"


class TraceMiddleware(dramatiq.Middleware):
    def __init__(self) -> None:
        self._open = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any],
                       delay: int) -> None:
        carried = telemetry.current_context()
        if carried and option not in message.options:
            message.options[option] = carried

    def before_process_message(self, broker: dramatiq.Broker,
                               message: MessageProxy) -> None:
        parent = telemetry.context_of(message.options.get(option))
        span = telemetry.tracer.start_span(
            f"dramatiq {message.actor_name}", context=parent, kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "rabbitmq",
                        "messaging.destination.name": message.queue_name,
                        "messaging.message.id": message.message_id})
        token = otel_context.attach(trace.set_span_in_context(span))
        self._open.current = (span, token)

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy,
                              *, result: Any = None, exception: BaseException | None = None
                              ) -> None:
        current = getattr(self._open, "current", None)
        if current is None:
            return
        span, token = current
        self._open.current = None
        if exception is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        otel_context.detach(token)

    def after_skip_message(self, broker: dramatiq.Broker,
                           message: MessageProxy) -> None:
        self.after_process_message(broker, message)
