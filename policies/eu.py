"""European Union: Directive (EU) 2015/849 (AMLD) as transposed by the member states, the
Transfer of Funds Regulation (EU) 2023/1113 (TFR), the GDPR on transfers of personal data, and
the EU's restrictive measures (consolidated financial sanctions list)."""

from __future__ import annotations

from policies import common
from policies.model import Jurisdiction

members = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})
eur = "EUR"

_amld_occasional = ("Directive (EU) 2015/849, Art. 11(b)(i): customer due diligence for an "
                    "occasional transaction of EUR 15,000 or more, single or linked.")
_tfr = ("Regulation (EU) 2023/1113 (TFR), Art. 4(1)-(2) payer and payee information; Art. 5(1) "
        "transfers within the Union need the payment account numbers; Art. 6(2) transfers "
        "of EUR 1,000 or less from outside the Union need names and accounts only; Art. 7-8 "
        "the payee's provider detects missing information and rejects or suspends.")
_gdpr = ("Regulation (EU) 2016/679 (GDPR), Art. 44-46: personal data leaves the EEA only to an "
         "adequate country or under appropriate safeguards; Corridor keeps EU tenants' personal "
         "data in eu-central and sends other regions only what a payment needs.")

policy = Jurisdiction(
    code="EU", name="European Union", limit_currency=eur, countries=members,
    params=(
        common.home_region_param(frozenset({"eu-central"}), _gdpr),
        common.exportable_fields_param(
            {"uk-south": common.travel_fields,
             "us-east": common.travel_fields_minimal,
             "ap-southeast": common.travel_fields_minimal},
            _gdpr + " The UK has an adequacy decision (Commission Implementing Decision "
            "(EU) 2021/1772); the US under the EU-US Data Privacy Framework (2023/1795) only "
            "for certified recipients.",
            uncertain="Which fields a destination rail needs is Corridor's reading of the "
                      "TFR; no transfer to cn-east is allowed by default."),
        common.currencies_param(None),
        common.corridors_param(members | frozenset({"GB", "US", "SG", "HK", "CH", "NO", "IS",
                                                    "LI"}),
                               "Corridor's commercial coverage (rails and partner banks), "
                               "not a regulation."),
        common.iban_countries_param(frozenset({"DE", "FR", "NL", "ES", "IT", "BE", "IE"}),
                                    "Countries where Corridor's EU issuing partner banks hold "
                                    "account ranges: commercial, not a regulation."),
        *common.limit_params(eur, payout_amount_max=100_000_000, transfer_amount_max=None),
        common.review_threshold_param(
            1_500_000, eur, "A payout or incoming payment at or over this amount goes to "
            "review (enhanced due diligence of an occasional transaction).", _amld_occasional,
            uncertain="Regulation (EU) 2024/1624 (AMLR), Art. 19(1)(b), lowers the figure to "
                      "EUR 10,000 from 10 July 2027."),
        *common.travel_info_params(eur, 100_001, frozenset({"name", "account", "address"}),
                                   _tfr, uncertain="Art. 4(1)(c) allows the payer's official "
                                   "document number, customer number or date and place of "
                                   "birth instead of the address; Corridor only sees the "
                                   "address field."),
        *common.screening_params(frozenset({"eu"}),
                                 "Council Regulation (EU) No 269/2014 and the other restrictive "
                                 "measures: no funds made available to listed persons; the "
                                 "Commission's consolidated list (FSF)."),
        *common.fx_params(),
    ),
    rules=(
        common.home_region_rule(_gdpr),
        common.currency_rule,
        common.corridor_rule("Corridor's commercial coverage."),
        *common.transaction_limit_rules(eur),
        common.usage_rule(eur),
        common.threshold_rule("occasional_transaction", "review_threshold", eur,
                              common.crossing, _amld_occasional,
                              "occasional transaction due diligence (AMLD Art. 11(b)(i))"),
        common.travel_info_rule(eur, _tfr, members),
        common.sanctions_rule("Council Regulation (EU) No 269/2014, Art. 2."),
    ),
)
