"""Rules and parameter declarations that several jurisdictions share, built with each
jurisdiction's own figures and citations.

Every rule reads its parameters by name and returns a ``Verdict`` when it does not allow, or
``None``. A limit set to ``None`` is off.
"""

from __future__ import annotations

from payments.currency import currency as lookup_currency
from payments.money import format_amount
from policies.model import (
    Context,
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

money_out = frozenset({Kind.PAYOUT})
money_moving = frozenset({Kind.TRANSFER, Kind.FX_CONVERSION, Kind.PAYOUT, Kind.INCOMING_PAYMENT})
crossing = frozenset({Kind.PAYOUT, Kind.INCOMING_PAYMENT})
both_ends = frozenset({Role.ORIGIN, Role.DESTINATION})
score_max = 100
amount_limit_max = 999_999_999_999_999

commercial = ("Corridor's commercial or risk default, not a figure from a regulation: set it to "
              "the partner agreement and the risk assessment.")


def shown(minor: int, code: str) -> str:
    return f"{code} {format_amount(minor, lookup_currency(code))}"


def amount(op: Operation, ctx: Context, code: str) -> int | None:
    """The operation's amount in ``code`` (None: no reference rate to convert it)."""
    return op.amount_minor if op.currency == code else ctx.amount_in.get(code)


def no_rate(code: str, what: str) -> Verdict:
    return Verdict(Outcome.REVIEW, "NO_REFERENCE_RATE",
                   f"no reference rate converts the amount into {code} to compare with {what}")


def reached(op: Operation, ctx: Context, p: Params, param: str,
            code: str) -> tuple[int, int] | Verdict | None:
    """The amount in ``code`` and the threshold in ``param`` when the amount is at or over
    it; a review when the amount cannot be converted; None below it or with the threshold
    off."""
    threshold = p[param]
    if threshold is None:
        return None
    assert isinstance(threshold, int)
    value = amount(op, ctx, code)
    if value is None:
        return no_rate(code, f"the {param} of {shown(threshold, code)}")
    return (value, threshold) if value >= threshold else None


# --- where tenants live and what leaves ------------------------------------------------------

def home_region_param(regions: frozenset[str], source: str) -> Param:
    return Param("home_regions", P.REGIONS, regions,
                 "Regions that may be the home of this jurisdiction's tenants and hold their "
                 "personal data.", source)


travel_fields = frozenset({"payee_name", "payee_account", "payer_name", "payer_account",
                           "reference"})
"""What a payment carries across: the payer and payee information of the travel rule."""
travel_fields_minimal = travel_fields - {"payer_account"}
"""The same without the payer's account number, for destinations with weaker protection."""


def exportable_fields_param(default: dict[str, frozenset[str]], source: str,
                            uncertain: str | None = None) -> Param:
    return Param("exportable_fields", P.FIELD_MAP, default,
                 "Fields of a payment that may be sent to another region, per destination "
                 "region (cross-region settlement sends no other field).", source,
                 uncertain=uncertain)


def _home_region(op: Operation, ctx: Context, p: Params) -> Verdict | None:
    allowed = p["home_regions"]
    assert isinstance(allowed, frozenset)
    if op.region is not None and op.region not in allowed:
        return Verdict(Outcome.DENY, "HOME_REGION_NOT_ALLOWED",
                       f"tenants of this jurisdiction may be homed only in "
                       f"{', '.join(sorted(allowed))}, not {op.region}")
    return None


def home_region_rule(source: str) -> Rule:
    return Rule("home_region", frozenset({Kind.ONBOARDING}), _home_region, source)


# --- currencies, corridors, account details ------------------------------------------------------

def currencies_param(codes: frozenset[str] | None, source: str = commercial) -> Param:
    return Param("currencies", P.CURRENCIES, codes,
                 "Currencies the jurisdiction's tenants may move, buy and pay out (null: "
                 "every ISO 4217 currency).", source, optional=True)


def _currencies(op: Operation, ctx: Context, p: Params) -> Verdict | None:
    allowed = p["currencies"]
    if allowed is None:
        return None
    assert isinstance(allowed, frozenset)
    for code in (op.currency, op.sell_currency):
        if code is not None and code not in allowed:
            return Verdict(Outcome.DENY, "CURRENCY_NOT_ALLOWED",
                           f"{code} is not an allowed currency in this jurisdiction")
    return None


currency_rule = Rule("currencies", money_moving, _currencies, commercial)


def corridors_param(countries: frozenset[str], source: str) -> Param:
    return Param("corridors", P.COUNTRIES, countries,
                 "Countries the jurisdiction's tenants may pay out to.", source)


def _corridors(op: Operation, ctx: Context, p: Params) -> Verdict | None:
    allowed = p["corridors"]
    assert isinstance(allowed, frozenset)
    if op.counterparty_country is not None and op.counterparty_country not in allowed:
        return Verdict(Outcome.DENY, "CORRIDOR_NOT_ALLOWED",
                       f"payouts to {op.counterparty_country} are not allowed")
    return None


def corridor_rule(source: str) -> Rule:
    return Rule("corridors", money_out, _corridors, source)


def iban_countries_param(countries: frozenset[str], source: str) -> Param:
    return Param("iban_countries", P.COUNTRIES, countries,
                 "Countries whose account details (IBANs, local numbers) the jurisdiction's "
                 "tenants may be issued.", source)


# --- limits ---------------------------------------------------------------------------------

_limit_scopes = (
    ("tenant_daily_amount_max", Scope.TENANT, Period.DAY),
    ("tenant_monthly_amount_max", Scope.TENANT, Period.MONTH),
    ("account_daily_amount_max", Scope.ACCOUNT, Period.DAY),
    ("account_monthly_amount_max", Scope.ACCOUNT, Period.MONTH),
    ("beneficiary_daily_amount_max", Scope.BENEFICIARY, Period.DAY),
    ("beneficiary_monthly_amount_max", Scope.BENEFICIARY, Period.MONTH),
)
_velocity_scopes = (
    ("account_hourly_count_max", Scope.ACCOUNT, Period.HOUR),
    ("beneficiary_daily_count_max", Scope.BENEFICIARY, Period.DAY),
)
usage_limits = tuple((n, s, p) for n, s, p in _limit_scopes + _velocity_scopes)
"""Every (parameter, scope, period) of a usage limit; the counters kept are exactly these."""


def limit_params(code: str, payout_amount_max: int | None,
                 transfer_amount_max: int | None) -> tuple[Param, ...]:
    """Per-transaction, daily and monthly limits and velocity; all commercial defaults in the
    jurisdiction's limit currency ``code``."""
    per_tx = (
        Param("payout_amount_max", P.AMOUNT, payout_amount_max,
              "The largest single payout.", commercial, currency=code, minimum=1,
              maximum=amount_limit_max, optional=True),
        Param("transfer_amount_max", P.AMOUNT, transfer_amount_max,
              "The largest single book transfer or FX conversion.", commercial, currency=code,
              minimum=1, maximum=amount_limit_max, optional=True),
    )
    amounts = tuple(
        Param(name, P.AMOUNT, None,
              f"Payouts per {scope.value} per calendar {period.value} (UTC), summed.",
              commercial, currency=code, minimum=1, maximum=amount_limit_max, optional=True)
        for name, scope, period in _limit_scopes)
    counts = tuple(
        Param(name, P.COUNT, None,
              f"Velocity: payouts per {scope.value} per {period.value} (UTC).",
              commercial, minimum=1, maximum=1_000_000, optional=True)
        for name, scope, period in _velocity_scopes)
    return per_tx + amounts + counts


def _transaction_max(name: str, code: str, op: Operation, ctx: Context,
                     p: Params) -> Verdict | None:
    limit = p[name]
    if limit is None:
        return None
    assert isinstance(limit, int)
    value = amount(op, ctx, code)
    if value is None:
        return no_rate(code, f"the limit of {shown(limit, code)}")
    if value > limit:
        return Verdict(Outcome.DENY, "LIMIT_EXCEEDED",
                       f"{shown(value, code)} is over the single-transaction limit of "
                       f"{shown(limit, code)}")
    return None


def transaction_limit_rules(code: str) -> tuple[Rule, ...]:
    def payout(op: Operation, ctx: Context, p: Params) -> Verdict | None:
        return _transaction_max("payout_amount_max", code, op, ctx, p)

    def transfer(op: Operation, ctx: Context, p: Params) -> Verdict | None:
        return _transaction_max("transfer_amount_max", code, op, ctx, p)

    return (Rule("payout_amount_max", money_out, payout, commercial),
            Rule("transfer_amount_max", frozenset({Kind.TRANSFER, Kind.FX_CONVERSION}),
                 transfer, commercial))


def usage_rule(code: str) -> Rule:
    """Daily and monthly sums and velocity counts, per tenant, account and beneficiary."""

    def check(op: Operation, ctx: Context, p: Params) -> Verdict | None:
        for name, scope, period in _limit_scopes:
            limit = p[name]
            if limit is None:
                continue
            assert isinstance(limit, int)
            value = amount(op, ctx, code)
            if value is None:
                return no_rate(code, name)
            used = ctx.usage.get((scope, period), Usage(0, 0)).amount_minor
            if used + value > limit:
                return Verdict(Outcome.DENY, "LIMIT_EXCEEDED",
                               f"{name}: {shown(used, code)} already paid out this "
                               f"{period.value}, {shown(value, code)} more would pass "
                               f"{shown(limit, code)}")
        for name, scope, period in _velocity_scopes:
            limit = p[name]
            if limit is None:
                continue
            assert isinstance(limit, int)
            count = ctx.usage.get((scope, period), Usage(0, 0)).count
            if count + 1 > limit:
                return Verdict(Outcome.DENY, "VELOCITY_EXCEEDED",
                               f"{name}: {count} payouts this {period.value} already; the "
                               f"limit is {limit}")
        return None

    return Rule("usage_limits", money_out, check, commercial)


# --- reporting thresholds and information that travels with the money ------------------------

def review_threshold_param(default: int, code: str, description: str, source: str,
                           uncertain: str | None = None) -> Param:
    return Param("review_threshold", P.AMOUNT, default, description, source, currency=code,
                 minimum=1, maximum=amount_limit_max, optional=True, uncertain=uncertain)


def threshold_rule(name: str, param: str, code: str, kinds: frozenset[Kind], source: str,
                   reason: str, roles: frozenset[Role] = frozenset({Role.ORIGIN})) -> Rule:
    """At or over the threshold in ``param`` (in ``code``): review, with ``reason``."""

    def check(op: Operation, ctx: Context, p: Params) -> Verdict | None:
        found = reached(op, ctx, p, param, code)
        if not isinstance(found, tuple):
            return found
        value, threshold = found
        return Verdict(Outcome.REVIEW, "REPORTING_THRESHOLD",
                       f"{reason}: {shown(value, code)} is at or over {shown(threshold, code)}")

    return Rule(name, kinds, check, source, roles)


def travel_info_params(code: str, threshold: int | None, payer: frozenset[str],
                       source: str, uncertain: str | None = None) -> tuple[Param, ...]:
    return (
        Param("payer_fields_required", P.FIELDS, payer,
              "Information about the payer an incoming payment must carry (missing: review).",
              source, uncertain=uncertain),
        Param("payer_info_threshold", P.AMOUNT, threshold,
              "Incoming payments at or over this amount without the payer information "
              "required go to review (null: at any amount).", source, currency=code, minimum=1,
              maximum=amount_limit_max, optional=True, uncertain=uncertain),
    )


def travel_info_rule(code: str, source: str, zone: frozenset[str] = frozenset()) -> Rule:
    """An incoming payment at or over the threshold without the payer information the rules
    require goes to review; from inside ``zone`` (the EU's internal market, say) the payer's
    account is enough. Below the threshold a payment is credited whatever it carries: the
    rules leave the payee's provider a risk-based choice (TFR Art. 8(1)), and Corridor's is to
    review the large ones, not to hold every small one."""

    def check(op: Operation, ctx: Context, p: Params) -> Verdict | None:
        required = p["payer_fields_required"]
        threshold = p["payer_info_threshold"]
        assert isinstance(required, frozenset)
        if threshold is not None:
            assert isinstance(threshold, int)
            value = amount(op, ctx, code)
            if value is not None and value < threshold:
                return None
        if op.counterparty_country in zone:
            required = required & {"account"}
        missing = sorted(required - op.counterparty_fields)
        if missing:
            return Verdict(Outcome.REVIEW, "PAYER_INFORMATION_MISSING",
                           f"the payment does not carry the payer's {', '.join(missing)}")
        return None

    return Rule("payer_information", frozenset({Kind.INCOMING_PAYMENT}), check, source)


def payee_info_rule(param: str, code: str, fields: frozenset[str], source: str) -> Rule:
    """A payout at or over the threshold in ``param`` without these payee fields is refused:
    the record the rule requires cannot be made."""

    def check(op: Operation, ctx: Context, p: Params) -> Verdict | None:
        found = reached(op, ctx, p, param, code)
        if not isinstance(found, tuple):
            return found
        threshold = found[1]
        missing = sorted(fields - op.counterparty_fields)
        if missing:
            return Verdict(Outcome.DENY, "PAYEE_INFORMATION_MISSING",
                           f"payouts of {shown(threshold, code)} or more need the payee's "
                           f"{', '.join(missing)}")
        return None

    return Rule("payee_information", money_out, check, source)


# --- sanctions --------------------------------------------------------------------------------

def screening_params(lists: frozenset[str], source: str, uncertain: str | None = None,
                     threshold: int = 88) -> tuple[Param, ...]:
    return (
        Param("sanctions_lists", P.LISTS, lists,
              "Sanctions lists beneficiaries, payment senders and tenants are screened against.",
              source, uncertain=uncertain),
        Param("screening_threshold", P.SCORE, threshold,
              "Name-match score (0-100) at or above which a match sends the operation to "
              "review; an exact match (same name, and date of birth where both have one) "
              "denies.",
              "Corridor's calibration of its matcher (policies.screening), not a regulatory "
              "figure: lower finds more true matches and more false ones.",
              minimum=50, maximum=score_max),
    )


def _sanctions(op: Operation, ctx: Context, p: Params) -> Verdict | None:
    if not ctx.hits:
        return None
    best = max(ctx.hits, key=lambda h: (h.exact, h.score))
    if best.exact:
        return Verdict(Outcome.DENY, "SANCTIONS_MATCH", best.reason)
    return Verdict(Outcome.REVIEW, "SANCTIONS_POSSIBLE_MATCH", best.reason)


def sanctions_rule(source: str) -> Rule:
    return Rule("sanctions", crossing | {Kind.ONBOARDING}, _sanctions, source, both_ends)


# --- FX -----------------------------------------------------------------------------------------

def fx_params() -> tuple[Param, ...]:
    """Quoting and rate-refresh parameters: commercial and risk defaults, since no rule in the
    served jurisdictions fixes an FX spread or a reference rate's age."""
    return (
        Param("fx_spread_bps_default", P.BPS, 50,
              "Spread over the mid rate when the tenant has no spread of its own.", commercial,
              minimum=0, maximum=1_000),
        Param("fx_rate_age_s_max", P.SECONDS, 3_600,
              "Reference rates older than this are stale; quotes on them are refused.",
              commercial, minimum=60, maximum=7 * 86_400),
        Param("fx_quote_validity_s_default", P.SECONDS, 30,
              "How long a quote holds its rate when the partner does not ask.", commercial,
              minimum=5, maximum=1_800),
        Param("fx_quote_validity_s_max", P.SECONDS, 1_800,
              "The longest a quote may hold its rate.", commercial, minimum=5, maximum=86_400),
        Param("fx_rate_jump_bps_max", P.BPS, 1_000,
              "A new reference rate this far from the last one is held for review, not used.",
              commercial, minimum=10, maximum=10_000),
    )
