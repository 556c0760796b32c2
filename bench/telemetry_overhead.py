"""What Corridor's instrumentation costs one request, measured in one process.

The end-to-end A/B (``CORRIDOR_BENCH_TELEMETRY=on|off python -m bench create_transfer``) is
noisier on this machine than the effect it looks for, so this measures the instrumentation's
own work per ``createTransfer``: the operation span and its histogram, the outbox event's
trace context, and the spans of its SQL statements (eight, on SQLite in memory so the
database costs nothing), exported over OTLP to a local sink as in production:

    uv run python -m bench.telemetry_overhead [--requests N] [--statements 8]

Each mode runs in a fresh process (OpenTelemetry's providers are process-global): ``off`` (no
provider and no SQL hooks), ``sampled`` (the production default, one trace in ten) and
``all`` (every trace). It prints microseconds per request for each, and the difference to
``off``. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

modes = ("off", "sampled", "all")
requests_default = 20_000
statements_default = 8
api_cpu_ms_per_request = 7.3
"""The API's CPU per ``createTransfer`` without telemetry (README's create_transfer bench)."""


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def _measure(mode: str, requests: int, statements: int, sink_port: int) -> float:
    """µs of process CPU per request in ``mode``; run in a process of its own."""
    import os

    from sqlalchemy import create_engine, text

    if mode != "off":
        os.environ.update({
            "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"})
        if mode == "all":
            os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
        from regions import telemetry

        telemetry.setup("corridor-bench", "production")
    from opentelemetry.trace import SpanKind

    from regions import telemetry

    engine = create_engine("sqlite://")
    if mode != "off":
        telemetry.instrument_engine(engine)
    with engine.connect() as conn:
        query = text("SELECT 1")

        def one() -> None:
            with telemetry.tracer.start_as_current_span("graphql", kind=SpanKind.SERVER) as s:
                for _ in range(statements):
                    conn.execute(query)
                telemetry.current_context()
                s.update_name("graphql.mutation Move")
                telemetry.graphql_duration.record(1.0, {"operation": "Move",
                                                        "type": "mutation"})

        for _ in range(requests // 10):  # warm up
            one()
        started = time.process_time()
        for _ in range(requests):
            one()
        spent = time.process_time() - started
    if mode != "off":
        from opentelemetry import trace

        trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
    return spent / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.telemetry_overhead")
    p.add_argument("--requests", type=int, default=requests_default)
    p.add_argument("--statements", type=int, default=statements_default)
    p.add_argument("--mode", choices=modes, help=argparse.SUPPRESS)
    p.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mode is not None:
        print(json.dumps(_measure(args.mode, args.requests, args.statements, args.sink_port)))
        return 0
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    found: dict[str, float] = {}
    try:
        for mode in modes:
            done = subprocess.run(
                [sys.executable, "-m", "bench.telemetry_overhead", "--mode", mode,
                 "--requests", str(args.requests), "--statements", str(args.statements),
                 "--sink-port", str(sink.server_port)],
                capture_output=True, text=True, timeout=600, check=True)
            found[mode] = float(done.stdout.strip().splitlines()[-1])
    finally:
        sink.shutdown()
    print(f"| mode | µs per request | added | share of {api_cpu_ms_per_request} ms API CPU |")
    print("| --- | ---: | ---: | ---: |")
    for mode in modes:
        added = found[mode] - found["off"]
        print(f"| {mode} | {found[mode]:.1f} | {added:+.1f} | "
              f"{added / (api_cpu_ms_per_request * 1000):+.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
