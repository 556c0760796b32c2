"""Where operations meet the policies: ``decide`` gathers what the rules need (the versions in
effect, usage counters, reference conversions, sanctions matches), asks ``policies.engine``,
and records the decision.

Per process, a ``PolicyGate`` caches the policy versions, the reference rates and the sanctions
screeners. ``refresh`` (called before each operation) asks the control plane at most once a
second whether any of them changed, by version, and reloads only then; so evaluation costs no
database round trip, and an approved change takes effect within a second of its effective time
without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.currency import currency as lookup_currency
from payments.errors import PolicyDenied
from payments.fx import RatesUnavailable, cross_rate, equivalent_minor
from policies import catalog
from policies.engine import evaluate
from policies.model import (
    Context,
    Decision,
    Hit,
    Kind,
    Operation,
    Outcome,
    Params,
    PolicyVersion,
    RuleResult,
)
from policies.screening import Screener
from policies.usage import counters, meter, scope_ids
from regions import fx_store, limit_usage, policy_store, sanctions_store
from regions.events import Event, Trail
from regions.router import Recheck, Router
from regions.tables import tenants
from regions.topology import Topology

refresh_interval_s = 1.0
hits_cache_entries_max = 100_000
tenants_cache_entries_max = 100_000
no_currency = "XXX"
"""ISO 4217's code for a transaction without a currency (onboarding)."""
screened = frozenset({Kind.PAYOUT, Kind.INCOMING_PAYMENT, Kind.ONBOARDING})

_marks = text("""
SELECT (SELECT count(*) FROM policy_versions) AS versions,
       (SELECT max(created_at) FROM policy_versions) AS versions_at,
       (SELECT string_agg(list_name || ':' || version, ',' ORDER BY list_name)
        FROM (SELECT list_name, max(version) AS version FROM sanctions_lists
              GROUP BY list_name) AS l) AS lists,
       (SELECT max(as_of) FROM fx_rates) AS rates_at
""")


class PolicyGate:
    """Per-process caches of what ``decide`` reads from the control plane."""

    def __init__(self) -> None:
        self._versions = {code: [PolicyVersion(code, 0, catalog.jurisdiction(code).defaults(),
                                               None)] for code in catalog.codes()}
        self._pivot: str | None = None
        self._rates: dict[str, Any] = {}
        self._screeners: dict[str, tuple[int, Screener]] = {}
        self._marks: tuple[Any, ...] | None = None
        self._recheck = Recheck(refresh_interval_s)
        self._hits: dict[tuple[Any, ...], tuple[Hit, ...]] = {}
        self._tenants: dict[str, str] = {}
        self._region_jurisdictions: dict[str, tuple[str, ...]] = {}

    def know_regions(self, topology: Topology) -> None:
        """The jurisdictions each region serves: whose policies a payment entering it meets."""
        self._region_jurisdictions = {r.code: r.jurisdictions for r in topology.regions}

    def jurisdictions_of_region(self, region: str) -> tuple[str, ...]:
        found = self._region_jurisdictions.get(region)
        if found is None:
            raise LookupError(f"the policy gate does not know region {region!r}: "
                              "call know_regions or refresh first")
        return found

    async def refresh(self, router: Router, *, force: bool = False) -> None:
        if not self._region_jurisdictions:
            self.know_regions(router.topology)
        if not force and not self._recheck.due():
            return
        with self._recheck.looking():
            await self._refresh(router)

    async def _refresh(self, router: Router) -> None:
        marks = await router.read_control(_fetch_marks)
        if marks == self._marks:
            return
        previous = self._marks or (None, None, None, None)
        if marks[:2] != previous[:2]:
            self._versions = await router.read_control(policy_store.load_versions)
        if marks[2] != previous[2]:
            await self._load_lists(router)
        if marks[3] != previous[3]:
            rates = await router.read_control(fx_store.load_rates)
            if rates is not None:
                self._pivot = rates.pivot
                self._rates = {code: r.rate for code, r in rates.rates.items()}
        self._marks = marks

    async def _load_lists(self, router: Router) -> None:
        current = await router.read_control(sanctions_store.current_versions)
        screeners = {}
        for name, version in current.items():
            kept = self._screeners.get(name)
            if kept is not None and kept[0] == version:
                screeners[name] = kept
                continue
            entries = await router.read_control(partial(sanctions_store.load_entries,
                                                        list_name=name, version=version))
            # Indexing a real list takes a second of CPU: off the event loop.
            screeners[name] = (version, await asyncio.to_thread(Screener, entries))
        self._screeners = screeners
        self._hits.clear()

    async def jurisdiction_of(self, router: Router, tenant_id: str) -> str:
        """A tenant's jurisdiction (it never changes, so it is cached for the process)."""
        found = self._tenants.get(tenant_id)
        if found is None:
            async def body(conn: AsyncConnection) -> str:
                return str((await conn.execute(select(tenants.c.jurisdiction).where(
                    tenants.c.id == tenant_id))).scalar_one())

            found = await router.read_control(body)
            if len(self._tenants) >= tenants_cache_entries_max:
                self._tenants.clear()
            self._tenants[tenant_id] = found
        return found

    def version(self, jurisdiction: str, now: datetime) -> PolicyVersion:
        return policy_store.effective(self._versions[jurisdiction], now)

    def params(self, jurisdiction: str, now: datetime | None = None) -> Params:
        return self.version(jurisdiction, now or datetime.now(UTC)).values

    def convert(self, amount_minor: int, source: str, target: str) -> int | None:
        """``amount_minor`` of ``source`` in ``target`` at the reference mid rate, if known."""
        if source == target:
            return amount_minor
        if self._pivot is None:
            return None
        try:
            mid = cross_rate(self._rates, self._pivot, source, target)
        except RatesUnavailable:
            return None
        return equivalent_minor(amount_minor, lookup_currency(source), lookup_currency(target),
                                mid)

    def screen(self, name: str, lists: frozenset[str], threshold: int) -> tuple[Hit, ...]:
        """The best match per list at or above ``threshold``, cached until the lists change."""
        key = (name, tuple(sorted(lists)), threshold)
        found = self._hits.get(key)
        if found is not None:
            return found
        hits = []
        for list_name in sorted(lists):
            kept = self._screeners.get(list_name)
            if kept is None:
                continue
            try:
                matches = kept[1].screen(name, threshold=threshold, limit=1)
            except ValueError as exc:  # no letters left to compare, or far too long
                hits.append(Hit(list_name, "", name[:80], threshold, False,
                                f"the name cannot be screened against {list_name}: {exc}"))
                continue
            if matches:
                m = matches[0]
                hits.append(Hit(list_name, m.entry.entry_id, m.matched_name, m.score, m.exact,
                                m.reason))
        if len(self._hits) >= hits_cache_entries_max:
            self._hits.clear()
        self._hits[key] = tuple(hits)
        return self._hits[key]


async def _fetch_marks(conn: AsyncConnection) -> tuple[Any, ...]:
    return tuple((await conn.execute(_marks)).one())


@dataclass(frozen=True, slots=True)
class Ruling:
    decision: Decision
    decision_id: str
    event: Event
    """The decision's audit record (not published): record it with the operation."""

    @property
    def held(self) -> bool:
        return self.decision.outcome is Outcome.REVIEW

    def about(self, subject_id: str) -> Event:
        """The audit record naming its subject, for operations whose id comes after the
        decision (a transfer's)."""
        return replace(self.event, target=subject_id,
                       payload={**self.event.payload, "subject_id": subject_id})


def contexts(gate: PolicyGate, op: Operation, versions: Mapping[str, PolicyVersion],
             usage: Mapping[Any, Any], now: datetime) -> dict[str, Context]:
    out = {}
    for code, role in catalog.involved(op):
        p = versions[code].values
        amount_in = {}
        for target in catalog.currencies_needed(code) - {op.currency}:
            converted = gate.convert(op.amount_minor, op.currency, target)
            if converted is not None:
                amount_in[target] = converted
        hits: tuple[Hit, ...] = ()
        if op.kind in screened and op.counterparty_name:
            lists, threshold = p["sanctions_lists"], p["screening_threshold"]
            assert isinstance(lists, frozenset)
            assert isinstance(threshold, int)
            hits = gate.screen(op.counterparty_name, lists, threshold)
        out[code] = Context(role, now, amount_in, usage if code == op.jurisdiction else {},
                            hits)
    return out


async def decide(conn: AsyncConnection, gate: PolicyGate, op: Operation, *,
                 subject_id: str | None, actor: str, now: datetime | None = None,
                 count_usage: bool = True, reviewable: bool = True) -> Ruling:
    """Decide ``op`` in its home region's transaction. Deny raises ``PolicyDenied`` (its
    decision is recorded after the rollback); allow and review advance the usage counters,
    unless ``count_usage`` is off: a worker asking again about an operation already counted
    when it was accepted reads no counters (the usage limits were checked then). An operation
    that cannot wait (``reviewable`` off: book transfers and FX conversions answer at once) is
    refused where the rules would send it to review."""
    now = now or datetime.now(UTC)
    versions = {code: gate.version(code, now) for code, _ in catalog.involved(op)}
    origin = catalog.jurisdiction(op.jurisdiction)
    which = meter(op)
    keys = counters(op, versions[op.jurisdiction].values) if count_usage else frozenset()
    usage = {}
    if which is not None and keys:
        usage = await limit_usage.lock(conn, op.home_region, op.tenant_id, which,
                                       scope_ids(op), keys, origin.limit_currency, now)
    decision = evaluate(op, versions, contexts(gate, op, versions, usage, now))
    if decision.outcome is Outcome.REVIEW and not reviewable:
        decision = replace(decision, outcome=Outcome.DENY)
    decision_id = ids.new_id("pdc", op.home_region)
    event = decision_event(op, decision, decision_id, subject_id)
    if decision.outcome is Outcome.DENY:
        raise PolicyDenied(f"the {op.kind.value.replace('_', ' ')} is not allowed by policy",
                           decision.reason_texts(),
                           Trail(op.home_region, op.tenant_id, actor, event))
    if which is not None and keys:
        counted = gate.convert(op.amount_minor, op.currency, origin.limit_currency)
        await limit_usage.advance(conn, op.home_region, op.tenant_id, which, scope_ids(op),
                                  keys, counted or 0, now)
    return Ruling(decision, decision_id, event)


def check_onboarding(gate: PolicyGate, name: str, jurisdiction: str, home_region: str,
                     now: datetime | None = None) -> Decision:
    """A new tenant: its home region allowed by its jurisdiction, its name screened. Anything
    but allow refuses it (a possible sanctions match needs a person's look before onboarding,
    not after)."""
    now = now or datetime.now(UTC)
    op = Operation(kind=Kind.ONBOARDING, tenant_id="", jurisdiction=jurisdiction,
                   home_region=home_region, amount_minor=0, currency=no_currency,
                   region=home_region, counterparty_name=name)
    versions = {code: gate.version(code, now) for code, _ in catalog.involved(op)}
    decision = evaluate(op, versions, contexts(gate, op, versions, {}, now))
    if not decision.allowed:
        raise PolicyDenied("the tenant may not be onboarded", decision.reason_texts())
    return decision


def batch_event(kind: Kind, subject_id: str, versions: Mapping[str, int], allowed: int,
                refused: Mapping[int, PolicyDenied]) -> Event:
    """One audit record for the decisions of a batch's items: how many the policies allowed
    and, for each refused item, why."""
    return Event("policy.decided", {
        "kind": kind.value, "subject_id": subject_id, "versions": dict(versions),
        "allowed": allowed, "refused": {str(i): exc.reasons for i, exc in refused.items()}},
        subject_id, published=False)


def reasons_json(reasons: tuple[RuleResult, ...]) -> list[dict[str, Any]]:
    return [{"jurisdiction": r.jurisdiction, "version": r.version, "rule": r.rule,
             "outcome": r.outcome.value, "code": r.code, "message": r.message}
            for r in reasons]


def decision_event(op: Operation, decision: Decision, decision_id: str,
                   subject_id: str | None) -> Event:
    return Event("policy.decided", {
        "decision_id": decision_id, "kind": op.kind.value, "subject_id": subject_id,
        "outcome": decision.outcome.value, "versions": dict(decision.versions),
        "reasons": reasons_json(decision.reasons), "amount_minor": op.amount_minor,
        "currency": op.currency}, subject_id, published=False)
