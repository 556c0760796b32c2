"""United Kingdom: the Money Laundering, Terrorist Financing and Transfer of Funds (Information
on the Payer) Regulations 2017 (MLR 2017), UK GDPR, and HM Treasury (OFSI) financial
sanctions."""

from __future__ import annotations

from policies import common
from policies.model import Jurisdiction

gbp = "GBP"
eur = "EUR"
"""MLR 2017 states its thresholds in euro; they are applied in euro, converted at the
reference rate of the day."""
_occasional = ("MLR 2017, reg. 27(2)(a) and 27(2)(b): customer due diligence for an occasional "
               "transaction of EUR 15,000 or more (or a transfer of funds over EUR 1,000).")
_transfer_of_funds = ("MLR 2017, Part 7A (inserted by SI 2022/860) and retained Regulation (EU) "
                      "2015/847, Art. 4-6 and 7-8: payer and payee information; transfers of "
                      "EUR 1,000 or less from outside the UK need names and accounts only.")
_uk_gdpr = ("UK GDPR, Art. 44-46 and the Data Protection Act 2018: restricted transfers need "
            "adequacy regulations or safeguards; UK tenants' personal data stays in uk-south.")

policy = Jurisdiction(
    code="UK", name="United Kingdom", limit_currency=gbp, countries=frozenset({"GB"}),
    params=(
        common.home_region_param(frozenset({"uk-south"}), _uk_gdpr),
        common.exportable_fields_param(
            {"eu-central": common.travel_fields,
             "us-east": common.travel_fields_minimal,
             "ap-southeast": common.travel_fields_minimal},
            _uk_gdpr + " The EEA is adequate under the Data Protection Act 2018, Sch. 21, "
            "para. 5; the US under the UK Extension to the Data Privacy Framework (2023).",
            uncertain="No transfer to cn-east is allowed by default."),
        common.currencies_param(None),
        common.corridors_param(frozenset({"GB", "US", "SG", "HK", "CH", "NO"}) | frozenset({
            "AT", "BE", "DE", "DK", "ES", "FI", "FR", "IE", "IT", "LU", "NL", "PL", "PT", "SE"}),
            "Corridor's commercial coverage, not a regulation."),
        common.iban_countries_param(frozenset({"GB"}),
                                    "Corridor's UK issuing partner bank: commercial."),
        *common.limit_params(gbp, payout_amount_max=100_000_000, transfer_amount_max=None),
        common.review_threshold_param(
            1_500_000, eur, "A payout or incoming payment at or over this amount (converted "
            "to euro at the reference rate) goes to review (due diligence of an occasional "
            "transaction).", _occasional),
        *common.travel_info_params(eur, 100_001, frozenset({"name", "account", "address"}),
                                   _transfer_of_funds),
        *common.screening_params(frozenset({"uk"}),
                                 "Sanctions and Anti-Money Laundering Act 2018 and the "
                                 "regime regulations made under it; OFSI's consolidated list / "
                                 "the UK Sanctions List."),
        *common.fx_params(),
    ),
    rules=(
        common.home_region_rule(_uk_gdpr),
        common.currency_rule,
        common.corridor_rule("Corridor's commercial coverage."),
        *common.transaction_limit_rules(gbp),
        common.usage_rule(gbp),
        common.threshold_rule("occasional_transaction", "review_threshold", eur,
                              common.crossing, _occasional,
                              "occasional transaction due diligence (MLR 2017 reg. 27)"),
        common.travel_info_rule(eur, _transfer_of_funds, frozenset({"GB"})),
        common.sanctions_rule("Sanctions and Anti-Money Laundering Act 2018."),
    ),
)
