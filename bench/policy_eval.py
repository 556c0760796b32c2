"""``uv run python -m bench.policy_eval``: what the policies cost an operation in CPU, in
process, without the database: versions from the per-process cache, reference conversions,
sanctions screening (a 20,000-entry synthetic list, names repeating as real payees do) and
every rule of every jurisdiction involved, plus the decision's audit record.

Compare the figures with the API's CPU per request in the README's table (about 4 ms per
``createTransfer``): the check must stay well under 5% of it. It reports figures; it is not a
pass/fail test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction

from bench.screening import synthetic_entries
from policies import catalog
from policies.engine import evaluate
from policies.model import Kind, Operation
from policies.screening import Screener
from regions.policy_gate import PolicyGate, contexts, decision_event

rounds_default = 20_000
payee_names = ("Jane Roe", "Erika Mustermann", "Li Wei", "Juan Perez", "Amelia Clark")


def _gate() -> PolicyGate:
    gate = PolicyGate()
    gate._pivot = "EUR"
    gate._rates = {"USD": Fraction("1.0842"), "GBP": Fraction("0.8571"),
                   "SGD": Fraction("1.4530"), "HKD": Fraction("8.4712"),
                   "CNY": Fraction("7.8561"), "JPY": Fraction("162.34")}
    gate._screeners = {name: (1, Screener(synthetic_entries(20_000, seed=i)))
                       for i, name in enumerate(("ofac", "eu", "uk"))}
    return gate


def _ops() -> dict[str, Callable[[int], Operation]]:
    def transfer(i: int) -> Operation:
        return Operation(kind=Kind.TRANSFER, tenant_id="t", jurisdiction="EU",
                         home_region="eu-central", amount_minor=1 + i % 100_000,
                         currency="EUR", account_id="a")

    def payout(i: int) -> Operation:
        return Operation(kind=Kind.PAYOUT, tenant_id="t", jurisdiction="EU",
                         home_region="eu-central", amount_minor=1 + i % 100_000,
                         currency="USD", account_id="a", beneficiary_id="b",
                         counterparty_country="US",
                         counterparty_name=payee_names[i % len(payee_names)],
                         counterparty_fields=frozenset({"name", "account"}))

    return {"transfer (EU, EUR)": transfer, "payout (EU tenant, USD to the US)": payout}


def measure(gate: PolicyGate, make: Callable[[int], Operation], rounds: int) -> list[float]:
    took = []
    now = datetime.now(UTC)
    for i in range(rounds):
        op = make(i)
        start = time.perf_counter()
        versions = {code: gate.version(code, now) for code, _ in catalog.involved(op)}
        decision = evaluate(op, versions, contexts(gate, op, versions, {}, now))
        decision_event(op, decision, "pdc_eu-central_x", None)
        took.append((time.perf_counter() - start) * 1e6)
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=rounds_default)
    args = p.parse_args()
    gate = _gate()
    for label, make in _ops().items():
        measure(gate, make, 1_000)  # warm the caches, as a running process has them
        took = sorted(measure(gate, make, args.rounds))
        print(f"{label}: mean {statistics.fmean(took):.1f} us, p50 "
              f"{took[len(took) // 2]:.1f} us, p99 {took[int(len(took) * 0.99)]:.1f} us "
              f"over {args.rounds} evaluations")


if __name__ == "__main__":
    main()
