"""Each jurisdiction's rules at the figures they cite: just under, at and just over every
threshold, with the figure in the test's name; then home regions, currencies, corridors,
limits, sanctions and reference rates, and how one decision combines the jurisdictions an
operation involves.

Expected outcomes follow each regulation's wording: "or more" / "equal to or above" is ``>=``,
"more than" / "above" / "exceeding" is ``>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.currency import all_currencies
from policies import catalog
from policies.engine import evaluate
from policies.model import (
    Context,
    Decision,
    Hit,
    Kind,
    Operation,
    Outcome,
    Period,
    PolicyVersion,
    Role,
    RuleResult,
    Scope,
    Usage,
)
from policies.params import Value

ALLOW, REVIEW, DENY = Outcome.ALLOW, Outcome.REVIEW, Outcome.DENY
severity = {ALLOW: 0, REVIEW: 1, DENY: 2}
now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
home = {"EU": "eu-central", "UK": "uk-south", "US": "us-east", "SG": "ap-southeast",
        "HK": "ap-southeast", "CN": "cn-east"}
regions = sorted(set(home.values()))
limit_currency = {"EU": "EUR", "UK": "GBP", "US": "USD", "SG": "SGD", "HK": "HKD", "CN": "USD"}
abroad = {"EU": "CH", "UK": "CH", "US": "CA", "SG": "MY", "HK": "JP", "CN": "JP"}
"""A corridor country of each jurisdiction that no other served jurisdiction covers: payouts
there involve the tenant's jurisdiction alone."""
full_info = frozenset({"name", "account", "address"})
no_address = frozenset({"name", "account"})
amount_st = st.integers(min_value=1, max_value=10**12)


def version(code: str, number: int = 0, **changes: Value) -> PolicyVersion:
    """Version 0 is the defaults in code; a changed copy stands for an approved change."""
    values = catalog.jurisdiction(code).defaults()
    assert changes.keys() <= values.keys(), changes.keys() - values.keys()
    return PolicyVersion(code, number, {**values, **changes}, None)


def operation(kind: Kind, code: str, amount_minor: int, currency: str, **fields: Any) -> Operation:
    return Operation(kind=kind, tenant_id="ten_1", jurisdiction=code, home_region=home[code],
                     amount_minor=amount_minor, currency=currency, account_id="acc_1",
                     beneficiary_id="ben_1" if kind is Kind.PAYOUT else None, **fields)


def payout(code: str, amount_minor: int, currency: str | None = None,
           country: str | None = None, fields: frozenset[str] = full_info) -> Operation:
    return operation(Kind.PAYOUT, code, amount_minor, currency or limit_currency[code],
                     counterparty_country=country or abroad[code], counterparty_name="Ada Payee",
                     counterparty_fields=fields)


def incoming(code: str, amount_minor: int, currency: str | None = None,
             country: str | None = None, fields: frozenset[str] = full_info) -> Operation:
    return operation(Kind.INCOMING_PAYMENT, code, amount_minor, currency or limit_currency[code],
                     counterparty_country=country or abroad[code], counterparty_name="Bo Payer",
                     counterparty_fields=fields)


def onboarding(code: str, region: str | None) -> Operation:
    return operation(Kind.ONBOARDING, code, 0, "XXX", region=region,
                     counterparty_name="New Tenant Ltd")


def decide(op: Operation, *, amount_in: Mapping[str, int] | None = None,
           usage: Mapping[tuple[Scope, Period], Usage] | None = None,
           hits: Mapping[str, tuple[Hit, ...]] | None = None,
           versions: Mapping[str, PolicyVersion] | None = None,
           explain: bool = True) -> Decision:
    """Evaluate ``op`` under version 0 of every jurisdiction involved unless ``versions`` says
    otherwise; usage is the tenant's jurisdiction's, as the gate gives it. Explaining by
    default, so that the trace shows the rules that passed too."""
    chosen = {code: (versions or {}).get(code) or version(code)
              for code, _ in catalog.involved(op)}
    contexts = {code: Context(role, now, amount_in or {},
                              (usage or {}) if role is Role.ORIGIN else {},
                              (hits or {}).get(code, ()))
                for code, role in catalog.involved(op)}
    return evaluate(op, chosen, contexts, explain=explain)


def result(decision: Decision, rule: str, code: str | None = None) -> RuleResult:
    found = [r for r in decision.trace
             if r.rule == rule and (code is None or r.jurisdiction == code)]
    assert len(found) == 1, (rule, decision.trace)
    return found[0]


def rules_asked(decision: Decision) -> set[tuple[str, str]]:
    return {(r.jurisdiction, r.rule) for r in decision.trace}


def assert_rule(decision: Decision, rule: str, expected: Outcome, code: str | None = None,
                reason: str | None = None) -> None:
    found = result(decision, rule, code)
    assert found.outcome is expected, found
    if expected is ALLOW:
        assert found.code is None
        assert found.message == "passed"
    elif reason is not None:
        assert found.code == reason, found


def hit(exact: bool, score: int = 92, name: str = "TESTOVSKIY, Pavel") -> Hit:
    return Hit("ofac", "90001", name, score, exact, f"{name} on ofac, score {score}")


under_at_over = pytest.mark.parametrize("delta", [-1, 0, 1], ids=["under", "at", "over"])


def expected_at_or_over(delta: int) -> Outcome:
    return REVIEW if delta >= 0 else ALLOW


def expected_over(delta: int) -> Outcome:
    return REVIEW if delta > 0 else ALLOW


# --- United States ---------------------------------------------------------------------------


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_us_ctr_review_over_usd_10000(make: Any, delta: int) -> None:
    """31 CFR 1010.311: "more than $10,000"."""
    decision = decide(make("US", 1_000_000 + delta, "USD"))
    assert_rule(decision, "currency_transaction_report", expected_over(delta),
                reason="REPORTING_THRESHOLD")
    assert decision.outcome is expected_over(delta)


@under_at_over
def test_us_ctr_compares_the_usd_equivalent_over_usd_10000(delta: int) -> None:
    decision = decide(incoming("US", 930_000, "EUR"), amount_in={"USD": 1_000_000 + delta})
    assert_rule(decision, "currency_transaction_report", expected_over(delta))


@under_at_over
def test_us_recordkeeping_payee_address_at_usd_3000(delta: int) -> None:
    """31 CFR 1010.410(e)-(f): funds transfers of "$3,000 or more"."""
    without = decide(payout("US", 300_000 + delta, "USD", fields=no_address))
    expected = DENY if delta >= 0 else ALLOW
    assert_rule(without, "payee_information", expected, reason="PAYEE_INFORMATION_MISSING")
    assert without.outcome is expected
    assert_rule(decide(payout("US", 300_000 + delta, "USD")), "payee_information", ALLOW)


def test_us_recordkeeping_applies_to_payouts_only_at_usd_3000() -> None:
    decision = decide(incoming("US", 300_000, "USD", fields=no_address))
    assert ("US", "payee_information") not in rules_asked(decision)
    assert decision.allowed


def test_us_recordkeeping_at_usd_3000_without_a_usd_rate_is_review() -> None:
    decision = decide(payout("US", 300_000, "EUR"))
    assert_rule(decision, "payee_information", REVIEW, reason="NO_REFERENCE_RATE")


# --- European Union --------------------------------------------------------------------------


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_eu_occasional_transaction_review_at_eur_15000(make: Any, delta: int) -> None:
    """Directive (EU) 2015/849, Art. 11(b)(i): "EUR 15 000 or more"."""
    decision = decide(make("EU", 1_500_000 + delta, "EUR"))
    assert_rule(decision, "occasional_transaction", expected_at_or_over(delta),
                reason="REPORTING_THRESHOLD")
    assert decision.outcome is expected_at_or_over(delta)


@under_at_over
def test_eu_tfr_payer_information_over_eur_1000(delta: int) -> None:
    """TFR Art. 6(2), 7(3): the EUR 1,000 figure is "not exceeding"; over it from outside the
    Union the payer's address (or an equivalent) travels too."""
    decision = decide(incoming("EU", 100_000 + delta, "EUR", "CH", fields=no_address))
    assert_rule(decision, "payer_information", expected_over(delta),
                reason="PAYER_INFORMATION_MISSING")
    assert_rule(decide(incoming("EU", 100_000 + delta, "EUR", "CH")), "payer_information", ALLOW)


def test_eu_tfr_payer_information_over_eur_1000_names_what_is_missing() -> None:
    decision = decide(incoming("EU", 100_001, "EUR", "CH", fields=frozenset({"name"})))
    assert result(decision, "payer_information").message == (
        "the payment does not carry the payer's account, address")


@pytest.mark.parametrize(("fields", "expected"), [
    (frozenset({"account"}), ALLOW), (frozenset({"name", "address"}), REVIEW)])
def test_eu_tfr_inside_the_union_only_the_payer_account_over_eur_1000(
        fields: frozenset[str], expected: Outcome) -> None:
    """TFR Art. 5(1): within the Union the payment account number is enough."""
    decision = decide(incoming("EU", 100_001, "EUR", "FR", fields=fields))
    assert_rule(decision, "payer_information", expected)


def test_eu_tfr_over_eur_1000_without_a_eur_rate_asks_for_the_full_information() -> None:
    """The rule cannot tell the amount is small, so it asks for what a large payment needs
    (it does not answer NO_REFERENCE_RATE itself)."""
    short = decide(incoming("EU", 50_000, "USD", "CH", fields=no_address))
    assert_rule(short, "payer_information", REVIEW, reason="PAYER_INFORMATION_MISSING")
    assert_rule(decide(incoming("EU", 50_000, "USD", "CH")), "payer_information", ALLOW)


def test_eu_tfr_payer_information_threshold_null_applies_at_any_amount() -> None:
    changed = {"EU": version("EU", 1, payer_info_threshold=None)}
    decision = decide(incoming("EU", 1, "EUR", "CH", fields=no_address), versions=changed)
    assert_rule(decision, "payer_information", REVIEW, reason="PAYER_INFORMATION_MISSING")


# --- United Kingdom --------------------------------------------------------------------------


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_uk_occasional_transaction_review_at_eur_15000(make: Any, delta: int) -> None:
    """MLR 2017 reg. 27(2)(a): EUR 15,000 or more, compared in euro at the reference rate."""
    decision = decide(make("UK", 1_290_000, "GBP"), amount_in={"EUR": 1_500_000 + delta})
    assert_rule(decision, "occasional_transaction", expected_at_or_over(delta),
                reason="REPORTING_THRESHOLD")


def test_uk_occasional_transaction_without_a_euro_rate_is_review() -> None:
    decision = decide(payout("UK", 100, "GBP"))
    assert_rule(decision, "occasional_transaction", REVIEW, reason="NO_REFERENCE_RATE")


@under_at_over
def test_uk_transfer_of_funds_payer_information_over_eur_1000(delta: int) -> None:
    """Retained Regulation (EU) 2015/847 Art. 6(2), 7(3): EUR 1,000 or less needs names and
    accounts only; above it the payer's address too (from outside the UK)."""
    decision = decide(incoming("UK", 90_000, "GBP", "CH", fields=no_address),
                      amount_in={"EUR": 100_000 + delta})
    assert_rule(decision, "payer_information", expected_over(delta))
    inside = decide(incoming("UK", 90_000, "GBP", "GB", fields=frozenset({"account"})),
                    amount_in={"EUR": 100_000 + delta})
    assert_rule(inside, "payer_information", ALLOW)


# --- Singapore -------------------------------------------------------------------------------


@under_at_over
def test_sg_psn01_wire_information_over_sgd_1500(delta: int) -> None:
    """MAS Notice PSN01 para. 13: cross-border value transfers "exceeding S$1,500"."""
    decision = decide(incoming("SG", 150_000 + delta, "SGD", "MY", fields=no_address))
    assert_rule(decision, "payer_information", expected_over(delta),
                reason="PAYER_INFORMATION_MISSING")
    domestic = decide(incoming("SG", 150_000 + delta, "SGD", "SG", fields=frozenset({"account"})))
    assert_rule(domestic, "payer_information", ALLOW)


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_sg_risk_review_at_sgd_20000(make: Any, delta: int) -> None:
    decision = decide(make("SG", 2_000_000 + delta, "SGD"))
    assert_rule(decision, "risk_review", expected_at_or_over(delta), reason="REPORTING_THRESHOLD")


# --- Hong Kong -------------------------------------------------------------------------------


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_hk_amlo_occasional_review_at_hkd_120000(make: Any, delta: int) -> None:
    """AMLO Sch. 2 s. 3(1)(b): "equal to or above $120,000"."""
    decision = decide(make("HK", 12_000_000 + delta, "HKD"))
    assert_rule(decision, "occasional_transaction", expected_at_or_over(delta),
                reason="REPORTING_THRESHOLD")
    assert decision.outcome is expected_at_or_over(delta)


@under_at_over
def test_hk_amlo_wire_information_at_hkd_8000(delta: int) -> None:
    """AMLO Sch. 2 s. 12: wire transfers "equal to or above $8,000"."""
    decision = decide(incoming("HK", 800_000 + delta, "HKD", "JP", fields=no_address))
    assert_rule(decision, "payer_information", expected_at_or_over(delta),
                reason="PAYER_INFORMATION_MISSING")
    local = decide(incoming("HK", 800_000 + delta, "HKD", "HK", fields=frozenset({"account"})))
    assert_rule(local, "payer_information", ALLOW)


# --- Mainland China --------------------------------------------------------------------------


def fx_purchase(amount_minor: int, buy: str = "USD", sell: str = "CNY") -> Operation:
    return operation(Kind.FX_CONVERSION, "CN", amount_minor, buy, sell_currency=sell)


def bought_this_year(amount_minor: int) -> dict[tuple[Scope, Period], Usage]:
    return {(Scope.ACCOUNT, Period.YEAR): Usage(amount_minor, 3)}


@under_at_over
@pytest.mark.parametrize("used", [0, 4_000_000])
def test_cn_fx_purchase_quota_usd_50000_per_year(used: int, delta: int) -> None:
    """Huifa [2007] No. 1, Art. 2: USD 50,000 a year; buying up to the quota is allowed."""
    decision = decide(fx_purchase(5_000_000 - used + delta), usage=bought_this_year(used))
    expected = DENY if delta > 0 else ALLOW
    assert_rule(decision, "fx_purchase_quota", expected, reason="FX_QUOTA_EXCEEDED")
    assert decision.outcome is expected


@under_at_over
def test_cn_fx_purchase_quota_usd_50000_counts_the_usd_equivalent(delta: int) -> None:
    decision = decide(fx_purchase(900_000, buy="EUR"), amount_in={"USD": 1_000_000 + delta},
                      usage=bought_this_year(4_000_000))
    assert_rule(decision, "fx_purchase_quota", DENY if delta > 0 else ALLOW)


def test_cn_fx_purchase_quota_usd_50000_without_a_usd_rate_is_review() -> None:
    decision = decide(fx_purchase(100, buy="EUR"))
    assert_rule(decision, "fx_purchase_quota", REVIEW, reason="NO_REFERENCE_RATE")


@pytest.mark.parametrize(("buy", "sell"), [("EUR", "USD"), ("CNY", "USD")])
def test_cn_fx_purchase_quota_usd_50000_only_counts_buying_with_cny(buy: str, sell: str) -> None:
    decision = decide(fx_purchase(10_000_000, buy=buy, sell=sell), amount_in={"USD": 10_000_000},
                      usage=bought_this_year(5_000_000))
    assert_rule(decision, "fx_purchase_quota", ALLOW)


def test_cn_fx_purchase_quota_null_is_no_quota() -> None:
    decision = decide(fx_purchase(10_000_000), usage=bought_this_year(5_000_000),
                      versions={"CN": version("CN", 1, fx_purchase_annual_quota=None)})
    assert_rule(decision, "fx_purchase_quota", ALLOW)


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_cn_large_value_cross_border_usd_10000(make: Any, delta: int) -> None:
    """PBoC Order [2016] No. 3, Art. 5(4): foreign currency "USD 10,000 or more"."""
    decision = decide(make("CN", 1_000_000 + delta, "USD", "JP"))
    assert_rule(decision, "large_value_report", expected_at_or_over(delta),
                reason="REPORTING_THRESHOLD")
    assert decision.outcome is expected_at_or_over(delta)


@under_at_over
def test_cn_large_value_cross_border_usd_10000_in_another_currency(delta: int) -> None:
    decision = decide(payout("CN", 7_800_000, "HKD", "JP"), amount_in={"USD": 1_000_000 + delta})
    assert_rule(decision, "large_value_report", expected_at_or_over(delta))


@under_at_over
@pytest.mark.parametrize("make", [payout, incoming])
def test_cn_large_value_cross_border_cny_200000(make: Any, delta: int) -> None:
    """Art. 5(4): RMB "200,000 or more" across the border."""
    decision = decide(make("CN", 20_000_000 + delta, "CNY", "JP"), amount_in={"USD": 2_770_000})
    assert_rule(decision, "large_value_report", expected_at_or_over(delta),
                reason="REPORTING_THRESHOLD")


@under_at_over
def test_cn_large_value_domestic_cny_500000(delta: int) -> None:
    """Art. 5(3): a natural person's domestic transfers of RMB "500,000 or more"."""
    decision = decide(payout("CN", 50_000_000 + delta, "CNY", "CN"),
                      amount_in={"USD": 6_900_000})
    assert_rule(decision, "large_value_report", expected_at_or_over(delta),
                reason="REPORTING_THRESHOLD")
    assert_rule(decide(payout("CN", 20_000_000, "CNY", "CN"), amount_in={"USD": 2_770_000}),
                "large_value_report", ALLOW)


def test_cn_large_value_cross_border_usd_10000_without_a_usd_rate_is_review() -> None:
    decision = decide(payout("CN", 100, "EUR", "JP"))
    assert_rule(decision, "large_value_report", REVIEW, reason="NO_REFERENCE_RATE")


@pytest.mark.parametrize(("tenant", "amount_minor", "currency", "amount_in"), [
    ("US", 1_000_000, "USD", {"CNY": 7_200_000}),
    ("HK", 20_000_000, "CNY", {"USD": 2_770_000})])
def test_cn_large_value_cross_border_from_abroad_usd_10000_or_cny_200000(
        tenant: str, amount_minor: int, currency: str, amount_in: dict[str, int]) -> None:
    decision = decide(incoming(tenant, amount_minor, currency, "CN"), amount_in=amount_in)
    assert_rule(decision, "large_value_report", REVIEW, code="CN", reason="REPORTING_THRESHOLD")


def test_cn_large_value_domestic_foreign_currency_usd_100000() -> None:
    decision = decide(payout("CN", 9_999_999, "USD", "CN"), amount_in={"CNY": 71_999_993})
    assert_rule(decision, "large_value_report", ALLOW)


# --- every threshold rises with the amount ------------------------------------------------


threshold_cases = [
    ("US", "currency_transaction_report", lambda a: incoming("US", a, "USD")),
    ("US", "payee_information", lambda a: payout("US", a, "USD", fields=no_address)),
    ("EU", "occasional_transaction", lambda a: incoming("EU", a, "EUR")),
    ("EU", "payer_information", lambda a: incoming("EU", a, "EUR", "CH", fields=no_address)),
    ("UK", "occasional_transaction", lambda a: payout("UK", a, "GBP")),
    ("UK", "payer_information", lambda a: incoming("UK", a, "GBP", "CH", fields=no_address)),
    ("SG", "risk_review", lambda a: payout("SG", a, "SGD")),
    ("SG", "payer_information", lambda a: incoming("SG", a, "SGD", "MY", fields=no_address)),
    ("HK", "occasional_transaction", lambda a: incoming("HK", a, "HKD")),
    ("HK", "payer_information", lambda a: incoming("HK", a, "HKD", "JP", fields=no_address)),
    ("CN", "large_value_report", lambda a: payout("CN", a, "USD", "JP")),
    ("CN", "large_value_report", lambda a: payout("CN", a, "CNY", "CN")),
    ("CN", "payout_amount_max", lambda a: payout("CN", a, "USD", "JP")),
    ("EU", "payout_amount_max", lambda a: payout("EU", a, "EUR")),
]


@pytest.mark.parametrize(("code", "rule", "make"), threshold_cases,
                         ids=[f"{c}-{r}-{i}" for i, (c, r, _) in enumerate(threshold_cases)])
@given(low=amount_st, high=amount_st)
def test_threshold_rules_are_monotonic_in_the_amount(code: str, rule: str, make: Any,
                                                      low: int, high: int) -> None:
    low, high = sorted((low, high))

    def outcome(amount_minor: int) -> Outcome:
        op = make(amount_minor)
        other = "CNY" if op.currency == "USD" else "USD"
        return result(decide(op, amount_in={other: amount_minor}), rule, code).outcome

    assert severity[outcome(low)] <= severity[outcome(high)]


@given(amount_minor=amount_st, used_low=st.integers(0, 10**12), used_high=st.integers(0, 10**12))
def test_cn_fx_purchase_quota_is_monotonic_in_the_amount_bought_before(
        amount_minor: int, used_low: int, used_high: int) -> None:
    used_low, used_high = sorted((used_low, used_high))
    low = decide(fx_purchase(amount_minor), usage=bought_this_year(used_low))
    high = decide(fx_purchase(amount_minor), usage=bought_this_year(used_high))
    assert (severity[result(low, "fx_purchase_quota").outcome]
            <= severity[result(high, "fx_purchase_quota").outcome])


# --- home regions ----------------------------------------------------------------------------


@pytest.mark.parametrize("region", regions)
@pytest.mark.parametrize("code", sorted(home))
def test_tenants_are_homed_only_in_their_jurisdictions_region(code: str, region: str) -> None:
    decision = decide(onboarding(code, region))
    if region == home[code]:
        assert_rule(decision, "home_region", ALLOW)
        assert decision.allowed
    else:
        assert_rule(decision, "home_region", DENY, reason="HOME_REGION_NOT_ALLOWED")
        assert region in result(decision, "home_region").message
        assert decision.outcome is DENY


def test_home_regions_follow_a_parameter_change() -> None:
    changed = {"EU": version("EU", 2, home_regions=frozenset({"eu-central", "eu-west"}))}
    assert decide(onboarding("EU", "eu-west"), versions=changed).allowed
    assert not decide(onboarding("EU", "eu-west")).allowed


def test_onboarding_without_a_region_asks_nothing_of_the_home_region_rule() -> None:
    assert_rule(decide(onboarding("CN", None)), "home_region", ALLOW)


# --- currencies --------------------------------------------------------------------------------

cn_currencies = ["AUD", "CAD", "CHF", "CNY", "EUR", "GBP", "HKD", "JPY", "SGD", "USD"]


@pytest.mark.parametrize("code", ["EU", "UK", "US", "SG", "HK"])
@given(currency=st.sampled_from([c.code for c in all_currencies()]))
def test_currencies_null_allows_every_currency(code: str, currency: str) -> None:
    assert catalog.jurisdiction(code).defaults()["currencies"] is None
    decision = decide(incoming(code, 100, currency), amount_in={limit_currency[code]: 100})
    assert_rule(decision, "currencies", ALLOW)


@pytest.mark.parametrize("currency", cn_currencies)
def test_cn_currencies_allowed(currency: str) -> None:
    assert catalog.jurisdiction("CN").defaults()["currencies"] == frozenset(cn_currencies)
    assert_rule(decide(payout("CN", 100, currency), amount_in={"USD": 100, "CNY": 100}),
                "currencies", ALLOW)


@pytest.mark.parametrize("op", [
    payout("CN", 100, "KRW"), incoming("CN", 100, "KRW"),
    operation(Kind.TRANSFER, "CN", 100, "KRW"),
    operation(Kind.FX_CONVERSION, "CN", 100, "KRW", sell_currency="CNY"),
    operation(Kind.FX_CONVERSION, "CN", 100, "USD", sell_currency="KRW")],
    ids=["payout", "incoming", "transfer", "buy", "sell"])
def test_cn_currencies_refuse_others(op: Operation) -> None:
    decision = decide(op, amount_in={"USD": 100, "CNY": 100})
    assert_rule(decision, "currencies", DENY, reason="CURRENCY_NOT_ALLOWED")
    assert "KRW" in result(decision, "currencies").message
    assert decision.outcome is DENY


def test_currencies_follow_a_parameter_change() -> None:
    changed = {"EU": version("EU", 1, currencies=frozenset({"EUR"}))}
    assert_rule(decide(payout("EU", 100, "EUR"), versions=changed), "currencies", ALLOW)
    assert_rule(decide(payout("EU", 100, "USD"), amount_in={"EUR": 90}, versions=changed),
                "currencies", DENY, reason="CURRENCY_NOT_ALLOWED")


def test_currencies_are_not_asked_at_onboarding() -> None:
    assert ("CN", "currencies") not in rules_asked(decide(onboarding("CN", "cn-east")))


# --- corridors -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(home))
def test_payouts_only_to_corridor_countries(code: str) -> None:
    corridors = catalog.jurisdiction(code).defaults()["corridors"]
    assert isinstance(corridors, frozenset)
    assert abroad[code] in corridors
    assert "KP" not in corridors
    assert_rule(decide(payout(code, 100, country=abroad[code])), "corridors", ALLOW)
    refused = decide(payout(code, 100, country="KP"))
    assert_rule(refused, "corridors", DENY, reason="CORRIDOR_NOT_ALLOWED")
    assert refused.outcome is DENY


def test_corridors_do_not_limit_incoming_payments() -> None:
    decision = decide(incoming("EU", 100, "EUR", "KP"))
    assert ("EU", "corridors") not in rules_asked(decision)
    assert decision.allowed


def test_corridors_follow_a_parameter_change() -> None:
    changed = {"HK": version("HK", 1, corridors=frozenset({"HK", "CN"}))}
    assert_rule(decide(payout("HK", 100, "HKD", "CN"), amount_in={"CNY": 90, "USD": 13},
                       versions=changed), "corridors", ALLOW)
    assert_rule(decide(payout("HK", 100, "HKD", "JP"), versions=changed), "corridors", DENY)


# --- per-transaction limits ------------------------------------------------------------------

payout_max = {"EU": 100_000_000, "UK": 100_000_000, "US": 100_000_000, "SG": 100_000_000,
              "HK": 1_000_000_000, "CN": 100_000_000}


@pytest.mark.parametrize("delta", [-1, 0, 1], ids=["under", "at", "over"])
@pytest.mark.parametrize("code", sorted(home))
def test_payout_amount_max_default(code: str, delta: int) -> None:
    assert catalog.jurisdiction(code).defaults()["payout_amount_max"] == payout_max[code]
    decision = decide(payout(code, payout_max[code] + delta),
                      amount_in={"CNY": payout_max[code] * 7})
    assert_rule(decision, "payout_amount_max", DENY if delta > 0 else ALLOW,
                reason="LIMIT_EXCEEDED")


def test_payout_amount_max_in_another_currency_compares_the_equivalent() -> None:
    assert_rule(decide(payout("EU", 10, "USD"), amount_in={"EUR": 100_000_001}),
                "payout_amount_max", DENY, reason="LIMIT_EXCEEDED")
    assert_rule(decide(payout("EU", 10, "USD")), "payout_amount_max", REVIEW,
                reason="NO_REFERENCE_RATE")


def test_payout_amount_max_null_is_no_limit() -> None:
    changed = {"EU": version("EU", 1, payout_amount_max=None)}
    assert_rule(decide(payout("EU", 10**14), versions=changed), "payout_amount_max", ALLOW)


@pytest.mark.parametrize("kind", [Kind.TRANSFER, Kind.FX_CONVERSION])
def test_transfer_amount_max(kind: Kind) -> None:
    sell = {"sell_currency": "USD"} if kind is Kind.FX_CONVERSION else {}
    assert_rule(decide(operation(kind, "EU", 10**14, "EUR", **sell)), "transfer_amount_max",
                ALLOW)
    changed = {"EU": version("EU", 1, transfer_amount_max=5_000_000)}
    assert_rule(decide(operation(kind, "EU", 5_000_000, "EUR", **sell), versions=changed),
                "transfer_amount_max", ALLOW)
    assert_rule(decide(operation(kind, "EU", 5_000_001, "EUR", **sell), versions=changed),
                "transfer_amount_max", DENY, reason="LIMIT_EXCEEDED")


def test_transfer_amount_max_does_not_limit_payouts() -> None:
    changed = {"EU": version("EU", 1, transfer_amount_max=1)}
    decision = decide(payout("EU", 100), versions=changed)
    assert ("EU", "transfer_amount_max") not in rules_asked(decision)
    assert decision.allowed


# --- daily and monthly limits, velocity ------------------------------------------------------

amount_limits = [
    ("tenant_daily_amount_max", Scope.TENANT, Period.DAY),
    ("tenant_monthly_amount_max", Scope.TENANT, Period.MONTH),
    ("account_daily_amount_max", Scope.ACCOUNT, Period.DAY),
    ("account_monthly_amount_max", Scope.ACCOUNT, Period.MONTH),
    ("beneficiary_daily_amount_max", Scope.BENEFICIARY, Period.DAY),
    ("beneficiary_monthly_amount_max", Scope.BENEFICIARY, Period.MONTH),
]
count_limits = [
    ("account_hourly_count_max", Scope.ACCOUNT, Period.HOUR),
    ("beneficiary_daily_count_max", Scope.BENEFICIARY, Period.DAY),
]
every_counter = [(s, p) for s in Scope for p in Period]


def usage_of(counter: tuple[Scope, Period], used: Usage) -> dict[tuple[Scope, Period], Usage]:
    """``used`` on ``counter``, and far more on every other counter (which must not count)."""
    return {c: used if c == counter else Usage(10**13, 10**6) for c in every_counter}


@pytest.mark.parametrize("delta", [-1, 0, 1], ids=["under", "at", "over"])
@pytest.mark.parametrize(("name", "scope", "period"), amount_limits)
def test_amount_limits_sum_usage_and_the_payout(name: str, scope: Scope, period: Period,
                                                delta: int) -> None:
    assert catalog.jurisdiction("EU").defaults()[name] is None
    changed = {"EU": version("EU", 1, **{name: 100_000})}
    decision = decide(payout("EU", 10_000 + delta), versions=changed,
                      usage=usage_of((scope, period), Usage(90_000, 5)))
    assert_rule(decision, "usage_limits", DENY if delta > 0 else ALLOW, reason="LIMIT_EXCEEDED")
    if delta > 0:
        assert result(decision, "usage_limits").message.startswith(name)


@pytest.mark.parametrize(("name", "scope", "period"), amount_limits)
def test_amount_limits_with_no_usage_yet(name: str, scope: Scope, period: Period) -> None:
    changed = {"SG": version("SG", 1, **{name: 100_000})}
    assert_rule(decide(payout("SG", 100_000), versions=changed), "usage_limits", ALLOW)
    assert_rule(decide(payout("SG", 100_001), versions=changed), "usage_limits", DENY)


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize(("name", "scope", "period"), count_limits)
def test_velocity_limits_count_this_payout(name: str, scope: Scope, period: Period,
                                           count: int) -> None:
    assert catalog.jurisdiction("UK").defaults()[name] is None
    changed = {"UK": version("UK", 1, **{name: 3})}
    decision = decide(payout("UK", 100), versions=changed,
                      usage=usage_of((scope, period), Usage(0, count)))
    assert_rule(decision, "usage_limits", DENY if count >= 3 else ALLOW,
                reason="VELOCITY_EXCEEDED")


def test_amount_limits_in_another_currency_need_a_reference_rate() -> None:
    changed = {"EU": version("EU", 1, tenant_daily_amount_max=100_000)}
    assert_rule(decide(payout("EU", 100, "USD"), versions=changed), "usage_limits", REVIEW,
                reason="NO_REFERENCE_RATE")
    assert_rule(decide(payout("EU", 100, "USD"), versions=changed, amount_in={"EUR": 100_001}),
                "usage_limits", DENY, reason="LIMIT_EXCEEDED")


def test_usage_limits_only_count_payouts() -> None:
    changed = {"EU": version("EU", 1, tenant_daily_amount_max=1, account_hourly_count_max=1)}
    usage = usage_of((Scope.TENANT, Period.DAY), Usage(10**13, 10**6))
    for op in (operation(Kind.TRANSFER, "EU", 10**9, "EUR"), incoming("EU", 100, "EUR")):
        decision = decide(op, versions=changed, usage=usage)
        assert ("EU", "usage_limits") not in rules_asked(decision)


@given(amount_minor=st.integers(1, 10**9), used_low=st.integers(0, 10**10),
       used_high=st.integers(0, 10**10))
def test_amount_limits_are_monotonic_in_usage(amount_minor: int, used_low: int,
                                              used_high: int) -> None:
    used_low, used_high = sorted((used_low, used_high))
    changed = {"US": version("US", 1, account_monthly_amount_max=5_000_000_000)}

    def outcome(used: int) -> Outcome:
        usage = {(Scope.ACCOUNT, Period.MONTH): Usage(used, 1)}
        decision = decide(payout("US", amount_minor, "USD"), versions=changed, usage=usage)
        return result(decision, "usage_limits").outcome

    assert severity[outcome(used_low)] <= severity[outcome(used_high)]


# --- sanctions --------------------------------------------------------------------------------

screened = [("payout", lambda c: payout(c, 100)), ("incoming", lambda c: incoming(c, 100)),
            ("onboarding", lambda c: onboarding(c, home[c]))]


@pytest.mark.parametrize(("exact", "expected", "reason"), [
    (True, DENY, "SANCTIONS_MATCH"), (False, REVIEW, "SANCTIONS_POSSIBLE_MATCH")])
@pytest.mark.parametrize("make", [m for _, m in screened], ids=[n for n, _ in screened])
@pytest.mark.parametrize("code", sorted(home))
def test_sanctions_exact_match_denies_fuzzy_match_reviews(code: str, make: Any, exact: bool,
                                                          expected: Outcome, reason: str) -> None:
    found = hit(exact)
    decision = decide(make(code), hits={code: (found,)})
    assert_rule(decision, "sanctions", expected, reason=reason)
    assert result(decision, "sanctions").message == found.reason
    assert decision.outcome is expected


def test_sanctions_an_exact_match_beats_a_higher_fuzzy_score() -> None:
    hits = (hit(False, 99, "A"), hit(True, 90, "B"), hit(False, 95, "C"))
    decision = decide(payout("EU", 100), hits={"EU": hits})
    assert_rule(decision, "sanctions", DENY, reason="SANCTIONS_MATCH")
    assert result(decision, "sanctions").message == hits[1].reason


def test_sanctions_the_best_fuzzy_match_is_the_reason() -> None:
    hits = (hit(False, 89, "A"), hit(False, 97, "B"), hit(False, 91, "C"))
    decision = decide(payout("EU", 100), hits={"EU": hits})
    assert result(decision, "sanctions").message == hits[1].reason


def test_sanctions_no_hits_pass() -> None:
    assert_rule(decide(payout("EU", 100)), "sanctions", ALLOW)


@pytest.mark.parametrize("kind", [Kind.TRANSFER, Kind.FX_CONVERSION])
def test_sanctions_are_not_asked_of_book_transfers_and_conversions(kind: Kind) -> None:
    op = operation(kind, "EU", 100, "EUR", sell_currency="USD" if kind is Kind.FX_CONVERSION
                   else None)
    decision = decide(op, hits={"EU": (hit(True),)})
    assert ("EU", "sanctions") not in rules_asked(decision)
    assert decision.allowed


# --- reference rates -------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "rule"), [
    ("EU", "occasional_transaction"), ("UK", "occasional_transaction"),
    ("US", "currency_transaction_report"), ("SG", "risk_review"),
    ("HK", "occasional_transaction"), ("CN", "large_value_report")])
def test_a_threshold_without_a_reference_rate_is_review(code: str, rule: str) -> None:
    foreign = "USD" if code in ("EU", "UK") else "EUR"
    decision = decide(incoming(code, 100, foreign))
    assert_rule(decision, rule, REVIEW, reason="NO_REFERENCE_RATE")
    assert decision.outcome is REVIEW
    converted = decide(incoming(code, 100, foreign), amount_in={limit_currency[code]: 110,
                                                                 "USD": 110, "EUR": 110})
    assert_rule(converted, rule, ALLOW)


# --- the destination's rules ---------------------------------------------------------------


def test_an_eu_payout_to_a_us_beneficiary_asks_us_as_destination() -> None:
    op = payout("EU", 100, "EUR", "US")
    assert catalog.involved(op) == (("EU", Role.ORIGIN), ("US", Role.DESTINATION))
    decision = decide(op, amount_in={"USD": 110})
    assert {rule for code, rule in rules_asked(decision) if code == "US"} == {"sanctions"}
    assert decision.versions == {"EU": 0, "US": 0}


def test_the_destinations_sanctions_hit_denies() -> None:
    decision = decide(payout("EU", 100, "EUR", "US"), hits={"US": (hit(True),)})
    assert decision.outcome is DENY
    assert [(r.jurisdiction, r.rule) for r in decision.reasons] == [("US", "sanctions")]


def test_an_incoming_payment_from_china_asks_cn_as_destination() -> None:
    op = incoming("US", 100, "USD", "CN")
    assert catalog.involved(op) == (("US", Role.ORIGIN), ("CN", Role.DESTINATION))
    cn_rules = {rule for code, rule in rules_asked(decide(op, amount_in={"CNY": 720}))
                if code == "CN"}
    assert cn_rules == {"sanctions", "large_value_report"}


@pytest.mark.parametrize(("op", "expected"), [
    (payout("EU", 100, "EUR", "FR"), (("EU", Role.ORIGIN),)),
    (payout("EU", 100, "EUR", "CH"), (("EU", Role.ORIGIN),)),
    (incoming("UK", 100, "GBP", "DE"), (("UK", Role.ORIGIN), ("EU", Role.DESTINATION))),
    (incoming("SG", 100, "SGD", "HK"), (("SG", Role.ORIGIN), ("HK", Role.DESTINATION))),
    (operation(Kind.TRANSFER, "EU", 100, "EUR", counterparty_country="US"),
     (("EU", Role.ORIGIN),)),
    (operation(Kind.FX_CONVERSION, "CN", 100, "USD", sell_currency="CNY",
               counterparty_country="US"), (("CN", Role.ORIGIN),)),
    (onboarding("EU", "eu-central"), (("EU", Role.ORIGIN),)),
    (operation(Kind.PAYOUT, "EU", 100, "EUR"), (("EU", Role.ORIGIN),)),
], ids=["same", "unserved", "uk-from-eu", "sg-from-hk", "transfer", "fx", "onboarding",
        "no-country"])
def test_involved(op: Operation, expected: tuple[tuple[str, Role], ...]) -> None:
    assert catalog.involved(op) == expected


@pytest.mark.parametrize(("country", "code"), [
    ("DE", "EU"), ("FR", "EU"), ("SE", "EU"), ("GB", "UK"), ("US", "US"), ("SG", "SG"),
    ("HK", "HK"), ("CN", "CN"), ("CH", None), ("NO", None), ("JP", None), ("ZZ", None)])
def test_of_country(country: str, code: str | None) -> None:
    assert catalog.of_country(country) == code


# --- combining results -----------------------------------------------------------------------


def test_deny_beats_review() -> None:
    decision = decide(payout("EU", 2_000_000, "EUR", "KP"))
    assert decision.outcome is DENY
    assert {(r.rule, r.outcome) for r in decision.reasons} == {
        ("corridors", DENY), ("occasional_transaction", REVIEW)}


def test_review_beats_allow() -> None:
    decision = decide(payout("EU", 2_000_000, "EUR"))
    assert decision.outcome is REVIEW
    assert [r.rule for r in decision.reasons] == ["occasional_transaction"]
    assert decision.reason_texts() == [f"REPORTING_THRESHOLD: {decision.reasons[0].message}"]


def test_reasons_hold_only_what_did_not_allow_and_an_explained_trace_every_rule_asked() -> None:
    decision = decide(payout("EU", 2_000_000, "EUR", "US"), amount_in={"USD": 2_200_000},
                      hits={"US": (hit(False),)})
    spec = catalog.jurisdiction("EU")
    eu_payout_rules = [r.name for r in spec.rules if Kind.PAYOUT in r.kinds]
    assert [r.rule for r in decision.trace] == [*eu_payout_rules, "sanctions"]
    assert [r.jurisdiction for r in decision.trace] == ["EU"] * len(eu_payout_rules) + ["US"]
    assert decision.reasons == tuple(r for r in decision.trace if r.outcome is not ALLOW)
    assert {(r.jurisdiction, r.rule) for r in decision.reasons} == {
        ("EU", "occasional_transaction"), ("US", "sanctions")}
    assert decision.outcome is REVIEW


def test_an_allowed_decision_has_no_reasons() -> None:
    decision = decide(payout("EU", 100, "EUR"))
    assert decision.allowed
    assert decision.reasons == ()
    assert decision.reason_texts() == []
    assert decision.trace
    assert all(r.outcome is ALLOW for r in decision.trace)
    assert decide(payout("EU", 100, "EUR"), explain=False) == replace(decision, trace=())


def test_without_explaining_the_trace_holds_only_the_objections() -> None:
    op = payout("EU", 2_000_000, "EUR", "US")
    kwargs: dict[str, Any] = {"amount_in": {"USD": 2_200_000}, "hits": {"US": (hit(False),)}}
    explained = decide(op, **kwargs)
    decision = decide(op, explain=False, **kwargs)
    assert decision.trace == decision.reasons == explained.reasons
    assert (decision.outcome, decision.versions) == (explained.outcome, explained.versions)


def test_versions_are_recorded_in_the_decision_and_its_results() -> None:
    versions = {"EU": version("EU", 7), "US": version("US", 3)}
    decision = decide(payout("EU", 2_000_000, "EUR", "US"), amount_in={"USD": 2_200_000},
                      versions=versions)
    assert decision.versions == {"EU": 7, "US": 3}
    assert {(r.jurisdiction, r.version) for r in decision.trace} == {("EU", 7), ("US", 3)}
    assert decision.reasons[0].version == 7


def test_a_parameter_change_moves_the_threshold() -> None:
    changed = {"EU": version("EU", 4, review_threshold=1_000_000)}
    decision = decide(payout("EU", 1_000_000, "EUR"), versions=changed)
    assert decision.outcome is REVIEW
    assert decision.versions == {"EU": 4}
    off = {"EU": version("EU", 5, review_threshold=None)}
    assert_rule(decide(payout("EU", 2_000_000, "EUR"), versions=off), "occasional_transaction",
                ALLOW)
