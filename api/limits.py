"""Request limits: a token bucket per API key, a stricter one per client address for requests
without a valid key, and the time an operation may run.

A bucket holds up to ``burst`` tokens and refills at ``per_s`` tokens a second; a request takes
one token or is refused with HTTP 429, ``Retry-After`` (whole seconds until a token is back, at
least 1) and ``{"errors": [{"message", "extensions": {"code": "RATE_LIMITED"}}]}``. A refused
request takes nothing, so a client that waits ``Retry-After`` gets through. Every answer to a
counted request carries the IETF draft headers ``RateLimit-Limit`` (the burst),
``RateLimit-Remaining`` (whole tokens left) and ``RateLimit-Reset`` (seconds until the bucket is
full again).

| variable (setting) | default | what |
| --- | --- | --- |
| ``CORRIDOR_RATE_LIMIT_PER_S`` (``rate_limit_per_s``) | 50 | refill per API key |
| ``CORRIDOR_RATE_LIMIT_BURST`` (``rate_limit_burst``) | 100 | bucket size per API key |
| ``CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_PER_S`` (``..._per_s``) | 1 | refill per address |
| ``CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_BURST`` (``..._burst``) | 30 | bucket size per address |
| ``CORRIDOR_REQUEST_TIME_LIMIT_S`` (``request_time_limit_s``) | 10 | ``schema.build.Operation`` |

- A request with a valid key is charged to the key, wherever it comes from. A request with no
  key or a bad one is charged to its client address (IPv4 per address, IPv6 per /64, since one
  subscriber holds a whole /64). While an address's bucket is empty, a key from it that has not
  authenticated recently is refused before it is looked up: guessing keys costs the control plane
  at most ``unauthenticated_rate_limit_per_s`` lookups a second per address, and a 429 says
  nothing about whether the key was valid.
- The address is the ASGI client: behind a load balancer, let uvicorn take it from
  ``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS`` = the balancers' addresses), or every caller
  shares the balancer's bucket.
- The buckets live in the memory of one API process: with N processes a caller may get up to N
  times the limit (less when the balancer keeps its connections on one process). A limiter shared
  between processes (say in Redis or at the gateway) is future work.
- Memory is bounded: at most ``buckets_max`` buckets per table, the least recently used evicted
  first (a bucket idle for ``burst / per_s`` seconds is full, so forgetting it changes nothing).
- A request costs two dictionary operations and a little arithmetic on the event loop (about
  3 µs); no lock, no await, no I/O.
- This module knows no framework (the CLI and workers import its defaults through the settings);
  ``api/app.py`` charges the buckets, answers 429 and adds the headers.
"""

from __future__ import annotations

import math
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

rate_limit_per_s = 50.0
rate_limit_burst = 100
unauthenticated_rate_limit_per_s = 1.0
unauthenticated_rate_limit_burst = 30
buckets_max = 100_000
request_time_limit_s = 10.0
ipv6_prefix_bits = 64
ipv4_mapped_prefix = bytes(10) + b"\xff\xff"
token_epsilon = 1e-9
"""Refill arithmetic in floats may land a hair under a whole token that is due."""

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    burst: int

    def __post_init__(self) -> None:
        assert self.per_s > 0, self
        assert self.burst >= 1, self

    def verdict(self, tokens: float, allowed: bool) -> Verdict:
        assert 0 <= tokens <= self.burst, tokens
        return Verdict(
            allowed=allowed, limit=self.burst, remaining=math.floor(tokens),
            reset_s=math.ceil((self.burst - tokens) / self.per_s),
            retry_after_s=0 if allowed else max(
                1, math.ceil((1 - token_epsilon - tokens) / self.per_s)))


class Verdict(NamedTuple):  # a NamedTuple: half the cost of a frozen dataclass, per request
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int
    """Whole seconds until one token is back; 0 when the request was allowed."""

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
               "RateLimit-Reset": str(self.reset_s)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


class Buckets:
    """Token buckets by caller, at most ``entries_max`` of them (least recently used evicted)."""

    def __init__(self, rate: Rate, entries_max: int = buckets_max,
                 clock: Clock = time.monotonic) -> None:
        assert entries_max >= 1, entries_max
        self.rate = rate
        self._entries_max = entries_max
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at_s

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, who: str) -> Verdict:
        now_s = self._clock()
        tokens = self._tokens(who, now_s)
        allowed = tokens >= 1 - token_epsilon
        if allowed:
            tokens = max(0.0, tokens - 1)
        self._buckets[who] = (tokens, now_s)
        self._buckets.move_to_end(who)
        if len(self._buckets) > self._entries_max:
            self._buckets.popitem(last=False)
        return self.rate.verdict(tokens, allowed)

    def peek(self, who: str) -> Verdict:
        """What ``take`` would answer, without taking (nor remembering a new caller)."""
        tokens = self._tokens(who, self._clock())
        return self.rate.verdict(tokens, tokens >= 1 - token_epsilon)

    def _tokens(self, who: str, now_s: float) -> float:
        held = self._buckets.get(who)
        if held is None:
            return float(self.rate.burst)
        tokens, at_s = held
        return min(float(self.rate.burst), tokens + max(0.0, now_s - at_s) * self.rate.per_s)


@dataclass(frozen=True, slots=True)
class Limiter:
    keys: Buckets
    """By API key id."""
    addresses: Buckets
    """By client address, for requests without a valid key."""

    @classmethod
    def of(cls, key_rate: Rate, address_rate: Rate, clock: Clock = time.monotonic) -> Limiter:
        return cls(Buckets(key_rate, clock=clock), Buckets(address_rate, clock=clock))


def address_of(host: str | None) -> str:
    """The bucket name of a client address: IPv4 as is, IPv6 by its /64.

    (``socket`` rather than ``ipaddress``: 1 µs instead of 18 for an IPv6 address.)
    """
    if not host:
        return "unknown"
    if ":" not in host:
        return host
    try:
        packed = socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        return host
    if packed.startswith(ipv4_mapped_prefix):
        return socket.inet_ntop(socket.AF_INET, packed[len(ipv4_mapped_prefix):])
    kept = ipv6_prefix_bits // 8
    network = socket.inet_ntop(socket.AF_INET6, packed[:kept] + bytes(len(packed) - kept))
    return f"{network}/{ipv6_prefix_bits}"


class RateLimited(Exception):
    code = "RATE_LIMITED"

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"too many requests: retry after {verdict.retry_after_s} s")
        self.verdict = verdict
