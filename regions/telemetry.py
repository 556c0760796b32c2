"""OpenTelemetry for every Corridor process: traces, metrics, and JSON logs with trace ids.

One trace follows a request across processes. The API opens one span per GraphQL operation
(not per field: that costs too much) and one per SQL statement. An event the request writes to
the outbox carries the request's W3C trace context (``outbox.trace_context``); the relay hands
it on with the event, and the worker that handles the event continues that trace, so a payout
reads API -> outbox -> RabbitMQ -> worker -> rail -> webhook as one trace. Other dramatiq
messages carry the sender's context in their options (``TraceMiddleware``).

Exporters follow OpenTelemetry's own variables: ``OTEL_TRACES_EXPORTER`` and
``OTEL_METRICS_EXPORTER`` (``otlp``, ``console`` or ``none``; default ``otlp`` in production,
``console`` in development, ``none`` in tests), and the OTLP exporter reads
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS`` and the rest itself.
``OTEL_SDK_DISABLED=true`` turns it all off.
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` add to the resource, which names the
service, the deployment environment and (``CORRIDOR_CLOUD_REGION``) the cloud region.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("corridor")
meter = metrics.get_meter("corridor")
_propagator = TraceContextTextMapPropagator()
statement_chars_max = 300
production_sample_ratio = 0.1
"""Traces kept in production unless ``OTEL_TRACES_SAMPLER`` says otherwise: tracing every
request cost 11% of the API's CPU in the createTransfer bench (every span exported over
OTLP); a tenth of them costs about a tenth of that."""
metric_export_interval_ms = 15_000

graphql_duration = meter.create_histogram(
    "corridor.graphql.duration", unit="ms",
    description="GraphQL operation latency, by operation name and type")
transfers_posted = meter.create_counter(
    "corridor.transfers.posted",
    description="Transfers posted (single and in batches), by region; counted by the relay "
                "from committed events")
events_published = meter.create_counter(
    "corridor.events.published",
    description="Outbox events published by the relay, by region and topic (payout.* topics "
                "are payout state changes)")
transfer_group_size = meter.create_histogram(
    "corridor.transfer_group.size", unit="{request}",
    description="createTransfer requests committed together in one group, by region")
txn_retries = meter.create_counter(
    "corridor.txn.retries", description="Transactions retried after a conflict, by SQLSTATE")

_Attributes = tuple[tuple[str, str], ...]
_gauges: dict[str, dict[_Attributes, tuple[float, float]]] = {}
"""Name -> attributes -> (value, monotonic time it was set)."""
_ages: dict[str, dict[_Attributes, float]] = {}
_gauges_lock = threading.Lock()


def set_gauge(name: str, value: float, **attributes: str) -> None:
    """The latest value of an observed gauge (outbox backlog, queue depth, breaks). A value not
    set again within its gauge's ``expires_s`` is no longer reported: a relay that lost a
    region's lease to another, or a worker that no longer reconciles, does not go on reporting
    its last value beside the fresh one of the process that took over."""
    with _gauges_lock:
        _gauges.setdefault(name, {})[tuple(sorted(attributes.items()))] = (
            value, time.monotonic())


def set_gauge_since(name: str, since_unix_s: float, **attributes: str) -> None:
    """A gauge observed as the seconds elapsed since ``since_unix_s`` (an age)."""
    with _gauges_lock:
        _ages.setdefault(name, {})[tuple(sorted(attributes.items()))] = since_unix_s


def _observer(name: str, expires_s: float | None = None
              ) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_: CallbackOptions) -> Iterable[Observation]:
        now, fresh_after = time.time(), time.monotonic() - (expires_s or float("inf"))
        with _gauges_lock:
            found = [(attrs, value) for attrs, (value, at) in _gauges.get(name, {}).items()
                     if at >= fresh_after]
            found += [(attrs, now - since) for attrs, since in _ages.get(name, {}).items()]
        return [Observation(v, dict(attrs)) for attrs, v in found]

    return observe


# Set every few seconds by whoever holds the lease (relay, settlement process); the breaks
# by whichever worker ran the last reconciliation, every 300 s.
gauge_expires_s = 60.0
breaks_expire_s = 900.0
for _name, _description, _unit, _expires_s in (
        ("corridor.outbox.backlog", "Unpublished outbox events, by region", "{event}",
         gauge_expires_s),
        ("corridor.outbox.lag", "Age of the oldest unpublished outbox event, by region", "s",
         gauge_expires_s),
        ("corridor.queue.depth", "Messages waiting in a RabbitMQ queue, by queue", "{message}",
         gauge_expires_s),
        ("corridor.fx.rate_age", "Seconds since the rates this worker last refreshed were "
                                 "published by their source", "s", None),
        ("corridor.settlement.breaks", "Reconciliation breaks, by region pair and currency",
         "{break}", breaks_expire_s),
        ("corridor.settlement.unapplied", "Settlement messages a region has received but not "
                                          "applied, by region and peer", "{message}",
         gauge_expires_s)):
    meter.create_observable_gauge(_name, callbacks=[_observer(_name, _expires_s)], unit=_unit,
                                  description=_description)


def current_context() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry across a process boundary."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


@contextmanager
def span(name: str, *, parent: str | None = None, kind: SpanKind = SpanKind.INTERNAL,
         attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A span, as a child of ``parent`` (a carried ``traceparent``) when given, else of the
    current span; an exception marks it failed and goes on."""
    with tracer.start_as_current_span(name, context=context_of(parent), kind=kind,
                                      attributes=attributes) as current:
        yield current


def instrument_engine(engine: Any) -> None:
    """One span per SQL statement on a SQLAlchemy engine (sync or async)."""
    from sqlalchemy import event

    sync = getattr(engine, "sync_engine", engine)
    system = "cockroachdb" if "cockroach" in sync.dialect.name else "postgresql"

    @event.listens_for(sync, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               executemany: bool) -> None:
        if not trace.get_current_span().is_recording():
            return  # outside any trace (pool pings, scheduler polls), or a trace not sampled
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        started = tracer.start_span(verb, kind=SpanKind.CLIENT, attributes={
            "db.system": system, "db.statement": statement[:statement_chars_max]})
        conn.info.setdefault("corridor.spans", []).append(started)

    def _end(conn: Any, failed: BaseException | None = None) -> None:
        spans = conn.info.get("corridor.spans")
        if spans:
            ended = spans.pop()
            if failed is not None:
                ended.set_status(Status(StatusCode.ERROR, type(failed).__name__))
            ended.end()

    @event.listens_for(sync, "after_cursor_execute")
    def _finish(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                executemany: bool) -> None:
        _end(conn)

    @event.listens_for(sync, "handle_error")
    def _failed(ctx: Any) -> None:
        if ctx.connection is not None:
            _end(ctx.connection, ctx.original_exception)


def setup(service: str, environment: str) -> None:
    """Install the tracer and meter providers once per process (a provider set before, such as
    a test's in-memory one, is kept)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return  # OpenTelemetry's own switch: no-op providers, nothing recorded
    default = {"production": "otlp", "development": "console"}.get(environment, "none")
    attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME", service),
                  "deployment.environment": environment}
    if os.environ.get("CORRIDOR_CLOUD_REGION"):
        attributes["cloud.region"] = os.environ["CORRIDOR_CLOUD_REGION"]
    resource = Resource.create(attributes)
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=resource, sampler=_sampler(environment))
        exporter = _span_exporter(os.environ.get("OTEL_TRACES_EXPORTER", default))
        if exporter is not None:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        readers = _metric_readers(os.environ.get("OTEL_METRICS_EXPORTER", default))
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def _sampler(environment: str) -> Any:
    """``OTEL_TRACES_SAMPLER`` when set; otherwise, in production, one trace in
    ``production_sample_ratio`` (a sampled request's downstream work stays in its trace, and
    an unsampled one costs almost nothing); elsewhere every trace."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG itself
    if environment == "production":
        return ParentBased(TraceIdRatioBased(production_sample_ratio))
    return ParentBased(ALWAYS_ON)


def _span_exporter(kind: str) -> Any:
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind == "none":
        return None
    raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r}: Corridor supports otlp, console, none")


def _metric_readers(kind: str) -> list[Any]:
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return [PeriodicExportingMetricReader(OTLPMetricExporter(),
                                              export_interval_millis=metric_export_interval_ms)]
    if kind == "console":
        return [PeriodicExportingMetricReader(ConsoleMetricExporter(),
                                              export_interval_millis=60_000)]
    if kind == "none":
        return []
    raise ValueError(f"OTEL_METRICS_EXPORTER={kind!r}: Corridor supports otlp, console, none")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line, with the trace and span ids of the current span."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            doc["trace_id"] = format(ctx.trace_id, "032x")
            doc["span_id"] = format(ctx.span_id, "016x")
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def json_logs() -> None:
    """Every log record as JSON on stderr (production)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
