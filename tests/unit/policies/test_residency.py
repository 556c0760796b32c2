"""Fields crossing regions: both policies must allow them; CN's defaults let nothing out or
in, and an approved change can open exactly the fields it names."""

from __future__ import annotations

import pytest

from policies import catalog
from policies.residency import fields_allowed


def _defaults(code: str) -> dict[str, object]:
    return dict(catalog.jurisdiction(code).defaults())


def test_eu_and_uk_exchange_what_a_payment_needs() -> None:
    got = fields_allowed(_defaults("EU"), "eu-central", _defaults("UK"), "uk-south")
    assert got == {"payee_name", "payee_account", "payer_name", "payer_account", "reference"}


def test_only_fields_both_ends_allow_cross() -> None:
    got = fields_allowed(_defaults("EU"), "eu-central", _defaults("US"), "us-east")
    assert got == {"payee_name", "payee_account", "payer_name", "reference"}


@pytest.mark.parametrize(("other", "region"), [("EU", "eu-central"), ("SG", "ap-southeast"),
                                          ("US", "us-east")])
def test_cn_sends_and_receives_nothing_by_default(other: str, region: str) -> None:
    assert fields_allowed(_defaults("CN"), "cn-east", _defaults(other), region) == set()
    assert fields_allowed(_defaults(other), region, _defaults("CN"), "cn-east") == set()


def test_an_approved_change_opens_exactly_the_fields_it_names() -> None:
    cn = _defaults("CN")
    cn["exportable_fields"] = {"ap-southeast": frozenset({"payee_name", "payee_account"})}
    sg = _defaults("SG")
    sg["exportable_fields"] = {"cn-east": frozenset({"payee_name", "payee_account",
                                                     "payer_name"})}
    assert fields_allowed(cn, "cn-east", sg, "ap-southeast") == {"payee_name",
                                                                  "payee_account"}


def test_a_payment_in_its_own_region_does_not_cross() -> None:
    with pytest.raises(ValueError, match="does not cross"):
        fields_allowed(_defaults("SG"), "ap-southeast", _defaults("HK"), "ap-southeast")
