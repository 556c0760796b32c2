"""Which usage counters an operation is measured by: pure, read by the gate before it locks
the counters and by the rules after."""

from __future__ import annotations

from policies.common import usage_limits
from policies.model import Kind, Operation, Params, Period, Scope

fx_purchase_meter = "fx_purchase_cny"


def meter(op: Operation) -> str | None:
    if op.kind is Kind.PAYOUT:
        return "payout"
    if op.kind is Kind.FX_CONVERSION and op.sell_currency == "CNY" and op.currency != "CNY":
        return fx_purchase_meter
    return None


def counters(op: Operation, params: Params) -> frozenset[tuple[Scope, Period]]:
    """The (scope, period) counters the rules of these parameters read for ``op``."""
    which = meter(op)
    if which == "payout":
        return frozenset((s, p) for name, s, p in usage_limits if params.get(name) is not None)
    if which == fx_purchase_meter and params.get("fx_purchase_annual_quota") is not None:
        return frozenset({(Scope.ACCOUNT, Period.YEAR)})
    return frozenset()


def scope_ids(op: Operation) -> dict[Scope, str]:
    ids = {Scope.TENANT: op.tenant_id}
    if op.account_id is not None:
        ids[Scope.ACCOUNT] = op.account_id
    if op.beneficiary_id is not None:
        ids[Scope.BENEFICIARY] = op.beneficiary_id
    return ids
