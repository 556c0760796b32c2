"""The telemetry setup's choices: samplers, exporters, JSON log lines with trace ids."""

from __future__ import annotations

import json
import logging
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased

from regions import telemetry


def test_production_samples_a_tenth_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    sampler = telemetry._sampler("production")
    assert isinstance(sampler, ParentBased)
    assert "0.1" in sampler.get_description()
    assert "AlwaysOnSampler" in telemetry._sampler("development").get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert telemetry._sampler("production") is None  # the SDK reads the variable itself


def test_exporters_by_name() -> None:
    assert telemetry._span_exporter("none") is None
    assert isinstance(telemetry._span_exporter("console"), ConsoleSpanExporter)
    assert type(telemetry._span_exporter("otlp")).__name__ == "OTLPSpanExporter"
    assert telemetry._metric_readers("none") == []
    with pytest.raises(ValueError, match="otlp, console, none"):
        telemetry._span_exporter("jaeger")
    with pytest.raises(ValueError, match="otlp, console, none"):
        telemetry._metric_readers("prometheus")


def test_json_log_lines_carry_the_trace() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("corridor.test", logging.INFO, __file__, 1, "paid %s", ("x",),
                               None)
    outside = json.loads(telemetry.JsonFormatter().format(record))
    assert outside["message"] == "paid x"
    assert "trace_id" not in outside
    with tracer.start_as_current_span("work") as span:
        inside = json.loads(telemetry.JsonFormatter().format(record))
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert inside["level"] == "INFO"
    assert inside["time"].endswith("Z")


def test_a_carried_context_round_trips() -> None:
    tracer = TracerProvider().get_tracer("test")
    assert telemetry.current_context() is None
    assert telemetry.context_of(None) is None
    with tracer.start_as_current_span("request") as span:
        carried = telemetry.current_context()
    assert carried is not None
    assert carried.split("-")[1] == format(span.get_span_context().trace_id, "032x")
    parent = telemetry.context_of(carried)
    assert parent is not None
    with tracer.start_as_current_span("worker", context=parent) as child:
        assert child.get_span_context().trace_id == span.get_span_context().trace_id


def test_gauges_report_their_latest_value_and_ages() -> None:
    telemetry.set_gauge("corridor.outbox.backlog", 3, region="test-region")
    telemetry.set_gauge("corridor.outbox.backlog", 5, region="test-region")
    telemetry.set_gauge_since("corridor.fx.rate_age", 0.0, source="test")
    backlog = {tuple(o.attributes.items()): o.value for o in
               telemetry._observer("corridor.outbox.backlog")(None)}  # type: ignore[arg-type]
    assert backlog[(("region", "test-region"),)] == 5
    [age] = [o for o in telemetry._observer("corridor.fx.rate_age")(None)  # type: ignore[arg-type]
             if o.attributes == {"source": "test"}]
    assert age.value > 1_700_000_000  # seconds since the epoch's start


def test_a_gauge_value_not_set_again_expires() -> None:
    """A relay that lost a region's lease stops setting its backlog: once the value is older
    than its gauge's expiry it is no longer reported, beside the new holder's fresh one."""
    telemetry.set_gauge("corridor.outbox.lag", 42.0, region="expiring-region")
    time.sleep(1.1)

    def reported(expires_s: float) -> list[float]:
        return [o.value for o in telemetry._observer("corridor.outbox.lag", expires_s)(
            None)  # type: ignore[arg-type]
            if o.attributes == {"region": "expiring-region"}]

    assert reported(3600.0) == [42.0]
    assert reported(1.0) == []
    telemetry.set_gauge("corridor.outbox.lag", 7.0, region="expiring-region")
    assert reported(1.0) == [7.0]  # set again: fresh
