"""Every policy rule of every jurisdiction is monotone in the amount: with all other input the
same, a larger amount is never treated more leniently. If an amount is refused, every larger
one is refused; if it goes to review, every larger one goes to review or is refused; if it is
allowed, every smaller one is allowed.

``test_monotone.py`` covers book transfers (only ``transfer_amount_max`` varied, other
parameters at their defaults) and CN's FX purchase quota; ``test_jurisdiction_rules.py`` walks
a list of threshold rules at their default figures. This module adds, for all six
jurisdictions, every operation that moves money (transfers, FX conversions, payouts, incoming
payments), the destination jurisdiction's side, random approved parameter versions (thresholds
moved or switched off, required payer fields changed), daily and monthly usage, and amounts
converted the way the gate converts them (``regions.policy_gate.contexts`` with reference rates
at random, some missing), with amounts drawn around the parameters' own figures.

Rules with an amount threshold, checked one by one and through ``evaluate``:

- ``payout_amount_max``, ``transfer_amount_max``: a single operation over the limit is refused;
- ``usage_limits``: the day's and month's sums per tenant, account and beneficiary, with this
  payout, over a limit are refused (the velocity counts in the same rule do not read the amount);
- ``occasional_transaction`` (EU, UK, HK), ``currency_transaction_report`` (US),
  ``risk_review`` (SG): at or over the review threshold, review;
- ``payer_information`` (EU, UK, SG, HK): at or over the threshold without the payer fields
  required, review (a threshold switched off applies at any amount);
- ``payee_information`` (US): a payout at or over the record-keeping threshold without the
  payee's address is refused;
- ``large_value_report`` (CN, as origin and as destination): at or over the threshold chosen by
  currency and by whether the money stays in China, review;
- ``fx_purchase_quota`` (CN): this year's purchases with CNY plus this one over the quota are
  refused.

Rules that do not read the amount, and must give the same verdict at any amount: ``home_region``
(onboarding), ``currencies``, ``corridors`` and ``sanctions``. A reference rate missing for a
threshold's currency sends the operation to review at any amount, also a constant.

Deliberately not monotone, and so not asserted here: a change of currency or of counterparty
country is not "otherwise equal input". CN's large-value report compares a CNY amount with a CNY
threshold and any other currency with a USD one, and a domestic transfer with higher thresholds
than a cross-border one (PBoC Order [2016] No. 3, Art. 5), so the same value can be reviewed in
one currency or direction and not in another. Monotonicity holds per currency and direction,
which is what the batch decision in ``regions.commands`` relies on (its largest item per
currency).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from fractions import Fraction
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import catalog
from policies.common import amount_limit_max
from policies.engine import evaluate
from policies.model import (
    Hit,
    Kind,
    Operation,
    Outcome,
    Period,
    PolicyVersion,
    Role,
    Rule,
    Scope,
    Usage,
    Verdict,
)
from policies.params import Kind as P
from policies.params import Param, Value
from policies.usage import counters
from regions.policy_gate import PolicyGate, contexts

now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
severity = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.DENY: 2}
home = {"EU": "eu-central", "UK": "uk-south", "US": "us-east", "SG": "ap-southeast",
        "HK": "ap-southeast", "CN": "cn-east"}

threshold_rules = frozenset({
    "payout_amount_max", "transfer_amount_max", "usage_limits", "occasional_transaction",
    "currency_transaction_report", "risk_review", "payer_information", "payee_information",
    "large_value_report", "fx_purchase_quota"})
amount_blind_rules = frozenset({"home_region", "currencies", "corridors", "sanctions"})
money_kinds = (Kind.TRANSFER, Kind.FX_CONVERSION, Kind.PAYOUT, Kind.INCOMING_PAYMENT)

pivot = "EUR"
currencies = ["EUR", "GBP", "USD", "SGD", "HKD", "CNY", "JPY", "KWD", "CLF", "CHF"]
"""Every limit currency and parameter currency, and others of 0, 3 and 4 decimals."""
countries = ["DE", "FR", "GB", "US", "SG", "HK", "CN", "CH", "JP", "MY", "CA", "BR"]
"""Countries of every served jurisdiction and some served by none."""
payer_fields = ["name", "account", "address"]
amount_st = st.integers(min_value=1, max_value=10**13)
examples = 25
Used = dict[tuple[Scope, Period], Usage]


class GivenGate(PolicyGate):
    """The gate with reference rates as the control plane's ``fx_rates`` would load them
    (units per one ``pivot``) and a screening that answers from a table, so that contexts are
    built by the gate's own code (``regions.policy_gate.contexts``)."""

    def __init__(self, rates: Mapping[str, Fraction], hits: Mapping[str, tuple[Hit, ...]]):
        super().__init__()
        self._pivot = pivot
        self._rates = dict(rates)
        self._given_hits = hits

    def screen(self, name: str, lists: frozenset[str], threshold: int) -> tuple[Hit, ...]:
        return self._given_hits.get(name, ())


# --- strategies ---------------------------------------------------------------------------------

rates_st = st.dictionaries(
    st.sampled_from([c for c in currencies if c != pivot]),
    st.builds(Fraction, st.integers(min_value=1, max_value=10**7), st.just(10**4)))
"""Units per one EUR; a currency left out has no reference rate."""

hit_st = st.builds(Hit, st.sampled_from(["ofac", "eu", "uk"]), st.just("90001"),
                   st.just("Listed Name"), st.integers(min_value=50, max_value=100),
                   st.booleans(), st.just("a listed name"))

usage_st = st.builds(Usage, st.integers(min_value=0, max_value=10**12),
                     st.integers(min_value=0, max_value=100))


def _limit_st(param: Param) -> st.SearchStrategy[Value]:
    """An amount or count limit: its default, anywhere in its bounds (capped near the amounts
    drawn), or off where it may be."""
    low, high = param.minimum or 1, min(param.maximum or amount_limit_max, 10**12)
    choices = st.just(param.default) | st.integers(min_value=low, max_value=high)
    return (choices | st.none()) if param.optional else choices


@cache
def version_st(code: str) -> st.SearchStrategy[PolicyVersion]:
    """An approved version: amount and count limits moved, switched off or left at their
    defaults; every currency allowed or the default list; the payer fields required changed."""
    spec = catalog.jurisdiction(code)
    changed: dict[str, st.SearchStrategy[Value]] = {
        p.name: _limit_st(p) for p in spec.params if p.kind in (P.AMOUNT, P.COUNT)}
    changed["currencies"] = st.sampled_from([spec.defaults()["currencies"], None])
    if "payer_fields_required" in spec.declared:
        changed["payer_fields_required"] = st.frozensets(st.sampled_from(payer_fields))
    return st.fixed_dictionaries(changed).map(
        lambda values: PolicyVersion(code, 1, {**spec.defaults(), **values}, None))


def landmarks(versions: Mapping[str, PolicyVersion]) -> list[int]:
    """Amounts just under, at and just over every amount parameter of the versions in play."""
    figures = {version.values[name] for code, version in versions.items()
               for name, param in catalog.jurisdiction(code).declared.items()
               if param.kind is P.AMOUNT}
    return sorted({n for f in figures if isinstance(f, int) for n in (f - 1, f, f + 1)
                   if n >= 1})


@st.composite
def case_st(draw: st.DrawFn, code: str, kind: Kind, role: Role = Role.ORIGIN
            ) -> tuple[Operation, Operation, dict[str, PolicyVersion], GivenGate, Used]:
    """The same operation at a smaller and a larger amount, everything else equal: the
    versions of every jurisdiction it involves, the gate's rates and hits, and the usage the
    gate would lock for it. ``code`` is asked in ``role``: as the destination, the tenant is
    another jurisdiction's and the money's other end is in ``code``."""
    crossing = kind in (Kind.PAYOUT, Kind.INCOMING_PAYMENT)
    country: str | None
    if role is Role.DESTINATION:
        tenant = draw(st.sampled_from([c for c in catalog.codes() if c != code]))
        country = draw(st.sampled_from(sorted(catalog.jurisdiction(code).countries)))
    else:
        tenant = code
        country = draw(st.sampled_from(countries)) if crossing else None
    currency = draw(st.sampled_from(currencies))
    sell = draw(st.sampled_from([c for c in currencies if c != currency]))
    fields = frozenset(draw(st.lists(st.sampled_from(payer_fields), unique=True)))

    def at(amount_minor: int) -> Operation:
        return Operation(
            kind=kind, tenant_id="ten_1", jurisdiction=tenant, home_region=home[tenant],
            amount_minor=amount_minor, currency=currency, account_id="acc_1",
            beneficiary_id="ben_1" if kind is Kind.PAYOUT else None,
            counterparty_country=country,
            counterparty_name="Cy Party" if country is not None else None,
            counterparty_fields=fields,
            sell_currency=sell if kind is Kind.FX_CONVERSION else None)

    versions = {c: draw(version_st(c)) for c, _ in catalog.involved(at(1))}
    assert (code, role) in catalog.involved(at(1))
    near = landmarks(versions)
    one = (amount_st | st.sampled_from(near)) if near else amount_st
    small, large = sorted((draw(one), draw(one)))
    gate = GivenGate(draw(rates_st), {"Cy Party": tuple(draw(st.lists(hit_st, max_size=2)))})
    usage = {k: draw(usage_st) for k in sorted(counters(at(1), versions[tenant].values))}
    return at(small), at(large), versions, gate, usage


# --- the classification is complete --------------------------------------------------------------


def test_every_rule_is_classified_as_a_threshold_or_amount_blind() -> None:
    """A rule added later has to be placed here, and so gets a monotonicity check."""
    names = {r.name for code in catalog.codes() for r in catalog.jurisdiction(code).rules}
    assert threshold_rules.isdisjoint(amount_blind_rules)
    assert names == threshold_rules | amount_blind_rules


def test_conversions_rise_with_the_amount_at_the_gates_rates() -> None:
    """The engine's monotonicity rests on the gate's conversion rising with the amount
    (rounded up, never down); checked here at rates that round every way."""
    gate = GivenGate({"JPY": Fraction(1_612_345, 10**4), "KWD": Fraction(3_321, 10**4),
                      "CLF": Fraction(271, 10**4), "USD": Fraction(10_832, 10**4)}, {})
    for source in ("EUR", "JPY", "KWD", "CLF", "USD"):
        for target in ("EUR", "JPY", "KWD", "CLF", "USD"):
            converted = [gate.convert(n, source, target) for n in range(1, 2_000)]
            values = [v for v in converted if v is not None]
            assert len(values) == len(converted), (source, target)
            assert values[0] >= 1, (source, target)
            assert values == sorted(values), (source, target)
    assert gate.convert(100, "EUR", "SGD") is None


# --- rule by rule -------------------------------------------------------------------------------

rule_cases = [(code, rule) for code in catalog.codes() for rule in catalog.jurisdiction(code).rules
              if rule.kinds & set(money_kinds)]


@pytest.mark.parametrize(("code", "rule"), rule_cases,
                         ids=[f"{c}-{r.name}" for c, r in rule_cases])
@settings(max_examples=examples)
@given(data=st.data())
def test_each_rule_is_monotone_in_the_amount(code: str, rule: Rule, data: st.DataObject) -> None:
    """Asked of ``code`` in each role and for each kind of operation the rule decides."""
    kind = data.draw(st.sampled_from([k for k in money_kinds if k in rule.kinds]), label="kind")
    role = data.draw(st.sampled_from(sorted(rule.roles)), label="role")
    small_op, large_op, versions, gate, usage = data.draw(case_st(code, kind, role))

    def verdict(op: Operation) -> Verdict | None:
        ctx = contexts(gate, op, versions, usage, now)[code]
        assert ctx.role is role
        return rule.fn(op, ctx, versions[code].values)

    small, large = verdict(small_op), verdict(large_op)
    if rule.name in amount_blind_rules:
        assert small == large
        return
    assert (severity[small.outcome if small else Outcome.ALLOW]
            <= severity[large.outcome if large else Outcome.ALLOW]), (small, large)
    if small is not None and small.outcome is Outcome.DENY:
        assert large is not None
        assert large.outcome is Outcome.DENY
    if large is None:
        assert small is None


def test_every_rule_and_role_is_reachable() -> None:
    """Each (rule, kind, role) the test above draws is one ``catalog.involved`` produces, so
    no rule is asked in a role it is never asked in."""
    for code, rule in rule_cases:
        for kind in (k for k in money_kinds if k in rule.kinds):
            for role in rule.roles:
                assert rule in catalog.rules_for(code, kind, role)


# --- the whole decision ------------------------------------------------------------------------

decision_cases = [(code, kind) for code in catalog.codes() for kind in money_kinds]


@pytest.mark.parametrize(("code", "kind"), decision_cases,
                         ids=[f"{c}-{k.value}" for c, k in decision_cases])
@settings(max_examples=examples)
@given(data=st.data())
def test_decisions_are_monotone_in_the_amount(code: str, kind: Kind,
                                              data: st.DataObject) -> None:
    """Every jurisdiction the operation involves (its own and the other end's), every rule,
    through ``evaluate`` with contexts built by the gate."""
    small_op, large_op, versions, gate, usage = data.draw(case_st(code, kind))
    small = evaluate(small_op, versions, contexts(gate, small_op, versions, usage, now))
    large = evaluate(large_op, versions, contexts(gate, large_op, versions, usage, now))
    assert severity[small.outcome] <= severity[large.outcome], (small.reasons, large.reasons)
    if small.outcome is Outcome.DENY:
        assert large.outcome is Outcome.DENY
    if large.allowed:
        assert small.allowed
    # Each rule that objects at the smaller amount still objects at the larger one.
    objecting = {(r.jurisdiction, r.rule) for r in small.reasons}
    assert objecting <= {(r.jurisdiction, r.rule) for r in large.reasons}, (small.reasons,
                                                                          large.reasons)
