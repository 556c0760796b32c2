"""What the bank test saw: every operation with every try and its answer, the replays of
acknowledged operations, the reads, and the faults injected."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payments.currency import currency as lookup_currency
from tests.chaos.client import Answer

success = {"transfer": "Transfer", "batch": "TransferBatch", "fx": "Conversion",
           "payout": "Payout", "payout_batch": "PayoutBatch"}
"""The typename of each kind's acknowledgement (the last step's success)."""
step_success = {"createTransfer": "Transfer", "createTransferBatch": "TransferBatch",
                "createFxQuote": "FxQuote", "executeFxQuote": "Conversion",
                "createPayout": "Payout", "createPayoutBatch": "PayoutBatch"}
internal_outcomes = frozenset({"error:INTERNAL_SERVER_ERROR"})
business_errors = frozenset({"InsufficientFunds", "TransferBatchRejected", "PayoutBatchRejected",
                             "QuoteExpired"})
"""Definitive refusals the workload provokes on purpose (overdrafts) or may meet (a quote that
expired while its execution was retried through a fault)."""


def minor_units(money: dict[str, Any]) -> int:
    """A ``Money`` answer in minor units (negative amounts too, unlike an input's)."""
    scaled = Decimal(money["amount"]).scaleb(lookup_currency(money["currency"]).exponent)
    assert scaled == scaled.to_integral_value(), money
    return int(scaled)


@dataclass(slots=True)
class Step:
    """One mutation of an operation: what was sent (always the same) and the answer."""

    mutation: str
    key: str
    input: dict[str, Any]
    answer: Answer
    replays: list[Answer] = field(default_factory=list)
    """Later sends of the same key and input after a definitive answer."""


@dataclass(slots=True)
class Op:
    n: int
    client: int
    kind: str
    tenant_id: str
    region: str
    started_s: float
    steps: list[Step] = field(default_factory=list)
    ended_s: float | None = None

    @property
    def outcome(self) -> str:
        """The last step's answer typename (``indefinite`` while none came)."""
        return self.steps[-1].answer.typename if self.steps else "indefinite"

    @property
    def acknowledged(self) -> bool:
        return self.outcome == success[self.kind]

    @property
    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = self.steps[-1].answer.data
        assert data is not None, self
        return data


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    target: str
    started_s: float
    ended_s: float
    detail: str = ""


@dataclass(slots=True)
class History:
    ops: list[Op] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    reads: Counter[str] = field(default_factory=Counter)
    """Balance reads by outcome (``api``, ``api_failed``, ``db``, ``db_failed``)."""
    read_anomalies: list[str] = field(default_factory=list)

    def new_op(self, client: int, kind: str, tenant_id: str, region: str, at_s: float) -> Op:
        op = Op(len(self.ops), client, kind, tenant_id, region, at_s)
        self.ops.append(op)
        return op

    def retries(self) -> Counter[str]:
        """Tries after the first of every step and replay, by what the previous try met."""
        found: Counter[str] = Counter()
        for op in self.ops:
            for step in op.steps:
                for answer in (step.answer, *step.replays):
                    for attempt in answer.attempts[:-1]:
                        found[attempt.outcome] += 1
        return found

    def internal_errors(self) -> Counter[str]:
        """Answers saying the API itself failed (HTTP 5xx but 503, or a top-level
        ``INTERNAL_SERVER_ERROR``), by outcome and body: a fault must never make the API fail
        so. ``UNAVAILABLE`` (503) is the answer for a database it cannot reach."""
        found: Counter[str] = Counter()
        for op in self.ops:
            for step in op.steps:
                for answer in (step.answer, *step.replays):
                    found.update(f"{a.outcome} {a.detail}".strip() for a in answer.attempts
                                 if a.outcome in internal_outcomes
                                 or (a.outcome.startswith("http:5") and a.outcome != "http:503"))
        return found

    def outcomes(self) -> dict[str, dict[str, int]]:
        found: dict[str, Counter[str]] = {}
        for op in self.ops:
            found.setdefault(op.kind, Counter())[op.outcome] += 1
        return {kind: dict(sorted(c.items())) for kind, c in sorted(found.items())}
