"""Hong Kong: the Anti-Money Laundering and Counter-Terrorist Financing Ordinance (Cap. 615,
AMLO) Schedule 2, the Personal Data (Privacy) Ordinance (Cap. 486), and the United Nations
Sanctions Ordinance (Cap. 537)."""

from __future__ import annotations

from policies import common
from policies.model import Jurisdiction

hkd = "HKD"
_occasional = ("AMLO Schedule 2, s. 3(1)(b): customer due diligence before an occasional "
               "transaction of HK$120,000 or more (single or linked).")
_wire = ("AMLO Schedule 2, s. 3(1)(c) and s. 12: wire transfers of HK$8,000 or more carry the "
         "originator's name, account number and address (or ID number, or date and place of "
         "birth); below it, name and account.")
_pdpo = ("Personal Data (Privacy) Ordinance (Cap. 486): s. 33 (transfer restrictions) is not "
         "in force; Corridor keeps HK tenants' personal data in ap-southeast by design.")

policy = Jurisdiction(
    code="HK", name="Hong Kong SAR", limit_currency=hkd, countries=frozenset({"HK"}),
    params=(
        common.home_region_param(frozenset({"ap-southeast"}), _pdpo),
        common.exportable_fields_param(
            {"eu-central": common.travel_fields,
             "uk-south": common.travel_fields,
             "us-east": common.travel_fields_minimal},
            _pdpo, uncertain="No transfer to cn-east is allowed by default; mainland "
                             "transfers are a policy choice for the compliance officer."),
        common.currencies_param(None),
        common.corridors_param(frozenset({"HK", "SG", "US", "GB", "DE", "FR", "NL", "JP"}),
                               "Corridor's commercial coverage, not a regulation."),
        common.iban_countries_param(frozenset({"HK"}),
                                    "Corridor's HK partner bank (FPS account numbers): "
                                    "commercial."),
        *common.limit_params(hkd, payout_amount_max=1_000_000_000, transfer_amount_max=None),
        common.review_threshold_param(
            12_000_000, hkd, "A payout or incoming payment at or over this amount goes to "
            "review (due diligence of an occasional transaction).", _occasional),
        *common.travel_info_params(hkd, 800_000, frozenset({"name", "account", "address"}),
                                   _wire),
        *common.screening_params(frozenset({"ofac", "eu", "uk"}),
                                 "United Nations Sanctions Ordinance (Cap. 537) implements "
                                 "the UN Security Council lists.",
                                 uncertain="The UN list is not importable yet; OFAC, EU and UK "
                                           "lists are a proxy, not the legal basis in HK."),
        *common.fx_params(),
    ),
    rules=(
        common.home_region_rule(_pdpo),
        common.currency_rule,
        common.corridor_rule("Corridor's commercial coverage."),
        *common.transaction_limit_rules(hkd),
        common.usage_rule(hkd),
        common.threshold_rule("occasional_transaction", "review_threshold", hkd,
                              common.crossing, _occasional,
                              "occasional transaction due diligence (AMLO Sch. 2 s. 3(1)(b))"),
        common.travel_info_rule(hkd, _wire, frozenset({"HK"})),
        common.sanctions_rule("United Nations Sanctions Ordinance (Cap. 537)."),
    ),
)
