"""A tiny FX rates HTTP server for tests: 127.0.0.1, a free port, switchable at run time.

It serves the JSON format that ``workers.fx.providers.parse_json`` reads, stamped with the time
of each request (so the rates are always fresh), and can be switched between:

- ``ok()``: the rates given (default ``tests.fx_helpers.sample_rates``);
- ``error(status)``: an HTTP error (500 by default);
- ``slow(seconds)``: waits that long, then answers as ``ok`` would;
- ``together(count)``: holds each request until ``count`` have arrived, then answers as ``ok``;
- ``jumped(factor)``: every rate multiplied by ``factor``;
- ``body(bytes)``: any body (malformed JSON, an ECB XML file, an oversized response).

Bounded: each request waits at most ``slow_s_max`` seconds and wakes at once when the server
stops; the server stops itself after ``lifetime_s`` seconds, and the fixture stops it at
teardown. Every request is counted, and ``wait_for_requests`` waits (bounded) for a count.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fx_helpers import sample_rates

slow_s_max = 60.0
together_wait_s_max = 4.0  # below the provider's 5 s timeout
lifetime_s = 900.0
join_timeout_s = 5.0


class RatesServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self._mode = "ok"
        self._rates: dict[str, str] = dict(sample_rates)
        self._base = "EUR"
        self._as_of: datetime | None = None
        self._status = 500
        self._delay_s = 0.0
        self._together = 0
        self._factor = Decimal(1)
        self._body = b""
        self._content_type = "application/json"
        self.requests = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/rates"

    # switches

    def ok(self, rates: dict[str, str] | None = None, base: str = "EUR",
           as_of: datetime | None = None) -> None:
        """Serve ``rates`` (default: the sample rates), stamped ``as_of`` (default: now)."""
        with self._lock:
            self._mode, self._base, self._as_of = "ok", base, as_of
            self._rates = dict(rates or sample_rates)

    def error(self, status: int = 500) -> None:
        with self._lock:
            self._mode, self._status = "error", status

    def slow(self, seconds: float) -> None:
        assert 0 < seconds <= slow_s_max, seconds
        with self._lock:
            self._mode, self._delay_s = "slow", seconds

    def together(self, count: int) -> None:
        """Serve the rates, but hold each request until ``count`` have arrived (at most
        ``together_wait_s_max``): concurrent fetches are then surely concurrent."""
        assert count > 0, count
        with self._lock:
            self._mode, self._together = "together", self.requests + count

    def jumped(self, factor: str = "1.5") -> None:
        with self._lock:
            self._mode, self._factor = "jumped", Decimal(factor)

    def body(self, data: bytes, content_type: str = "application/json") -> None:
        with self._lock:
            self._mode, self._body, self._content_type = "body", data, content_type

    # observation

    def rates_body(self, rates: dict[str, str] | None = None) -> bytes:
        """The JSON document ``ok`` serves now for ``rates`` (default: the current rates)."""
        with self._lock:
            return self._json(rates or self._rates)

    def wait_for_requests(self, count: int, timeout_s: float) -> bool:
        """True once at least ``count`` requests arrived; False after ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.requests >= count, timeout=timeout_s)

    # lifecycle

    def start(self) -> RatesServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()  # wakes every request waiting in slow mode
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=join_timeout_s)

    # serving

    def _json(self, rates: dict[str, str]) -> bytes:
        as_of = self._as_of or datetime.now(UTC)
        return json.dumps({"base": self._base, "as_of": as_of.isoformat().replace("+00:00", "Z"),
                           "rates": rates}).encode()

    def _answer(self) -> tuple[int, str, bytes, float]:
        """(status, content type, body, seconds to wait first) for one request."""
        with self._changed:
            self.requests += 1
            self._changed.notify_all()
            mode = self._mode
            if mode == "error":
                return self._status, "text/plain", b"provider unavailable", 0.0
            if mode == "body":
                return 200, self._content_type, self._body, 0.0
            if mode == "jumped":
                rates = {k: str(Decimal(v) * self._factor) for k, v in self._rates.items()}
                return 200, "application/json", self._json(rates), 0.0
            if mode == "together":
                target = self._together
                self._changed.wait_for(lambda: self.requests >= target
                                       or self._stopped.is_set(), timeout=together_wait_s_max)
            delay = self._delay_s if mode == "slow" else 0.0
            return 200, "application/json", self._json(self._rates), delay

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, data, delay = server._answer()
                if delay and server._stopped.wait(min(delay, slow_s_max)):
                    return  # stopping: drop the connection
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) or was killed

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def start_rates_server() -> RatesServer:
    return RatesServer().start()


@pytest.fixture
def rates_server() -> Iterator[RatesServer]:
    server = start_rates_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_rates_server() -> Iterator[RatesServer]:
    server = start_rates_server()
    try:
        yield server
    finally:
        server.stop()
