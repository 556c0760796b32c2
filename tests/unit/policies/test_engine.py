"""The engine asks exactly the rules that apply to an operation's kind and each jurisdiction's
role; the usage counters read are those of the limits set; FX parameters come from a policy
version. The catalog is fixed, so these run on the real jurisdictions (a stand-in rule index
plays a jurisdiction with no rule for a kind)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import catalog, engine
from policies.engine import evaluate
from policies.fx import FxParameters, fx_parameters, refresh_jump_bps_max
from policies.model import (
    Context,
    Kind,
    Operation,
    Outcome,
    Period,
    PolicyVersion,
    Role,
    Rule,
    Scope,
    Usage,
)
from policies.params import Value
from policies.usage import counters, fx_purchase_meter, meter, scope_ids

now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
amount_limits = ["tenant_daily_amount_max", "tenant_monthly_amount_max",
                 "account_daily_amount_max", "account_monthly_amount_max",
                 "beneficiary_daily_amount_max", "beneficiary_monthly_amount_max"]
count_limits = ["account_hourly_count_max", "beneficiary_daily_count_max"]
counter_of = {
    "tenant_daily_amount_max": (Scope.TENANT, Period.DAY),
    "tenant_monthly_amount_max": (Scope.TENANT, Period.MONTH),
    "account_daily_amount_max": (Scope.ACCOUNT, Period.DAY),
    "account_monthly_amount_max": (Scope.ACCOUNT, Period.MONTH),
    "beneficiary_daily_amount_max": (Scope.BENEFICIARY, Period.DAY),
    "beneficiary_monthly_amount_max": (Scope.BENEFICIARY, Period.MONTH),
    "account_hourly_count_max": (Scope.ACCOUNT, Period.HOUR),
    "beneficiary_daily_count_max": (Scope.BENEFICIARY, Period.DAY),
}
every_counter = [(s, p) for s in Scope for p in Period]


def values(code: str, **changes: Value) -> dict[str, Value]:
    defaults = catalog.jurisdiction(code).defaults()
    assert changes.keys() <= defaults.keys()
    return {**defaults, **changes}


def version(code: str, number: int = 0, **changes: Value) -> PolicyVersion:
    return PolicyVersion(code, number, values(code, **changes), None)


def op(kind: Kind, code: str = "EU", currency: str = "EUR", **fields: Any) -> Operation:
    return Operation(kind=kind, tenant_id="ten_1", jurisdiction=code, home_region="eu-central",
                     amount_minor=10_000, currency=currency, **fields)


def payout(**fields: Any) -> Operation:
    return op(Kind.PAYOUT, account_id="acc_1", beneficiary_id="ben_1", counterparty_country="FR",
              **fields)


def context(role: Role = Role.ORIGIN,
            usage: dict[tuple[Scope, Period], Usage] | None = None) -> Context:
    return Context(role, now, {}, usage or {})


# --- evaluate ----------------------------------------------------------------------------------


def no_rules_for_transfers(code: str, kind: Kind, role: Role) -> tuple[Rule, ...]:
    return () if kind is Kind.TRANSFER else catalog.rules_for(code, kind, role)


@pytest.mark.parametrize("explain", [False, True])
def test_a_kind_no_rule_applies_to_is_allowed_with_an_empty_trace(
        monkeypatch: pytest.MonkeyPatch, explain: bool) -> None:
    monkeypatch.setattr(engine, "rules_for", no_rules_for_transfers)
    decision = evaluate(op(Kind.TRANSFER), {"EU": version("EU", 2)}, {"EU": context()},
                        explain=explain)
    assert decision.outcome is Outcome.ALLOW
    assert decision.allowed
    assert decision.trace == ()
    assert decision.reasons == ()
    assert decision.versions == {"EU": 2}


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("code", catalog.codes())
def test_every_kind_meets_at_least_one_rule_in_every_jurisdiction(code: str, kind: Kind) -> None:
    """Why the empty trace above needs a stand-in rule index: the real catalog has none."""
    assert catalog.rules_for(code, kind, Role.ORIGIN)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("code", catalog.codes())
def test_rules_for_keeps_the_declaration_order(code: str, kind: Kind, role: Role) -> None:
    expected = tuple(r for r in catalog.jurisdiction(code).rules
                     if kind in r.kinds and role in r.roles)
    assert catalog.rules_for(code, kind, role) == expected


@pytest.mark.parametrize("kind", [Kind.TRANSFER, Kind.FX_CONVERSION])
@pytest.mark.parametrize("code", catalog.codes())
def test_only_sanctions_and_cn_reporting_are_asked_of_a_destination(code: str,
                                                                     kind: Kind) -> None:
    assert catalog.rules_for(code, kind, Role.DESTINATION) == ()
    crossing = {r.name for k in (Kind.PAYOUT, Kind.INCOMING_PAYMENT)
                for r in catalog.rules_for(code, k, Role.DESTINATION)}
    assert crossing == ({"sanctions", "large_value_report"} if code == "CN" else {"sanctions"})


@pytest.mark.parametrize("code", catalog.codes())
def test_currencies_needed(code: str) -> None:
    spec = catalog.jurisdiction(code)
    assert catalog.currencies_needed(code) == spec.currencies_needed()
    assert catalog.currencies_needed(code) == (
        {"USD", "CNY"} if code == "CN" else {"GBP", "EUR"} if code == "UK"
        else {spec.limit_currency})


@pytest.mark.parametrize("kind", [Kind.TRANSFER, Kind.FX_CONVERSION, Kind.ONBOARDING])
@pytest.mark.parametrize("code", catalog.codes())
def test_the_trace_holds_exactly_the_rules_of_the_kind_in_declaration_order(code: str,
                                                                             kind: Kind) -> None:
    operation = op(kind, code, "USD", sell_currency="CNY" if kind is Kind.FX_CONVERSION else None,
                   region=None)
    decision = evaluate(operation, {code: version(code)},
                        {code: Context(Role.ORIGIN, now, {"USD": 10_000, "CNY": 72_000})},
                        explain=True)
    expected = [r.name for r in catalog.jurisdiction(code).rules
                if kind in r.kinds and Role.ORIGIN in r.roles]
    assert [r.rule for r in decision.trace] == expected
    assert {r.jurisdiction for r in decision.trace} == {code}


def test_the_destination_is_asked_only_its_destination_rules() -> None:
    operation = op(Kind.PAYOUT, counterparty_country="US", counterparty_name="Ada")
    decision = evaluate(operation, {"EU": version("EU"), "US": version("US")},
                        {"EU": context(), "US": context(Role.DESTINATION)}, explain=True)
    us_rules = [r.name for r in catalog.jurisdiction("US").rules
                if Kind.PAYOUT in r.kinds and Role.DESTINATION in r.roles]
    assert us_rules == ["sanctions"]
    assert [r.rule for r in decision.trace if r.jurisdiction == "US"] == us_rules


def test_versions_of_jurisdictions_not_involved_are_not_recorded() -> None:
    versions = {code: version(code, 5) for code in catalog.codes()}
    contexts = {code: context() for code in catalog.codes()}
    decision = evaluate(op(Kind.TRANSFER), versions, contexts)
    assert decision.versions == {"EU": 5}


def test_every_involved_jurisdiction_needs_a_version() -> None:
    operation = op(Kind.PAYOUT, counterparty_country="US")
    with pytest.raises(KeyError):
        evaluate(operation, {"EU": version("EU")}, {"EU": context(), "US": context()})


# --- usage counters ------------------------------------------------------------------------


def test_counters_with_no_limit_set_are_none() -> None:
    assert all(values("EU")[name] is None for name in counter_of)
    assert counters(payout(), values("EU")) == frozenset()


@pytest.mark.parametrize("name", sorted(counter_of))
def test_counters_of_one_limit(name: str) -> None:
    assert counters(payout(), values("EU", **{name: 1_000})) == {counter_of[name]}


def test_counters_of_every_limit() -> None:
    every = values("EU", **dict.fromkeys(counter_of, 1_000))
    assert counters(payout(), every) == frozenset(counter_of.values())


@given(chosen=st.sets(st.sampled_from(sorted(counter_of))))
def test_counters_are_those_of_the_limits_set(chosen: set[str]) -> None:
    params = values("US", **dict.fromkeys(chosen, 1_000))
    assert counters(payout(currency="USD", code="US"), params) == {counter_of[n] for n in chosen}


@given(chosen=st.sets(st.sampled_from(sorted(counter_of))),
       used=st.fixed_dictionaries({c: st.builds(Usage, st.integers(0, 200_000),
                                                st.integers(0, 20)) for c in every_counter}))
def test_counters_not_read_do_not_change_the_decision(
        chosen: set[str], used: dict[tuple[Scope, Period], Usage]) -> None:
    params = {**values("EU"), **{n: 100_000 if n in amount_limits else 10 for n in chosen}}
    read = counters(payout(), params)
    versions = {"EU": PolicyVersion("EU", 1, params, None)}
    whole = evaluate(payout(), versions, {"EU": context(usage=used)}, explain=True)
    only_read = evaluate(payout(), versions,
                         {"EU": context(usage={c: u for c, u in used.items() if c in read})},
                         explain=True)
    assert whole == only_read


@pytest.mark.parametrize("kind", [Kind.TRANSFER, Kind.INCOMING_PAYMENT, Kind.ONBOARDING])
def test_only_payouts_are_metered_by_the_limits(kind: Kind) -> None:
    every = values("EU", **dict.fromkeys(counter_of, 1_000))
    assert meter(op(kind)) is None
    assert counters(op(kind), every) == frozenset()


def test_buying_foreign_currency_with_cny_reads_the_yearly_account_counter() -> None:
    purchase = op(Kind.FX_CONVERSION, "CN", "USD", sell_currency="CNY")
    assert meter(purchase) == fx_purchase_meter
    assert counters(purchase, values("CN")) == {(Scope.ACCOUNT, Period.YEAR)}
    assert counters(purchase, values("CN", fx_purchase_annual_quota=None)) == frozenset()


@pytest.mark.parametrize(("buy", "sell"), [("EUR", "USD"), ("CNY", "USD"), ("CNY", "CNY")])
def test_other_conversions_read_no_counter(buy: str, sell: str) -> None:
    conversion = op(Kind.FX_CONVERSION, "CN", buy, sell_currency=sell)
    assert meter(conversion) is None
    assert counters(conversion, values("CN")) == frozenset()


def test_payouts_read_no_fx_counter() -> None:
    assert counters(payout(code="CN", currency="USD"), values("CN")) == frozenset()


def test_scope_ids() -> None:
    assert scope_ids(payout()) == {Scope.TENANT: "ten_1", Scope.ACCOUNT: "acc_1",
                                   Scope.BENEFICIARY: "ben_1"}
    assert scope_ids(op(Kind.TRANSFER)) == {Scope.TENANT: "ten_1"}


# --- FX parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", catalog.codes())
def test_fx_parameters_defaults(code: str) -> None:
    assert fx_parameters(values(code)) == FxParameters(
        spread_bps_default=50, rate_age_s_max=3_600, quote_validity_s_default=30,
        quote_validity_s_max=1_800, rate_jump_bps_max=1_000)


def test_fx_parameters_read_a_changed_version() -> None:
    changed = values("SG", fx_spread_bps_default=0, fx_rate_age_s_max=60,
                     fx_quote_validity_s_default=5, fx_quote_validity_s_max=86_400,
                     fx_rate_jump_bps_max=10)
    assert fx_parameters(changed) == FxParameters(0, 60, 5, 86_400, 10)


def test_refresh_jump_bps_max_is_the_strictest() -> None:
    versions = [values(code) for code in catalog.codes()]
    assert refresh_jump_bps_max(versions) == 1_000
    versions[3] = values(catalog.codes()[3], fx_rate_jump_bps_max=250)
    versions[5] = values(catalog.codes()[5], fx_rate_jump_bps_max=400)
    assert refresh_jump_bps_max(versions) == 250
    assert refresh_jump_bps_max(iter([values("HK", fx_rate_jump_bps_max=10_000)])) == 10_000
