"""Singapore: MAS Notice PSN01 (AML/CFT for holders of payment services licences, specified
payment services), the Personal Data Protection Act 2012, and MAS targeted financial
sanctions."""

from __future__ import annotations

from policies import common
from policies.model import Jurisdiction

sgd = "SGD"
_psn01_wire = ("MAS Notice PSN01, para. 13 (value transfers): a cross-border value transfer "
               "above S$1,500 carries the payer's name, account and address (or ID number, "
               "or date and place of birth); at or below it, name and account.")
_pdpa = ("Personal Data Protection Act 2012, s. 26 and the PDP Regulations 2021, Part 3: "
         "transfers out of Singapore only with comparable protection; SG tenants' personal "
         "data stays in ap-southeast.")

policy = Jurisdiction(
    code="SG", name="Singapore", limit_currency=sgd, countries=frozenset({"SG"}),
    params=(
        common.home_region_param(frozenset({"ap-southeast"}), _pdpa),
        common.exportable_fields_param(
            {"eu-central": common.travel_fields,
             "uk-south": common.travel_fields,
             "us-east": common.travel_fields_minimal},
            _pdpa, uncertain="No transfer to cn-east is allowed by default."),
        common.currencies_param(None),
        common.corridors_param(frozenset({"SG", "HK", "MY", "ID", "US", "GB", "AU", "DE",
                                          "FR", "NL"}),
                               "Corridor's commercial coverage, not a regulation."),
        common.iban_countries_param(frozenset({"SG"}),
                                    "Corridor's SG partner bank (FAST account numbers): "
                                    "commercial."),
        *common.limit_params(sgd, payout_amount_max=100_000_000, transfer_amount_max=None),
        common.review_threshold_param(
            2_000_000, sgd, "A payout or incoming payment at or over this amount goes to "
            "review.", "Corridor's risk default.",
            uncertain="PSN01 sets no single review or reporting threshold for account-based "
                      "transfers: suspicious transactions are reported to STRO at any amount "
                      "(CDSA s. 45). S$20,000 mirrors the cash threshold of the Precious "
                      "Stones and Metals Act and is a risk choice, not a MAS figure."),
        *common.travel_info_params(sgd, 150_001, frozenset({"name", "account", "address"}),
                                   _psn01_wire),
        *common.screening_params(frozenset({"ofac", "eu", "uk"}),
                                 "MAS Regulations under the Monetary Authority of Singapore "
                                 "Act (e.g. MAS (Sanctions and Freezing of Assets of Persons) "
                                 "Regulations) implement the UN Security Council lists.",
                                 uncertain="Corridor cannot import the UN list yet; OFAC, EU "
                                           "and UK lists cover most UN designations but are "
                                           "not the legal basis in Singapore."),
        *common.fx_params(),
    ),
    rules=(
        common.home_region_rule(_pdpa),
        common.currency_rule,
        common.corridor_rule("Corridor's commercial coverage."),
        *common.transaction_limit_rules(sgd),
        common.usage_rule(sgd),
        common.threshold_rule("risk_review", "review_threshold", sgd, common.crossing,
                              "Corridor's risk default.", "large payment review"),
        common.travel_info_rule(sgd, _psn01_wire, frozenset({"SG"})),
        common.sanctions_rule("MAS targeted financial sanctions regulations."),
    ),
)
