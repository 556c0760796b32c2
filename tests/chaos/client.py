"""A partner's GraphQL client over HTTP that retries a mutation, with the same idempotency key
and the same input, until it gets a definitive answer.

Definitive: the mutation's field came back (its success type or one of its error types).
Not definitive, so sent again: a transport error (the API process died, the connection was
refused or timed out), HTTP 429/5xx, or a top-level GraphQL error whose code says the request
may not have run or ran and failed for a passing reason (``UNAVAILABLE``, ``TIMEOUT``,
``TRANSACTION_CONFLICT``; and ``INTERNAL_SERVER_ERROR``, which the checker reports all the
same). A top-level error with any other code
(``BAD_USER_INPUT``, ``UNAUTHENTICATED``, ...) is definitive too: it is an answer the
bank test never expects, and the checker reports it.

Each try goes to the next API process in turn, so a client fails over when one is down.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.documents import fields

attempt_timeout_s = 15.0
"""Longer than the API's request time limit (10 s), so a slow request is answered, not cut."""
backoff_s_min = 0.05
backoff_s_max = 1.0
detail_chars_max = 200
retryable_http = frozenset({429, 500, 502, 503, 504})
retryable_codes = frozenset({"UNAVAILABLE", "TIMEOUT", "TRANSACTION_CONFLICT",
                             "INTERNAL_SERVER_ERROR", "RATE_LIMITED"})


@dataclass(frozen=True, slots=True)
class Attempt:
    at_s: float
    """Seconds since the run began."""
    api: int
    outcome: str
    """``answer``, ``transport:<exception>``, ``http:<status>`` or ``error:<code>``."""
    detail: str = ""
    """The start of the body of an HTTP 5xx answer."""


@dataclass(slots=True)
class Answer:
    data: Any
    """The field's value (definitive: an object, or a list for ``fxRates``), or None: the
    client gave up without one."""
    attempts: list[Attempt] = field(default_factory=list)
    unexpected: str | None = None
    """A definitive top-level error, which the bank test never expects."""

    @property
    def typename(self) -> str:
        if self.data is None:
            return "unexpected" if self.unexpected else "indefinite"
        return str(self.data.get("__typename", "?"))

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)


class Api:
    """The API processes' base URLs, and when every client stops trying."""

    def __init__(self, bases: list[str], http: httpx.AsyncClient, started_s: float) -> None:
        self.bases = bases
        self.http = http
        self.started_s = started_s
        self.give_up_at_s = math.inf
        """Monotonic time after which no new try starts (set when the run winds down)."""

    def now_s(self) -> float:
        return time.monotonic() - self.started_s

    async def call(self, key: str, document: str, variables: dict[str, Any],
                   rng: random.Random) -> Answer:
        """Send until definitive, or until ``give_up_at_s``; every try recorded."""
        answer = Answer(None)
        turn = rng.randrange(len(self.bases))
        backoff_s = backoff_s_min
        while time.monotonic() < self.give_up_at_s:
            api = turn % len(self.bases)
            turn += 1
            outcome, body, detail = await self._try(self.bases[api], key, document, variables)
            answer.attempts.append(Attempt(round(self.now_s(), 3), api, outcome, detail))
            if outcome == "answer":
                assert body is not None
                answer.data = body
                return answer
            if outcome.startswith("unexpected:"):
                answer.unexpected = outcome
                return answer
            await asyncio.sleep(rng.uniform(0, backoff_s))
            backoff_s = min(backoff_s_max, backoff_s * 2)
        return answer

    async def _try(self, base: str, key: str, document: str, variables: dict[str, Any]
                   ) -> tuple[str, Any, str]:
        """(outcome, the field's value when definitive, detail)."""
        try:
            resp = await self.http.post(f"{base}/graphql", timeout=attempt_timeout_s,
                                        json={"query": document, "variables": variables},
                                        headers={"Authorization": f"Bearer {key}"})
        except httpx.TransportError as exc:
            return f"transport:{type(exc).__name__}", None, ""
        if resp.status_code in retryable_http:
            return f"http:{resp.status_code}", None, resp.text[:detail_chars_max]
        try:
            body = resp.json()
        except ValueError:
            return f"unexpected:http {resp.status_code} without JSON", None, ""
        value = (body.get("data") or {}).get(fields[document])
        if value is not None and resp.status_code == 200:
            return "answer", value, ""
        codes = [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]
        if codes and all(c in retryable_codes for c in codes):
            return f"error:{codes[0]}", None, ""
        return f"unexpected:http {resp.status_code} {codes or body}", None, ""
