"""United States: the Bank Secrecy Act's rules at 31 CFR Chapter X (currency transaction
reports, funds-transfer recordkeeping and the travel rule) and OFAC sanctions (31 CFR
Chapter V)."""

from __future__ import annotations

from policies import common
from policies.model import Jurisdiction
from policies.params import Kind as P
from policies.params import Param

usd = "USD"
_ctr = ("31 CFR 1010.311: a currency transaction report for a transaction in currency of more "
        "than USD 10,000 (1010.313: multiple transactions aggregate).")
_recordkeeping = ("31 CFR 1010.410(e)-(f): for funds transfers of USD 3,000 or more the "
                  "originator's institution records and passes on the recipient's name, "
                  "address and account (the travel rule).")
_glba = ("No federal data-localisation rule applies; Corridor keeps US tenants' personal data "
         "in us-east by design (Gramm-Leach-Bliley Act privacy safeguards).")

policy = Jurisdiction(
    code="US", name="United States", limit_currency=usd, countries=frozenset({"US"}),
    params=(
        common.home_region_param(frozenset({"us-east"}), _glba),
        common.exportable_fields_param(
            {"eu-central": common.travel_fields,
             "uk-south": common.travel_fields,
             "ap-southeast": common.travel_fields_minimal},
            _glba, uncertain="No transfer to cn-east is allowed by default."),
        common.currencies_param(None),
        common.corridors_param(frozenset({"US", "GB", "SG", "HK", "CA", "MX", "DE", "FR", "NL",
                                          "ES", "IT", "IE", "BE"}),
                               "Corridor's commercial coverage, not a regulation."),
        common.iban_countries_param(frozenset({"US"}),
                                    "Corridor's US partner bank (ACH/Fedwire routing numbers): "
                                    "commercial."),
        *common.limit_params(usd, payout_amount_max=100_000_000, transfer_amount_max=None),
        common.review_threshold_param(
            1_000_001, usd, "A payout or incoming payment over USD 10,000 goes to review.",
            _ctr, uncertain="The CTR rule concerns transactions in currency (cash); Corridor "
                            "moves no cash and applies the figure to funds transfers as a "
                            "review trigger, which is stricter than the rule."),
        Param("recordkeeping_threshold", P.AMOUNT, 300_000,
              "Payouts at or over this amount must carry the payee's address (they are "
              "refused without it).", _recordkeeping, currency=usd, minimum=1,
              maximum=common.amount_limit_max, optional=True),
        *common.screening_params(frozenset({"ofac"}),
                                 "31 CFR Chapter V (OFAC regulations): no dealings with "
                                 "persons on the Specially Designated Nationals list."),
        *common.fx_params(),
    ),
    rules=(
        common.home_region_rule(_glba),
        common.currency_rule,
        common.corridor_rule("Corridor's commercial coverage."),
        *common.transaction_limit_rules(usd),
        common.usage_rule(usd),
        common.threshold_rule("currency_transaction_report", "review_threshold", usd,
                              common.crossing, _ctr, "currency transaction report threshold"),
        common.payee_info_rule("recordkeeping_threshold", usd, frozenset({"address"}),
                               _recordkeeping),
        common.sanctions_rule("31 CFR Chapter V."),
    ),
)
