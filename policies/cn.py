"""Mainland China: the Personal Information Protection Law and Cybersecurity Law (data stays in
China), SAFE's individual foreign-exchange rules (the annual purchase quota), and the PBoC's
large-value and suspicious transaction reporting measures.

Corridor's CN region is sovereign (its own database cluster inside China): by default no
personal field is allowed to leave it.
"""

from __future__ import annotations

from policies import common
from policies.model import (
    Context,
    Jurisdiction,
    Kind,
    Operation,
    Outcome,
    Params,
    Period,
    Role,
    Rule,
    Scope,
    Usage,
    Verdict,
)
from policies.params import Kind as P
from policies.params import Param

cny = "CNY"
usd = "USD"
_pipl = ("Personal Information Protection Law (2021), Art. 38-40 (cross-border provision only "
         "after a security assessment, standard contract or certification, with separate "
         "consent under Art. 39) and Cybersecurity Law (2017), Art. 37 (storage in China).")
_quota = ("Administrative Measures on Individual Foreign Exchange (PBoC Order [2006] No. 3) "
          "and their Implementation Rules (Huifa [2007] No. 1), Art. 2: an annual facilitation "
          "quota of USD 50,000 equivalent per individual for purchases of foreign exchange.")
_large_value = ("Administrative Measures for Financial Institutions' Reporting of Large-Value "
                "and Suspicious Transactions (PBoC Order [2016] No. 3, amended by Order [2018] "
                "No. 2), Art. 5.")
_cross_border_usd = _large_value + (" Art. 5(4): a natural person's cross-border transfers of "
                                    "USD 10,000 or more (foreign currency) in a day.")
_cross_border_cny = _large_value + (" Art. 5(4): a natural person's cross-border transfers of "
                                    "RMB 200,000 or more in a day.")
_domestic_cny = _large_value + (" Art. 5(3): a natural person's domestic transfers of RMB "
                                "500,000 or more in a day.")
_domestic_usd = _large_value + (" Art. 5(3): a natural person's domestic transfers of foreign "
                                "currency worth USD 100,000 or more in a day.")
_per_individual = ("Corridor cannot tell individual from business account holders; it applies "
                   "the individual figures, the strictest, to every account.")


def _fx_quota(op: Operation, ctx: Context, p: Params) -> Verdict | None:
    quota = p["fx_purchase_annual_quota"]
    if quota is None or op.sell_currency != cny or op.currency == cny:
        return None
    assert isinstance(quota, int)
    bought = common.amount(op, ctx, usd)
    if bought is None:
        return common.no_rate(usd, "the annual FX purchase quota")
    used = ctx.usage.get((Scope.ACCOUNT, Period.YEAR), Usage(0, 0)).amount_minor
    if used + bought > quota:
        return Verdict(Outcome.DENY, "FX_QUOTA_EXCEEDED",
                       f"the account bought {common.shown(used, usd)} of foreign currency this "
                       f"year; {common.shown(bought, usd)} more passes the annual quota of "
                       f"{common.shown(quota, usd)}")
    return None


def _large_value_rule(op: Operation, ctx: Context, p: Params) -> Verdict | None:
    """Single transactions; the same-day cumulative figure is left to the reporting run.
    Domestic only when both ends are in China: asked as the destination, CN sees money
    crossing its border whatever the currency."""
    domestic = ctx.role is Role.ORIGIN and op.counterparty_country == "CN"
    if domestic and op.currency == cny:
        name, code = "large_value_domestic_cny_threshold", cny
    elif domestic:
        name, code = "large_value_domestic_usd_threshold", usd
    elif op.currency == cny:
        name, code = "large_value_cross_border_cny_threshold", cny
    else:
        name, code = "large_value_cross_border_usd_threshold", usd
    found = common.reached(op, ctx, p, name, code)
    if not isinstance(found, tuple):
        return found
    value, threshold = found
    kind = "domestic" if domestic else "cross-border"
    return Verdict(Outcome.REVIEW, "REPORTING_THRESHOLD",
                   f"large-value {kind} transfer report (PBoC Order [2016] No. 3, Art. 5): "
                   f"{common.shown(value, code)} is at or over {common.shown(threshold, code)}")


def _threshold(name: str, default: int, code: str, source: str) -> Param:
    return Param(name, P.AMOUNT, default,
                 "A transfer at or over this amount goes to review for a large-value report.",
                 source, currency=code, minimum=1, maximum=common.amount_limit_max,
                 optional=True, uncertain=_per_individual)


policy = Jurisdiction(
    code="CN", name="Mainland China", limit_currency=usd, countries=frozenset({"CN"}),
    params=(
        common.home_region_param(frozenset({"cn-east"}), _pipl),
        common.exportable_fields_param({}, _pipl),
        common.currencies_param(
            frozenset({"CNY", "USD", "EUR", "HKD", "GBP", "JPY", "SGD", "AUD", "CAD", "CHF"}),
            "Corridor's CN partner bank's settlement currencies: commercial, not a "
            "regulation."),
        common.corridors_param(frozenset({"CN", "HK", "SG", "US", "GB", "DE", "FR", "JP"}),
                               "Corridor's commercial coverage, not a regulation."),
        common.iban_countries_param(frozenset({"CN"}),
                                    "Corridor's CN partner bank (CNAPS account numbers): "
                                    "commercial."),
        *common.limit_params(usd, payout_amount_max=100_000_000, transfer_amount_max=None),
        Param("fx_purchase_annual_quota", P.AMOUNT, 5_000_000,
              "Foreign currency an account may buy with CNY per calendar year, in USD "
              "equivalent.", _quota, currency=usd, minimum=1,
              maximum=common.amount_limit_max, optional=True, uncertain=_per_individual),
        _threshold("large_value_cross_border_usd_threshold", 1_000_000, usd, _cross_border_usd),
        _threshold("large_value_cross_border_cny_threshold", 20_000_000, cny, _cross_border_cny),
        _threshold("large_value_domestic_cny_threshold", 50_000_000, cny, _domestic_cny),
        _threshold("large_value_domestic_usd_threshold", 10_000_000, usd, _domestic_usd),
        *common.screening_params(
            frozenset(), "Anti-Foreign Sanctions Law (2021), Art. 12: organisations in China "
            "may not implement foreign states' discriminatory measures; China implements UN "
            "Security Council sanctions by MFA notices.",
            uncertain="No list is screened by default: the UN list cannot be imported yet, and "
                      "screening against OFAC, EU or UK lists in China is a legal judgement "
                      "for the compliance officer."),
        *common.fx_params(),
    ),
    rules=(
        common.home_region_rule(_pipl),
        common.currency_rule,
        common.corridor_rule("Corridor's commercial coverage."),
        *common.transaction_limit_rules(usd),
        common.usage_rule(usd),
        Rule("fx_purchase_quota", frozenset({Kind.FX_CONVERSION}), _fx_quota, _quota),
        Rule("large_value_report", common.crossing, _large_value_rule, _large_value,
             common.both_ends),
        common.sanctions_rule("Anti-Foreign Sanctions Law (2021); MFA notices."),
    ),
)
