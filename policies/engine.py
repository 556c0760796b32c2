"""The one place operations are decided: ``evaluate``.

Every jurisdiction involved in an operation is asked: the tenant's own (origin) and the one at
the money's other end (destination), each under its current policy version. Deny beats review
beats allow; the reasons of every rule that did not allow are kept, with the versions used.
Pure: the caller (``regions.policy_gate``) gathers contexts and versions.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.catalog import involved, rules_for
from policies.model import (
    Context,
    Decision,
    Operation,
    Outcome,
    PolicyVersion,
    Role,
    RuleResult,
)

_severity = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.DENY: 2}


def evaluate(op: Operation, versions: Mapping[str, PolicyVersion],
             contexts: Mapping[str, Context], *, explain: bool = False) -> Decision:
    """Decide ``op`` under ``versions`` (one per involved jurisdiction) with their contexts.
    ``explain`` keeps every rule's result in the trace (dry runs), not only the objections."""
    parties = involved(op)
    trace: list[RuleResult] = []
    for code, role in parties:
        trace.extend(_rules_of(op, versions[code], contexts[code], role, explain))
    reasons = tuple(r for r in trace if r.outcome is not Outcome.ALLOW)
    outcome = max((r.outcome for r in reasons), key=_severity.__getitem__,
                  default=Outcome.ALLOW)
    return Decision(outcome, reasons, {code: versions[code].version for code, _ in parties},
                    tuple(trace))


def _rules_of(op: Operation, version: PolicyVersion, ctx: Context, role: Role,
              explain: bool) -> list[RuleResult]:
    code = version.jurisdiction
    results = []
    for rule in rules_for(code, op.kind, role):
        verdict = rule.fn(op, ctx, version.values)
        if verdict is not None:
            results.append(RuleResult(code, version.version, rule.name, verdict.outcome,
                                      verdict.code, verdict.message))
        elif explain:
            results.append(RuleResult(code, version.version, rule.name, Outcome.ALLOW, None,
                                      "passed"))
    return results
