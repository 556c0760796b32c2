"""Book transfers and FX conversions are decided monotonically in the amount: whenever an
amount is refused, every larger one is too. ``regions.commands`` relies on it to decide a
transfer batch by its largest item per currency."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from policies import catalog
from policies.engine import evaluate
from policies.model import Context, Kind, Operation, Period, PolicyVersion, Role, Scope, Usage

now = datetime(2026, 12, 3, tzinfo=UTC)
amounts = st.integers(min_value=1, max_value=10**15)


def _decide(code: str, kind: Kind, amount: int, currency: str, limit: int | None,
            rate_known: bool, quota_used: int) -> bool:
    spec = catalog.jurisdiction(code)
    values = dict(spec.defaults())
    values["transfer_amount_max"] = limit
    op = Operation(kind=kind, tenant_id="t", jurisdiction=code, home_region="r",
                   amount_minor=amount, currency=currency, account_id="a",
                   sell_currency="CNY" if kind is Kind.FX_CONVERSION else None)
    amount_in = {c: amount * 3 for c in catalog.currencies_needed(code)} if rate_known else {}
    usage = {(Scope.ACCOUNT, Period.YEAR): Usage(quota_used, 1)}
    decision = evaluate(op, {code: PolicyVersion(code, 1, values, None)},
                        {code: Context(Role.ORIGIN, now, amount_in, usage)})
    return decision.allowed


@given(code=st.sampled_from(catalog.codes()), a=amounts, b=amounts,
       limit=st.none() | amounts, rate_known=st.booleans(),
       currency=st.sampled_from(["EUR", "USD", "CNY", "JPY", "KWD"]))
def test_transfers_refused_at_an_amount_are_refused_above_it(
        code: str, a: int, b: int, limit: int | None, rate_known: bool,
        currency: str) -> None:
    small, large = sorted((a, b))
    if _decide(code, Kind.TRANSFER, large, currency, limit, rate_known, 0):
        assert _decide(code, Kind.TRANSFER, small, currency, limit, rate_known, 0)


@given(a=amounts, b=amounts, used=st.integers(min_value=0, max_value=10**9),
       rate_known=st.booleans())
def test_cn_fx_purchases_refused_at_an_amount_are_refused_above_it(
        a: int, b: int, used: int, rate_known: bool) -> None:
    small, large = sorted((a, b))
    if _decide("CN", Kind.FX_CONVERSION, large, "USD", None, rate_known, used):
        assert _decide("CN", Kind.FX_CONVERSION, small, "USD", None, rate_known, used)
