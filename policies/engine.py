"""The one place money-moving operations ask the policies: ``evaluate``.

Every money-moving mutation and worker step builds an ``Operation`` and calls ``evaluate``
before it touches the ledger. Until the jurisdiction modules land (the policies issue), no rule
is registered and every operation is allowed; the call sites and the three outcomes (allow,
deny, review) are already wired, so rules slot in here without touching the callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    REVIEW = "REVIEW"


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


@dataclass(frozen=True, slots=True)
class Operation:
    """What is about to happen, as plain data (no I/O in rules)."""

    kind: str
    """``payout``, ``incoming_payment``, ``transfer``, ``fx_conversion``, ..."""
    tenant_id: str
    jurisdiction: str
    home_region: str
    amount_minor: int
    currency: str
    destination_country: str | None = None
    counterparty_name: str | None = None
    details: dict[str, str] = field(default_factory=dict)


Rule = Callable[[Operation], Decision]
_rules: list[Rule] = []


def register(rule: Rule) -> None:
    """Add a rule (the jurisdiction modules register theirs on import)."""
    _rules.append(rule)


def unregister(rule: Rule) -> None:
    _rules.remove(rule)


def evaluate(operation: Operation) -> Decision:
    """Deny beats review beats allow; the reasons of every rule that did not allow are kept."""
    decisions = [rule(operation) for rule in _rules]
    reasons = tuple(r for d in decisions if not d.allowed for r in d.reasons)
    if any(d.outcome is Outcome.DENY for d in decisions):
        return Decision(Outcome.DENY, reasons)
    if any(d.outcome is Outcome.REVIEW for d in decisions):
        return Decision(Outcome.REVIEW, reasons)
    return Decision(Outcome.ALLOW)
