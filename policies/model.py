"""The plain data rules decide over: the operation, what the caller knew about it (its context),
the parameters of one policy version, and what each rule concluded.

Rules are pure functions ``(operation, context, parameters) -> Verdict | None``; ``None`` means
the rule has nothing to say (allow). Nothing here does I/O: the caller gathers usage, reference
conversions and screening results first (see ``regions.policy_context``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from policies.params import Param, Value


class Outcome(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    REVIEW = "REVIEW"


class Kind(StrEnum):
    """Operations the rules see."""

    TRANSFER = "transfer"
    FX_CONVERSION = "fx_conversion"
    PAYOUT = "payout"
    INCOMING_PAYMENT = "incoming_payment"
    ONBOARDING = "tenant_onboarding"


class Role(StrEnum):
    """Why a jurisdiction is asked: it is the tenant's (origin) or the money's other end's."""

    ORIGIN = "origin"
    DESTINATION = "destination"


class Scope(StrEnum):
    TENANT = "tenant"
    ACCOUNT = "account"
    BENEFICIARY = "beneficiary"


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class Operation:
    """What is about to happen."""

    kind: Kind
    tenant_id: str
    jurisdiction: str
    """The tenant's jurisdiction."""
    home_region: str
    amount_minor: int
    currency: str
    account_id: str | None = None
    beneficiary_id: str | None = None
    counterparty_country: str | None = None
    """Where the money goes (payouts) or comes from (incoming payments)."""
    counterparty_name: str | None = None
    counterparty_fields: frozenset[str] = frozenset()
    """Information that travels with the money about the other party: name, account, address."""
    sell_currency: str | None = None
    """FX conversions: the currency given up (``currency`` is the one bought)."""
    region: str | None = None
    """Onboarding: the home region asked for."""


@dataclass(frozen=True, slots=True)
class Usage:
    amount_minor: int
    """In the jurisdiction's limit currency, before this operation."""
    count: int


@dataclass(frozen=True, slots=True)
class Hit:
    """The best sanctions match for a name: what the screening found, as plain data."""

    list_name: str
    entry_id: str
    matched_name: str
    score: int
    exact: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Context:
    role: Role
    now: datetime
    amount_in: Mapping[str, int] = field(default_factory=dict)
    """The operation's amount converted into other currencies at reference rates; a currency
    missing here had no rate (rules that need it send the operation to review)."""
    usage: Mapping[tuple[Scope, Period], Usage] = field(default_factory=dict)
    hits: tuple[Hit, ...] = ()
    """Sanctions matches of the counterparty (or, at onboarding, the tenant) on the lists this
    jurisdiction screens against, at or above its threshold."""


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    code: str
    message: str


Params = Mapping[str, Value]
RuleFn = Callable[[Operation, Context, Params], Verdict | None]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kinds: frozenset[Kind]
    fn: RuleFn
    source: str
    roles: frozenset[Role] = frozenset({Role.ORIGIN})


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    name: str
    limit_currency: str
    """Currency of the usage counters (daily, monthly, yearly amounts) and of the limits."""
    countries: frozenset[str]
    """Countries whose money movements bring this jurisdiction in as the other end."""
    params: tuple[Param, ...]
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        assert len(names) == len(set(names)), self.code

    @property
    def declared(self) -> dict[str, Param]:
        return {p.name: p for p in self.params}

    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self.params}

    def currencies_needed(self) -> frozenset[str]:
        """Currencies the rules compare amounts in: the caller converts into each."""
        return frozenset({self.limit_currency} | {p.currency for p in self.params
                                                  if p.currency is not None})


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    jurisdiction: str
    version: int
    """0 is the defaults in code; each approved change adds one."""
    values: Params
    effective_from: datetime | None


@dataclass(frozen=True, slots=True)
class RuleResult:
    jurisdiction: str
    version: int
    rule: str
    outcome: Outcome
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[RuleResult, ...] = ()
    """The rules that did not allow."""
    versions: Mapping[str, int] = field(default_factory=dict)
    trace: tuple[RuleResult, ...] = ()
    """The results of the rules asked: every one when explaining (dry runs), else only the
    objections."""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def reason_texts(self) -> list[str]:
        return [f"{r.code}: {r.message}" for r in self.reasons]
