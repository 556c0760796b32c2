"""Policy parameters: every declared default survives its JSON form, and a proposed value is
refused, naming its field, when it is out of bounds, of the wrong type, or holds codes that are
unknown, repeated or too many. Every jurisdiction declares the same core parameters, each with
a description and a source."""

from __future__ import annotations

import itertools
import json
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.currency import all_currencies, currency
from payments.errors import InvalidInput
from policies import catalog
from policies.params import Kind, Param, codes_max, from_json, parse_changes, to_json

declared = [(code, p) for code in catalog.codes() for p in catalog.jurisdiction(code).params]
declared_ids = [f"{code}-{p.name}" for code, p in declared]
eu = catalog.jurisdiction("EU").declared
cn = catalog.jurisdiction("CN").declared
integer_kinds = (Kind.COUNT, Kind.BPS, Kind.SECONDS, Kind.SCORE)
bounded = [(code, p) for code, p in declared if p.kind in integer_kinds]
country_codes = ["".join(pair) for pair in itertools.product(string.ascii_uppercase, repeat=2)]

core = {
    "home_regions", "exportable_fields", "currencies", "corridors", "iban_countries",
    "sanctions_lists", "screening_threshold",
    "payout_amount_max", "transfer_amount_max",
    "tenant_daily_amount_max", "tenant_monthly_amount_max",
    "account_daily_amount_max", "account_monthly_amount_max",
    "beneficiary_daily_amount_max", "beneficiary_monthly_amount_max",
    "account_hourly_count_max", "beneficiary_daily_count_max",
    "fx_spread_bps_default", "fx_rate_age_s_max", "fx_quote_validity_s_default",
    "fx_quote_validity_s_max", "fx_rate_jump_bps_max",
}


def refusal(param: Param, raw: Any, field: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        from_json(param, raw, field)
    return caught.value


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "param"), declared, ids=declared_ids)
def test_every_default_round_trips_through_json(code: str, param: Param) -> None:
    stored = json.loads(json.dumps(to_json(param, param.default)))
    assert from_json(param, stored) == param.default


@pytest.mark.parametrize(("name", "expected"), [
    ("review_threshold", "15000.00"), ("payer_info_threshold", "1000.01"),
    ("payout_amount_max", "1000000.00"), ("transfer_amount_max", None),
    ("screening_threshold", 88), ("sanctions_lists", ["eu"]),
    ("home_regions", ["eu-central"]), ("iban_countries", ["BE", "DE", "ES", "FR", "IE", "IT",
                                                          "NL"]),
    ("payer_fields_required", ["account", "address", "name"]), ("currencies", None)])
def test_json_forms_of_eu_defaults(name: str, expected: Any) -> None:
    assert to_json(eu[name], eu[name].default) == expected


def test_field_maps_are_sorted_lists_by_sorted_region() -> None:
    shown = to_json(eu["exportable_fields"], eu["exportable_fields"].default)
    assert list(shown) == ["ap-southeast", "uk-south", "us-east"]
    assert shown["us-east"] == ["payee_account", "payee_name", "payer_name", "reference"]
    assert to_json(cn["exportable_fields"], cn["exportable_fields"].default) == {}


@pytest.mark.parametrize(("name", "text", "minor"), [
    ("large_value_cross_border_cny_threshold", "200000.00", 20_000_000),
    ("large_value_domestic_cny_threshold", "500000.00", 50_000_000),
    ("large_value_cross_border_usd_threshold", "10000.00", 1_000_000),
    ("fx_purchase_annual_quota", "50000.00", 5_000_000)])
def test_cn_amounts_in_their_currency(name: str, text: str, minor: int) -> None:
    assert to_json(cn[name], minor) == text
    assert from_json(cn[name], text) == minor


@pytest.mark.parametrize(("code", "param"), bounded, ids=[f"{c}-{p.name}" for c, p in bounded])
@given(data=st.data())
def test_integers_in_bounds_round_trip(code: str, param: Param, data: st.DataObject) -> None:
    value = data.draw(st.integers(param.minimum, param.maximum))
    assert from_json(param, to_json(param, value)) == value


@given(minor=st.integers(1, 999_999_999_999_999),
       name=st.sampled_from(sorted(n for n, p in cn.items() if p.kind is Kind.AMOUNT)))
def test_amounts_in_bounds_round_trip(minor: int, name: str) -> None:
    assert from_json(cn[name], to_json(cn[name], minor)) == minor


@given(codes=st.frozensets(st.sampled_from(country_codes), max_size=codes_max))
def test_country_sets_round_trip(codes: frozenset[str]) -> None:
    assert from_json(eu["corridors"], to_json(eu["corridors"], codes)) == codes


@given(codes=st.frozensets(st.sampled_from([c.code for c in all_currencies()])))
def test_currency_sets_round_trip(codes: frozenset[str]) -> None:
    assert from_json(eu["currencies"], to_json(eu["currencies"], codes)) == codes


# --- bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "param"), bounded, ids=[f"{c}-{p.name}" for c, p in bounded])
def test_integer_bounds_are_inclusive_and_refused_outside(code: str, param: Param) -> None:
    assert param.minimum is not None
    assert param.maximum is not None
    assert from_json(param, param.minimum) == param.minimum
    assert from_json(param, param.maximum) == param.maximum
    low = refusal(param, param.minimum - 1)
    assert low.field == param.name
    assert low.message == f"{param.name} must be at least {param.minimum}"
    high = refusal(param, param.maximum + 1)
    assert high.field == param.name
    assert high.message == f"{param.name} must be at most {param.maximum}"


def test_bounds_name_the_field_given() -> None:
    assert refusal(eu["screening_threshold"], 49, "changes.screening_threshold").field == (
        "changes.screening_threshold")


@pytest.mark.parametrize(("code", "param"), [(c, p) for c, p in declared
                                             if p.kind is Kind.AMOUNT],
                         ids=[f"{c}-{p.name}" for c, p in declared if p.kind is Kind.AMOUNT])
def test_amount_bounds(code: str, param: Param) -> None:
    assert param.currency is not None
    cur = currency(param.currency)
    assert param.minimum == 1
    assert from_json(param, to_json(param, 1)) == 1
    assert from_json(param, to_json(param, 999_999_999_999_999)) == 999_999_999_999_999
    zero = refusal(param, "0")
    assert zero.field == param.name
    assert "greater than zero" in zero.message
    over = refusal(param, str(10**15 // cur.scale))
    assert over.field == param.name
    assert "exceeds the maximum" in over.message


def test_amount_bounds_show_the_amount_and_its_currency() -> None:
    param = Param("floor", Kind.AMOUNT, 100_000, "A floor.", "A test.", currency="EUR",
                  minimum=100_000, maximum=200_000)
    assert refusal(param, "999.99").message == "floor must be at least 1000.00 EUR"
    assert refusal(param, "2000.01").message == "floor must be at most 2000.00 EUR"
    assert from_json(param, "1000") == 100_000


# --- wrong types -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [True, False, 88.0, "88", [88], {"value": 88}])
@pytest.mark.parametrize("name", ["screening_threshold", "fx_spread_bps_default",
                                  "fx_rate_age_s_max", "account_hourly_count_max"])
def test_integers_refuse_other_types(name: str, raw: Any) -> None:
    error = refusal(eu[name], raw)
    assert error.message == f"{name} must be a whole number"
    assert error.field == name


@pytest.mark.parametrize("raw", [15000, 15000.0, True, ["15000.00"], "15000.001", "-1.00",
                                 "1e4", " 15000.00", ""])
def test_amounts_refuse_anything_but_a_decimal_string(raw: Any) -> None:
    assert refusal(eu["review_threshold"], raw).field == "review_threshold"


@pytest.mark.parametrize("raw", ["EUR", "EUR,USD", {"EUR": True}, ("EUR",), [1], ["EUR", None],
                                 42, True])
@pytest.mark.parametrize("name", ["currencies", "corridors", "home_regions", "sanctions_lists",
                                  "payer_fields_required"])
def test_sets_refuse_anything_but_a_list_of_strings(name: str, raw: Any) -> None:
    error = refusal(eu[name], raw)
    assert error.message == f"{name} must be a list of codes"
    assert error.field == name


def test_flags_take_only_booleans() -> None:
    param = Param("enabled", Kind.FLAG, False, "A switch.", "A test.")
    assert from_json(param, True) is True
    assert from_json(param, False) is False
    assert to_json(param, True) is True
    for raw in (1, 0, "true", [True]):
        assert refusal(param, raw).message == "enabled must be true or false"


# --- codes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "bad"), [
    ("sanctions_lists", "un"), ("sanctions_lists", "OFAC"), ("sanctions_lists", ""),
    ("currencies", "ABC"), ("currencies", "eur"), ("currencies", "EURO"), ("currencies", "XXX"),
    ("currencies", "XAU"),
    ("corridors", "gb"), ("corridors", "GBR"), ("corridors", "G1"), ("corridors", ""),
    ("home_regions", "EU-central"), ("home_regions", "eucentral"), ("home_regions", "eu_central"),
    ("home_regions", "eu-"), ("home_regions", "-central"),
    ("payer_fields_required", "Name"), ("payer_fields_required", "1name"),
    ("payer_fields_required", "name-x"), ("payer_fields_required", "a" * 41),
    ("payer_fields_required", "")])
def test_unknown_codes_are_refused_naming_the_code(name: str, bad: str) -> None:
    param = eu[name]
    existing = param.default or frozenset()
    assert isinstance(existing, frozenset)
    error = refusal(param, [*sorted(existing), bad])
    assert error.field == name
    assert repr(bad) in error.message
    assert error.message.endswith(f"code in {name}")


@pytest.mark.parametrize(("name", "good"), [
    ("sanctions_lists", ["eu", "ofac", "uk"]), ("currencies", ["CLF", "JPY", "KWD"]),
    ("corridors", ["GB", "ZZ"]), ("home_regions", ["eu-central", "us-east-2", "cn-east"]),
    ("payer_fields_required", ["a", "date_of_birth", "a" * 40])])
def test_valid_codes_are_taken(name: str, good: list[str]) -> None:
    assert from_json(eu[name], good) == frozenset(good)


@pytest.mark.parametrize(("name", "word"), [
    ("sanctions_lists", "sanctions list"), ("home_regions", "region"),
    ("payer_fields_required", "field")])
def test_unknown_code_messages_say_what_kind_of_code(name: str, word: str) -> None:
    assert f"is not a valid {word} code in {name}" in refusal(eu[name], ["?"]).message


@pytest.mark.parametrize(("name", "word"), [("corridors", "country"), ("currencies", "currency")])
def test_unknown_country_and_currency_messages_say_country_and_currency(name: str,
                                                                        word: str) -> None:
    assert f"is not a valid {word} code in {name}" in refusal(eu[name], ["?"]).message


@pytest.mark.parametrize(("name", "raw"), [
    ("corridors", ["GB", "FR", "GB"]), ("currencies", ["EUR", "EUR"]),
    ("sanctions_lists", ["uk", "uk"]), ("home_regions", ["eu-central", "eu-central"]),
    ("payer_fields_required", ["name", "name"])])
def test_duplicate_codes_are_refused(name: str, raw: list[str]) -> None:
    error = refusal(eu[name], raw)
    assert error.message == f"{name} lists a code twice"
    assert error.field == name


def test_at_most_codes_max_codes() -> None:
    assert codes_max == 300
    assert from_json(eu["corridors"], country_codes[:codes_max]) == frozenset(
        country_codes[:codes_max])
    error = refusal(eu["corridors"], country_codes[:codes_max + 1])
    assert error.message == "corridors may hold at most 300 codes"
    assert error.field == "corridors"


def test_too_many_codes_is_refused_before_each_code_is_read() -> None:
    assert refusal(eu["currencies"], ["?"] * (codes_max + 1)).message == (
        "currencies may hold at most 300 codes")


def test_an_empty_list_is_an_empty_set() -> None:
    assert from_json(eu["sanctions_lists"], []) == frozenset()


# --- field maps --------------------------------------------------------------------------------


exportable = eu["exportable_fields"]


def test_field_maps_take_regions_to_field_names() -> None:
    raw = {"uk-south": ["payee_name", "reference"], "us-east": []}
    assert from_json(exportable, raw) == {"uk-south": frozenset({"payee_name", "reference"}),
                                          "us-east": frozenset()}
    assert from_json(exportable, {}) == {}


@pytest.mark.parametrize("raw", [[], ["uk-south"], "uk-south", 1, True,
                                 {f"r-{i}": [] for i in range(codes_max + 1)}])
def test_field_maps_refuse_anything_but_a_mapping(raw: Any) -> None:
    error = refusal(exportable, raw)
    assert error.message == "exportable_fields must map regions to lists of field names"
    assert error.field == "exportable_fields"


@pytest.mark.parametrize(("raw", "message"), [
    ({"UK-south": ["reference"]}, "'UK-south' is not a region code in exportable_fields"),
    ({"uksouth": ["reference"]}, "'uksouth' is not a region code in exportable_fields"),
    ({"uk-south": "reference"}, "exportable_fields must be a list of codes"),
    ({"uk-south": {"reference": True}}, "exportable_fields must be a list of codes"),
    ({"uk-south": ["Reference"]}, "'Reference' is not a valid field code in exportable_fields"),
    ({"uk-south": ["reference", "reference"]}, "exportable_fields lists a code twice"),
    ({"uk-south": ["f"] * (codes_max + 1)}, "exportable_fields may hold at most 300 codes")])
def test_field_map_errors_inside_name_the_field(raw: Any, message: str) -> None:
    error = refusal(exportable, raw, "changes.exportable_fields")
    assert error.message == message
    assert error.field == "changes.exportable_fields"


# --- null --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "param"), declared, ids=declared_ids)
def test_null_is_a_value_only_for_optional_parameters(code: str, param: Param) -> None:
    if param.optional:
        assert from_json(param, None) is None
        assert to_json(param, None) is None
    else:
        error = refusal(param, None)
        assert error.message == f"{param.name} may not be null"
        assert error.field == param.name


@pytest.mark.parametrize("name", ["currencies", "payout_amount_max", "transfer_amount_max",
                                  "review_threshold", "payer_info_threshold",
                                  "tenant_daily_amount_max", "account_hourly_count_max"])
def test_limits_and_thresholds_may_be_switched_off(name: str) -> None:
    assert eu[name].optional


@pytest.mark.parametrize("name", ["home_regions", "exportable_fields", "corridors",
                                  "iban_countries", "sanctions_lists", "screening_threshold",
                                  "payer_fields_required", "fx_spread_bps_default",
                                  "fx_rate_jump_bps_max"])
def test_core_settings_may_not_be_switched_off(name: str) -> None:
    assert not eu[name].optional


# --- proposals ---------------------------------------------------------------------------------


def test_parse_changes_parses_every_value() -> None:
    parsed = parse_changes(eu, {"review_threshold": "10000.00", "screening_threshold": 90,
                                "corridors": ["FR", "DE"], "payout_amount_max": None})
    assert parsed == {"review_threshold": 1_000_000, "screening_threshold": 90,
                      "corridors": frozenset({"FR", "DE"}), "payout_amount_max": None}


def test_parse_changes_refuses_an_empty_change() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_changes(eu, {})
    assert caught.value.message == "a change must set at least one parameter"
    assert caught.value.field == "changes"


@pytest.mark.parametrize("name", ["review_treshold", "recordkeeping_threshold",
                                  "fx_purchase_annual_quota", "", "REVIEW_THRESHOLD"])
def test_parse_changes_refuses_names_the_jurisdiction_does_not_declare(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_changes(eu, {"screening_threshold": 90, name: "1.00"}, "input.changes")
    assert caught.value.message == f"{name!r} is not a parameter of this jurisdiction"
    assert caught.value.field == "input.changes"


def test_parse_changes_names_the_parameter_that_is_wrong() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_changes(eu, {"corridors": ["FR"], "screening_threshold": 101})
    assert caught.value.field == "changes.screening_threshold"
    assert caught.value.message == "screening_threshold must be at most 100"


def test_parse_changes_reads_each_jurisdictions_own_declarations() -> None:
    assert parse_changes(cn, {"fx_purchase_annual_quota": "40000.00"}) == {
        "fx_purchase_annual_quota": 4_000_000}
    us = catalog.jurisdiction("US").declared
    assert parse_changes(us, {"recordkeeping_threshold": "3000.00"}) == {
        "recordkeeping_threshold": 300_000}


# --- declarations ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "param"), declared, ids=declared_ids)
def test_every_parameter_says_what_it_is_and_where_it_comes_from(code: str, param: Param) -> None:
    assert param.description.strip()
    assert param.source.strip()
    assert param.uncertain is None or param.uncertain.strip()


@pytest.mark.parametrize(("code", "param"), declared, ids=declared_ids)
def test_amounts_and_only_amounts_have_a_currency(code: str, param: Param) -> None:
    if param.kind is Kind.AMOUNT:
        assert param.currency is not None
        assert currency(param.currency).code == param.currency
    else:
        assert param.currency is None


@pytest.mark.parametrize("code", catalog.codes())
def test_limits_are_in_the_jurisdictions_limit_currency(code: str) -> None:
    spec = catalog.jurisdiction(code)
    for name in core:
        if spec.declared[name].kind is Kind.AMOUNT:
            assert spec.declared[name].currency == spec.limit_currency, name


@pytest.mark.parametrize("code", catalog.codes())
def test_every_jurisdiction_declares_the_core_parameters(code: str) -> None:
    assert core <= catalog.jurisdiction(code).declared.keys()


def test_the_core_parameters_are_declared_alike_everywhere() -> None:
    for name in sorted(core):
        shapes = {(p.kind, p.minimum, p.maximum, p.optional)
                  for code in catalog.codes()
                  for p in [catalog.jurisdiction(code).declared[name]]}
        assert len(shapes) == 1, (name, shapes)


def test_the_catalog_serves_six_jurisdictions() -> None:
    assert catalog.codes() == ["EU", "UK", "US", "SG", "HK", "CN"]
