"""The FX refresh in-process (no broker), the stored rates, the providers, and staleness.

Every test starts from known rates (``load_rates`` replaces the global table), since the FX
rates are one global table that other tests also write.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from policies import catalog
from policies.fx import fx_parameters, refresh_jump_bps_max
from regions import fx_store
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests import rates_server as rates_server_module
from tests.conftest import corridor_env
from tests.e2e import conftest as e2e
from tests.fx_helpers import load_rates, sample_rates
from tests.rates_server import RatesServer
from workers.fx import providers
from workers.fx.providers import (
    EcbProvider,
    FixedProvider,
    JsonHttpProvider,
    ProviderError,
    RateProvider,
    RateSnapshot,
    ecb_sample,
    parse_ecb,
    provider_from_settings,
)
from workers.fx.refresh import RefreshReport
from workers.fx.refresh import refresh as fx_refresh


async def refresh(router: Router, provider: RateProvider, message_id: str) -> RefreshReport:
    """The refresh under the policies' defaults (no approved change in these tests)."""
    return await fx_refresh(router, provider, message_id, PolicyGate())

# Fixtures reused from elsewhere (registered in this module under their own names).
client = e2e.client
make_partner = e2e.make_partner
rates_server = rates_server_module.rates_server

subprocess_timeout_s = 120


@dataclass(frozen=True)
class StaticProvider:
    """A provider that returns the same snapshot on every fetch."""

    texts: dict[str, str]
    as_of: datetime
    name: str = "static"
    pivot: str = "EUR"

    def fetch(self) -> RateSnapshot:
        rates = {k: Fraction(Decimal(v)) for k, v in self.texts.items()}
        return RateSnapshot(self.pivot, rates, dict(self.texts), self.as_of, self.name)


@dataclass(frozen=True)
class BrokenProvider:
    error: str = "upstream answered 503"
    name: str = "broken"

    def fetch(self) -> RateSnapshot:
        raise ProviderError(f"{self.name}: {self.error}")


def _mid() -> str:
    return f"test-{uuid.uuid4()}"


async def _rows(router: Router, sql: str, **params: Any) -> list[Any]:
    async def body(conn: AsyncConnection) -> list[Any]:
        return list(await conn.execute(text(sql), params))

    return await router.run_control(body)


async def _stored(router: Router) -> dict[str, tuple[Decimal, datetime, str]]:
    rows = await _rows(router, "SELECT quote, rate, as_of, source FROM fx_rates "
                               "WHERE base = 'EUR'")
    return {r.quote: (r.rate, r.as_of, r.source) for r in rows}


async def _refreshes(router: Router, message_id: str) -> list[Any]:
    return await _rows(router, "SELECT status, source, rates_written, rates_held, error "
                               "FROM fx_refreshes WHERE message_id = :m", m=message_id)


async def _inbox_count(router: Router, message_id: str) -> int:
    rows = await _rows(router, "SELECT count(*) AS n FROM inbox "
                               "WHERE consumer = 'fx.refresh' AND message_id = :m", m=message_id)
    return int(rows[0].n)


def _scaled(rate: str, bps: int) -> str:
    """``rate`` moved by ``bps`` basis points (negative: down), as a plain decimal."""
    return format(Decimal(rate) * (10_000 + bps) / 10_000, "f")


# The refresh and the store


async def test_refresh_writes_every_rate_once_per_message(router: Router) -> None:
    await load_rates(router)
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    texts = {"USD": "1.0601", "GBP": "0.8350", "JPY": "163.02", "CHF": "0.9290"}
    provider = StaticProvider(texts, as_of, name=f"static-{uuid.uuid4().hex[:8]}")
    mid = _mid()

    report = await refresh(router, provider, mid)

    assert report == RefreshReport("ok", written=4, held=())
    stored = await _stored(router)
    for code, rate in texts.items():
        assert stored[code] == (Decimal(rate), as_of, provider.name), code
    assert stored["SGD"][2] == "test"  # not in this snapshot: untouched
    refreshes = await _refreshes(router, mid)
    assert [tuple(r) for r in refreshes] == [("ok", provider.name, 4, 0, None)]
    assert await _inbox_count(router, mid) == 1

    # The same message again (a redelivery), even with other rates: no effect at all.
    moved = StaticProvider({k: _scaled(v, 50) for k, v in texts.items()}, as_of, provider.name)
    again = await refresh(router, moved, mid)

    assert again == RefreshReport("duplicate")
    assert await _stored(router) == stored
    assert len(await _refreshes(router, mid)) == 1
    assert await _inbox_count(router, mid) == 1


async def test_failing_provider_is_recorded_and_last_good_rates_stay(router: Router) -> None:
    await load_rates(router)
    before = await _stored(router)
    mid = _mid()

    report = await refresh(router, BrokenProvider(), mid)

    assert report.status == "failed"
    assert report.error == "broken: upstream answered 503"
    assert [tuple(r) for r in await _refreshes(router, mid)] == [
        ("failed", "broken", 0, 0, "broken: upstream answered 503")]
    assert await _stored(router) == before
    assert await _inbox_count(router, mid) == 0  # not applied: a redelivery may still apply it

    long_mid = _mid()
    await refresh(router, BrokenProvider("x" * 5_000), long_mid)
    (row,) = await _refreshes(router, long_mid)
    assert row.status == "failed"
    assert len(row.error) == 500
    assert await _stored(router) == before


async def test_rate_that_jumps_too_far_is_held_and_the_rest_written(router: Router) -> None:
    await load_rates(router)
    jump = refresh_jump_bps_max(catalog.jurisdiction(c).defaults() for c in catalog.codes())
    before = await _stored(router)
    as_of = datetime.now(UTC).replace(microsecond=0)
    texts = {
        "USD": _scaled(sample_rates["USD"], jump + 1),       # just over: held
        "JPY": _scaled(sample_rates["JPY"], -(jump + 500)),  # down too far: held
        "CHF": _scaled(sample_rates["CHF"], jump),           # exactly the limit: written
        "GBP": _scaled(sample_rates["GBP"], jump // 2),      # well within: written
        "SEK": "11.5440",                                    # new currency: written
    }
    provider = StaticProvider(texts, as_of, name="jumpy")
    mid = _mid()

    report = await refresh(router, provider, mid)

    assert report == RefreshReport("ok", written=3, held=("JPY", "USD"))
    held = {r.quote: r for r in await _rows(
        router, "SELECT quote, rate, previous_rate, as_of, source FROM fx_rates_held "
                "WHERE base = 'EUR'")}
    assert set(held) == {"JPY", "USD"}
    for code in ("JPY", "USD"):
        assert held[code].rate == Decimal(texts[code])
        assert held[code].previous_rate == Decimal(sample_rates[code])
        assert (held[code].as_of, held[code].source) == (as_of, "jumpy")
    after = await _stored(router)
    assert after["USD"] == before["USD"]
    assert after["JPY"] == before["JPY"]
    for code in ("CHF", "GBP", "SEK"):
        assert after[code] == (Decimal(texts[code]), as_of, "jumpy")
    assert [tuple(r) for r in await _refreshes(router, mid)] == [("ok", "jumpy", 3, 2, None)]


async def test_provider_changing_its_pivot_leaves_the_rates_readable(router: Router) -> None:
    """The store holds one pivot at a time; a snapshot on another pivot must not break reads.

    Either outcome keeps the platform quoting: the snapshot is refused (recorded as failed,
    last good rates kept) or it replaces the stored set. Mixing two pivots does not.
    """
    await load_rates(router)
    before = await _stored(router)
    texts = {"EUR": "0.9495", "GBP": "0.7901", "JPY": "153.98"}
    provider = StaticProvider(texts, datetime.now(UTC).replace(microsecond=0), "usd-feed",
                              pivot="USD")
    mid = _mid()
    try:
        report = await refresh(router, provider, mid)
        try:
            read = await router.run_control(fx_store.load_rates)
        except AssertionError as exc:
            pivots = await _rows(router, "SELECT DISTINCT base FROM fx_rates ORDER BY base")
            pytest.fail(f"refresh {report.status!r} left fx_rates on pivots "
                        f"{[p.base for p in pivots]}: reading the rates fails ({exc!r}), so "
                        "every fxRates and createFxQuote fails")
        assert read is not None
        if report.status == "ok":
            assert read.pivot == "USD"
            assert {k: r.rate for k, r in read.rates.items()} == {
                k: Fraction(Decimal(v)) for k, v in texts.items()}
        else:
            assert report.status == "failed"
            assert read.pivot == "EUR"
            assert await _stored(router) == before
    finally:
        await load_rates(router)  # the sample rates on EUR again, for the tests that follow


# Metrics and logs


_metrics_script = r"""
import asyncio, json, sys
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

from api.settings import from_env
from regions.router import Router
from workers.fx.providers import FixedProvider, ProviderError
from regions.policy_gate import PolicyGate
from workers.fx.refresh import refresh as fx_refresh


async def refresh(router, provider, message_id):
    return await fx_refresh(router, provider, message_id, PolicyGate())


class Broken:
    name = "broken"

    def fetch(self):
        raise ProviderError("broken: no answer")


async def main():
    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=1)
    texts = json.loads(sys.argv[1])
    jumped = {**texts, "USD": str(2 * float(texts["USD"]))}
    prefix = sys.argv[2]
    try:
        reports = [await refresh(router, FixedProvider(texts), prefix + "-ok"),
                   await refresh(router, FixedProvider(jumped), prefix + "-held"),
                   await refresh(router, Broken(), prefix + "-failed")]
    finally:
        await router.dispose()
    points = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    points.append({"name": m.name, "attributes": dict(p.attributes),
                                   "value": p.value})
    print(json.dumps({"reports": [r.status for r in reports], "points": points}))


asyncio.run(main())
"""


def _corridor_env(topo: Topology, db_urls: DatabaseUrls, **extra: str) -> dict[str, str]:
    """The environment of a ``corridor`` process on the test databases."""
    return corridor_env(topo, db_urls, **extra)


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=subprocess_timeout_s, check=False)


async def test_refresh_metrics_count_outcomes(router: Router, topo: Topology,
                                              db_urls: DatabaseUrls) -> None:
    """The counters are created at import, so the meter provider is set first, in a subprocess."""
    await load_rates(router)
    prefix = _mid()
    out = await asyncio.to_thread(_python, _corridor_env(topo, db_urls), "-c", _metrics_script,
                                  json.dumps(sample_rates), prefix)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reports"] == ["ok", "ok", "failed"]
    points = {(p["name"], tuple(sorted(p["attributes"].items()))): p["value"]
              for p in result["points"]}
    assert points[("corridor.fx.refreshes", (("source", "fixed"), ("status", "ok")))] == 2
    assert points[("corridor.fx.refreshes", (("source", "broken"), ("status", "failed")))] == 1
    assert points[("corridor.fx.rates_held", (("source", "fixed"),))] == 1
    assert [tuple(r)[:2] for r in await _refreshes(router, prefix + "-failed")] == [
        ("failed", "broken")]
    held = await _rows(router, "SELECT rate FROM fx_rates_held WHERE quote = 'USD'")
    assert [r.rate for r in held] == [Decimal(sample_rates["USD"]) * 2]


async def test_refresh_logs_ok_and_failed(router: Router, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    await load_rates(router)
    ok_mid, failed_mid = _mid(), _mid()
    with caplog.at_level(logging.INFO, logger="workers.fx.refresh"):
        await refresh(router, FixedProvider(dict(sample_rates)), ok_mid)
        await refresh(router, BrokenProvider(), failed_mid)
    records = [r for r in caplog.records if r.name == "workers.fx.refresh"]
    ok = [r for r in records if r.getMessage().startswith("fx refresh ok")]
    failed = [r for r in records if r.getMessage().startswith("fx refresh failed")]
    assert len(ok) == 1
    assert ok[0].levelno == logging.INFO
    assert f"message={ok_mid}" in ok[0].getMessage()
    assert f"written={len(sample_rates)}" in ok[0].getMessage()
    assert len(failed) == 1
    assert failed[0].levelno == logging.WARNING
    assert f"message={failed_mid}" in failed[0].getMessage()
    assert "upstream answered 503" in failed[0].getMessage()


# Providers


def test_parse_ecb_reads_the_shipped_sample() -> None:
    snap = parse_ecb(ecb_sample.read_bytes())
    assert snap.pivot == "EUR"
    assert snap.source == "ecb"
    assert snap.as_of == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert snap.texts["USD"] == "1.0532"
    assert snap.rates["USD"] == Fraction(10532, 10000)
    assert snap.rates["JPY"] == Fraction(16217, 100)
    assert "EUR" not in snap.rates
    assert set(snap.rates) == set(snap.texts)
    assert len(snap.rates) >= 20


def test_ecb_provider_over_http(rates_server: RatesServer) -> None:
    rates_server.body(ecb_sample.read_bytes(), "application/xml")
    snap = EcbProvider(rates_server.url).fetch()
    expected = parse_ecb(ecb_sample.read_bytes())
    assert (snap.pivot, snap.as_of, snap.source) == ("EUR", expected.as_of, "ecb")
    assert snap.texts == expected.texts
    assert rates_server.requests == 1


def test_ecb_provider_not_xml_is_provider_error(rates_server: RatesServer) -> None:
    rates_server.body(b"<html>maintenance", "text/html")
    with pytest.raises(ProviderError, match="not XML"):
        EcbProvider(rates_server.url).fetch()


def test_json_provider_ok(rates_server: RatesServer) -> None:
    as_of = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    rates_server.ok({"USD": "1.0532", "GBP": "0.83215"}, as_of=as_of)
    snap = JsonHttpProvider(rates_server.url).fetch()
    assert snap.pivot == "EUR"
    assert snap.as_of == as_of
    assert snap.source == "json"
    assert snap.texts == {"USD": "1.0532", "GBP": "0.83215"}
    assert snap.rates == {"USD": Fraction(10532, 10000), "GBP": Fraction(83215, 100000)}


def test_json_provider_http_500_fails_after_bounded_tries(
        rates_server: RatesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "http_backoff_s", 0.01)
    rates_server.error(500)
    with pytest.raises(ProviderError, match=f"failed after {providers.http_tries_max} tries"):
        JsonHttpProvider(rates_server.url).fetch()
    assert rates_server.requests == providers.http_tries_max


def test_json_provider_timeout_is_provider_error(
        rates_server: RatesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "http_timeout_s", 0.3)
    monkeypatch.setattr(providers, "http_backoff_s", 0.01)
    rates_server.slow(5)  # each try would succeed after 5 s, had its timeout not applied
    with pytest.raises(ProviderError, match="failed after"):
        JsonHttpProvider(rates_server.url).fetch()
    assert rates_server.requests == providers.http_tries_max  # three timed-out tries


@pytest.mark.parametrize(("body", "error"), [
    (b'{"base": "EUR", "rates": {"USD": ', "malformed JSON"),
    (b"[1, 2, 3]", "malformed JSON"),
    (b'{"base": "EUR", "rates": {"USD": "1.0532"}}', "malformed JSON"),  # no as_of
    (b'{"base": "EUR", "as_of": "yesterday", "rates": {"USD": "1.0532"}}', "malformed JSON"),
    (b'{"base": "EUR", "as_of": "2026-11-21T10:00:00Z", "rates": {"USD": 1.0532}}',
     "decimal strings"),
    (b'{"base": "EUR", "as_of": "2026-11-21T10:00:00Z", "rates": {"USD": "-1.05"}}', "USD"),
    (b'{"base": "EUR", "as_of": "2026-11-21T10:00:00", "rates": {"USD": "1.05"}}',
     "time zone"),
    (b'{"base": "EUR", "as_of": "2026-11-21T10:00:00Z", "rates": {}}', "expected 1 to"),
])
def test_json_provider_bad_documents_are_provider_errors(
        rates_server: RatesServer, body: bytes, error: str) -> None:
    rates_server.body(body)
    with pytest.raises(ProviderError, match=error):
        JsonHttpProvider(rates_server.url).fetch()
    assert rates_server.requests == 1  # a bad document is not retried


def test_json_provider_response_size_is_capped(rates_server: RatesServer) -> None:
    doc = rates_server.rates_body({"USD": "1.0532"})
    at_limit = doc + b" " * (providers.response_bytes_max - len(doc))
    rates_server.body(at_limit)
    assert JsonHttpProvider(rates_server.url).fetch().texts == {"USD": "1.0532"}

    rates_server.body(at_limit + b" ")
    with pytest.raises(ProviderError, match=f"over {providers.response_bytes_max} bytes"):
        JsonHttpProvider(rates_server.url).fetch()
    assert rates_server.requests == 2  # the oversized answer is not fetched again


def test_fixed_provider_is_always_fresh() -> None:
    provider = FixedProvider(dict(sample_rates))
    first = provider.fetch()
    time.sleep(0.01)
    second = provider.fetch()
    now = datetime.now(UTC)
    for snap in (first, second):
        assert abs((now - snap.as_of).total_seconds()) < 5
        assert snap.texts == sample_rates
        assert (snap.pivot, snap.source) == ("EUR", "fixed")
    assert second.as_of > first.as_of
    assert provider_from_settings("fixed", None).fetch().texts["USD"] == "1.0532"


def test_provider_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="CORRIDOR_FX_URL"):
        provider_from_settings("json", None)
    with pytest.raises(ValueError, match="unknown FX provider"):
        provider_from_settings("carrier-pigeon", None)
    assert provider_from_settings("json", "http://127.0.0.1:1/x") == JsonHttpProvider(
        "http://127.0.0.1:1/x")


# Staleness end to end, through GraphQL

QUOTE = """mutation($i: CreateFxQuoteInput!) { createFxQuote(input: $i) {
  __typename ... on FxQuote { id rate buy { amount currency } }
  ... on Error { code message } } }"""
RATES = '{ fxRates(base: "EUR") { quote rate stale source } }'


async def test_stale_rates_refuse_quotes_until_the_provider_is_back(
        router: Router, make_partner: e2e.MakePartner) -> None:
    age_s_max = fx_parameters(catalog.jurisdiction("EU").defaults()).rate_age_s_max
    await load_rates(router, as_of=datetime.now(UTC) - timedelta(seconds=age_s_max + 60))
    p = await make_partner("EU", funded={"EUR": 1_000_00})

    def ask(key: str) -> dict[str, Any]:
        return {"i": {"sellCurrency": "EUR", "buyCurrency": "USD", "sellAmount": "100.00",
                      "idempotencyKey": key}}

    rates = (await p.gql(RATES))["data"]["fxRates"]
    assert {r["quote"] for r in rates} >= {"USD", "GBP"}
    assert all(r["stale"] for r in rates), rates
    refused = (await p.gql(QUOTE, ask("stale-1")))["data"]["createFxQuote"]
    assert refused["__typename"] == "RatesUnavailable", refused
    assert refused["code"] == "RATES_UNAVAILABLE"

    # The provider still down: the failure is recorded and quotes stay refused.
    assert (await refresh(router, BrokenProvider(), _mid())).status == "failed"
    still = (await p.gql(QUOTE, ask("stale-2")))["data"]["createFxQuote"]
    assert still["__typename"] == "RatesUnavailable", still

    # The provider back: quotes work again.
    report = await refresh(router, FixedProvider(dict(sample_rates)), _mid())
    assert report.status == "ok"
    rates = (await p.gql(RATES))["data"]["fxRates"]
    usd = next(r for r in rates if r["quote"] == "USD")
    assert usd == {"quote": "USD", "rate": "1.053200000", "stale": False, "source": "fixed"}
    quoted = (await p.gql(QUOTE, ask("fresh-1")))["data"]["createFxQuote"]
    assert quoted["__typename"] == "FxQuote", quoted
    assert quoted["buy"] == {"amount": "104.79", "currency": "USD"}


def test_future_timestamps_are_refused() -> None:
    from datetime import timedelta

    from workers.fx.providers import ProviderError, parse_json

    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = json.dumps({"base": "EUR", "as_of": future, "rates": {"USD": "1.05"}}).encode()
    with pytest.raises(ProviderError, match="in the future"):
        parse_json(body, "json")


async def test_redelivered_applied_message_does_not_fetch_again(router) -> None:
    calls = []

    class Counting:
        name = "counting"

        def fetch(self):  # type: ignore[no-untyped-def]
            calls.append(1)
            return FixedProvider({"USD": "1.0532"}).fetch()

    message = f"redelivered-{uuid.uuid4()}"
    await load_rates(router)
    assert (await refresh(router, Counting(), message)).status == "ok"
    assert (await refresh(router, Counting(), message)).status == "duplicate"
    assert len(calls) == 1
