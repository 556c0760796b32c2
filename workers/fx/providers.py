"""Rate providers behind one interface, chosen by configuration in ``provider_from_settings``.

Every provider returns a ``RateSnapshot``: rates quoted as units of each currency per one unit
of the pivot, with the provider's own timestamp. Network providers have timeouts and a bounded
number of tries; a provider that fails raises ``ProviderError`` and the caller keeps the last
good rates.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Protocol
from xml.etree import ElementTree

import httpx

from payments.currency import currency
from payments.errors import InvalidInput
from payments.fx import parse_rate

http_timeout_s = 5.0
http_total_s_max = 20.0
clock_skew_s_max = 300
http_tries_max = 3
http_backoff_s = 0.5
response_bytes_max = 1_000_000
rates_per_snapshot_max = 500
ecb_sample = Path(__file__).resolve().parent.parent / "data" / "eurofxref-daily.xml"
_ecb_ns = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
_log = logging.getLogger(__name__)


class ProviderError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RateSnapshot:
    pivot: str
    rates: Mapping[str, Fraction]
    texts: Mapping[str, str]
    """The provider's decimal strings, stored as they came."""
    as_of: datetime
    source: str


class RateProvider(Protocol):
    @property
    def name(self) -> str: ...

    def fetch(self) -> RateSnapshot: ...


def _snapshot(pivot: str, texts: dict[str, str], as_of: datetime, source: str) -> RateSnapshot:
    if not texts or len(texts) > rates_per_snapshot_max:
        raise ProviderError(f"{source}: expected 1 to {rates_per_snapshot_max} rates")
    rates: dict[str, Fraction] = {}
    kept: dict[str, str] = {}
    try:
        currency(pivot)
    except InvalidInput as exc:
        raise ProviderError(f"{source}: pivot: {exc}") from exc
    for code, text in texts.items():
        try:
            currency(code)
        except InvalidInput:
            _log.warning("%s: skipping %r, not an ISO 4217 currency", source, code)
            continue
        try:
            rates[code] = parse_rate(text)
        except ValueError as exc:
            raise ProviderError(f"{source}: {code}: {exc}") from exc
        kept[code] = text
    if not rates:
        raise ProviderError(f"{source}: no usable rates")
    if pivot in rates:
        raise ProviderError(f"{source}: the pivot {pivot} is quoted against itself")
    if as_of.tzinfo is None:
        raise ProviderError(f"{source}: timestamp without a time zone")
    if as_of > datetime.now(UTC) + timedelta(seconds=clock_skew_s_max):
        raise ProviderError(f"{source}: timestamp {as_of.isoformat()} is in the future; "
                            "such rates would never go stale")
    return RateSnapshot(pivot, rates, kept, as_of, source)


def parse_ecb(xml: bytes, source: str = "ecb") -> RateSnapshot:
    """The ECB euro reference rates (eurofxref-daily.xml): EUR is the pivot.

    The ECB publishes at about 16:00 CET; the day's date is taken as 16:00 Central European
    Time (15:00 UTC), a conservative reading for the age check.
    """
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 - ECB feed; no DTD/entities in ElementTree
    except ElementTree.ParseError as exc:
        raise ProviderError(f"{source}: not XML: {exc}") from exc
    day = root.find(f".//{_ecb_ns}Cube[@time]")
    if day is None:
        raise ProviderError(f"{source}: no dated Cube element")
    try:
        as_of = datetime.strptime(day.attrib["time"], "%Y-%m-%d").replace(hour=15, tzinfo=UTC)
    except ValueError as exc:
        raise ProviderError(f"{source}: bad date {day.attrib['time']!r}") from exc
    texts = {c.attrib.get("currency", ""): c.attrib.get("rate", "")
             for c in day.findall(f"{_ecb_ns}Cube")}
    return _snapshot("EUR", texts, as_of, source)


def parse_json(body: bytes, source: str) -> RateSnapshot:
    """``{"base": "EUR", "as_of": "2026-11-21T10:00:00Z", "rates": {"USD": "1.0532"}}``.

    Rates must be strings: a JSON number would already have passed through a float.
    """
    try:
        data = json.loads(body)
        pivot, rates, stamp = data["base"], data["rates"], data["as_of"]
        as_of = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderError(f"{source}: malformed JSON rates: {exc}") from exc
    if not isinstance(rates, dict) or not all(isinstance(v, str) for v in rates.values()):
        raise ProviderError(f"{source}: rates must be an object of decimal strings")
    return _snapshot(str(pivot), rates, as_of, source)


def _get(url: str, source: str) -> bytes:
    """GET with a timeout, a size cap and a bounded number of tries with backoff."""
    last: Exception | None = None
    deadline = time.monotonic() + http_total_s_max
    for attempt in range(1, http_tries_max + 1):
        try:
            with httpx.stream("GET", url, timeout=http_timeout_s) as resp:
                resp.raise_for_status()
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > response_bytes_max:
                        raise ProviderError(f"{source}: response over {response_bytes_max} bytes")
                    if time.monotonic() > deadline:
                        raise ProviderError(f"{source}: no full answer in {http_total_s_max} s")
                return body
        except httpx.HTTPError as exc:
            last = exc
            if attempt < http_tries_max and time.monotonic() < deadline:
                time.sleep(http_backoff_s * attempt)
            else:
                break
    raise ProviderError(f"{source}: {url} failed after {http_tries_max} tries: {last}")


@dataclass(frozen=True, slots=True)
class EcbProvider:
    """The ECB XML from a URL (http/https) or a file path (the shipped sample by default)."""

    location: str = str(ecb_sample)
    name: str = "ecb"

    def fetch(self) -> RateSnapshot:
        if self.location.startswith(("http://", "https://")):
            return parse_ecb(_get(self.location, self.name), self.name)
        try:
            return parse_ecb(Path(self.location).read_bytes(), self.name)
        except OSError as exc:
            raise ProviderError(f"{self.name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class JsonHttpProvider:
    url: str
    name: str = "json"

    def fetch(self) -> RateSnapshot:
        return parse_json(_get(self.url, self.name), self.name)


@dataclass(frozen=True, slots=True)
class FixedProvider:
    """Fixed rates stamped with the time of each fetch: for development and demos."""

    texts: Mapping[str, str]
    pivot: str = "EUR"
    name: str = "fixed"

    def fetch(self) -> RateSnapshot:
        return _snapshot(self.pivot, dict(self.texts), datetime.now(UTC), self.name)


def fixed_from_sample() -> FixedProvider:
    """The shipped ECB sample's rates, as a fixed provider that is always fresh."""
    return FixedProvider(dict(parse_ecb(ecb_sample.read_bytes()).texts))


def provider_from_settings(kind: str, url: str | None) -> RateProvider:
    if kind == "fixed":
        return fixed_from_sample()
    if kind == "ecb":
        return EcbProvider(url or str(ecb_sample))
    if kind == "json":
        if not url:
            raise ValueError("the json FX provider needs CORRIDOR_FX_URL")
        return JsonHttpProvider(url)
    raise ValueError(f"unknown FX provider {kind!r}; use fixed, ecb or json")
