"""Compliance officers' view of the policies: ``policy``, ``policyChangeRequests``, the
maker-checker mutations ``proposePolicyChange`` / ``approvePolicyChange`` /
``rejectPolicyChange``, and the ``evaluatePolicy`` dry run.

An officer's key names its jurisdictions; anything outside them reads as absent. Auditors read
every jurisdiction's policy and change requests, and change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.scalars import JSON
from strawberry.types import Info

from payments import ids
from payments.currency import currency as lookup_currency
from payments.errors import InvalidInput, NotFound
from payments.money import parse_amount
from payments.principal import Principal, Role
from payments.text import check_text
from policies import catalog
from policies.engine import evaluate
from policies.model import Kind, Operation, Period, PolicyVersion, RuleResult, Scope, Usage
from policies.params import Param, to_json
from regions import policy_store
from regions.idempotency import check_key
from regions.policy_gate import contexts
from regions.tables import policy_versions
from schema import errors
from schema.access import only
from schema.accounts import utc
from schema.pagination import Connection, page_args, rows_connection
from schema.permissions import principal

country_length = 2
fields_max = 10
usage_max = 20


@strawberry.type(description="One parameter of a jurisdiction's policy.")
class PolicyParameter:
    name: str
    kind: str = strawberry.field(description=(
        "AMOUNT (a decimal string in `currency`), COUNT, BPS, SECONDS, SCORE (0-100), "
        "COUNTRIES, CURRENCIES, REGIONS, LISTS (sanctions lists), FIELDS, FIELD_MAP (region -> "
        "fields) or FLAG."))
    value: JSON | None = strawberry.field(description="In effect now; null: the limit is off.")
    default_value: JSON | None = strawberry.field(description="The default in code.")
    currency: str | None
    minimum: JSON | None
    maximum: JSON | None
    description: str
    source: str = strawberry.field(description="Where the default comes from.")
    uncertain: str | None = strawberry.field(
        description="What is not certain about the default, when something is.")


@strawberry.type
class PolicyRuleInfo:
    name: str
    applies_to: list[str] = strawberry.field(description="Operation kinds the rule decides.")
    roles: list[str] = strawberry.field(
        description="origin (the tenant's jurisdiction), destination (the other end's).")
    source: str


@strawberry.type
class PolicyVersionInfo:
    version: int
    effective_from: datetime
    change_id: strawberry.ID
    created_at: datetime


@strawberry.type(description="A jurisdiction's rules and the parameters in effect now.")
class Policy:
    jurisdiction: str
    name: str
    version: int = strawberry.field(description="In effect now; 0 is the defaults in code.")
    effective_from: datetime | None
    limit_currency: str
    parameters: list[PolicyParameter]
    rules: list[PolicyRuleInfo]
    versions: list[PolicyVersionInfo] = strawberry.field(
        description="Every approved version, oldest first, including any not yet in effect.")


@strawberry.type
class PolicyChangeRequest:
    id: strawberry.ID
    jurisdiction: str
    base_version: int
    changes: JSON
    effective_from: datetime | None
    status: str = strawberry.field(description="PENDING, APPROVED or REJECTED.")
    reason: str
    proposed_by: str = strawberry.field(description="The proposing officer's key id.")
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    version: int | None = strawberry.field(description="The version an approval wrote.")


@strawberry.type
class PolicyReason:
    jurisdiction: str
    version: int
    rule: str
    outcome: str = strawberry.field(description="ALLOW, REVIEW or DENY.")
    code: str | None
    message: str


def reason_from(r: RuleResult) -> PolicyReason:
    return PolicyReason(jurisdiction=r.jurisdiction, version=r.version, rule=r.rule,
                        outcome=r.outcome.value, code=r.code, message=r.message)


@strawberry.type(description="A dry run: what the policies would decide, rule by rule.")
class PolicyEvaluation:
    outcome: str = strawberry.field(description="ALLOW, REVIEW or DENY.")
    versions: JSON = strawberry.field(description="Jurisdiction -> the version used.")
    rules: list[PolicyReason] = strawberry.field(description="Every rule asked, in order.")


def _bound(param: Param, value: int | None) -> Any:
    if value is None or param.currency is None:
        return value
    return to_json(param, value)


def _parameter(param: Param, value: Any) -> PolicyParameter:
    return PolicyParameter(
        name=param.name, kind=param.kind.value, value=to_json(param, value),
        default_value=to_json(param, param.default), currency=param.currency,
        minimum=_bound(param, param.minimum), maximum=_bound(param, param.maximum),
        description=param.description, source=param.source, uncertain=param.uncertain)


def in_scope(who: Principal, jurisdiction: str) -> bool:
    return who.role is Role.AUDITOR or jurisdiction in who.jurisdictions


async def resolve_policy(info: Info[Any, Any], jurisdiction: str) -> PolicyResult:
    who = principal(info)
    if jurisdiction not in catalog.codes() or not in_scope(who, jurisdiction):
        return errors.to_error_type(NotFound("jurisdiction", jurisdiction))  # type: ignore[no-any-return]
    router = info.context.router
    versions = (await router.read_control(policy_store.load_versions))[jurisdiction]
    current = policy_store.effective(versions, datetime.now(UTC))

    async def history(conn: AsyncConnection) -> list[Row[Any]]:
        return list((await conn.execute(select(policy_versions).where(
            policy_versions.c.jurisdiction == jurisdiction)
            .order_by(policy_versions.c.version))).all())

    spec = catalog.jurisdiction(jurisdiction)
    return Policy(
        jurisdiction=spec.code, name=spec.name, version=current.version,
        effective_from=current.effective_from, limit_currency=spec.limit_currency,
        parameters=[_parameter(p, current.values[p.name]) for p in spec.params],
        rules=[PolicyRuleInfo(name=r.name, applies_to=sorted(k.value for k in r.kinds),
                              roles=sorted(x.value for x in r.roles), source=r.source)
               for r in spec.rules],
        versions=[PolicyVersionInfo(version=r.version, effective_from=utc(r.effective_from),
                                    change_id=strawberry.ID(r.change_id),
                                    created_at=utc(r.created_at))
                  for r in await router.read_control(history)])


PolicyResult = Annotated[Policy | errors.NotFound, strawberry.union("PolicyResult")]


def change_from_row(row: Row[Any]) -> PolicyChangeRequest:
    return PolicyChangeRequest(
        id=strawberry.ID(row.id), jurisdiction=row.jurisdiction, base_version=row.base_version,
        changes=row.changes,
        effective_from=utc(row.effective_from) if row.effective_from else None,
        status=row.status, reason=row.reason, proposed_by=row.proposed_by,
        proposed_at=utc(row.proposed_at), decided_by=row.decided_by,
        decided_at=utc(row.decided_at) if row.decided_at else None,
        decision_note=row.decision_note, version=row.version)


change_statuses = ("PENDING", "APPROVED", "REJECTED")


async def resolve_changes(info: Info[Any, Any], status: str | None = None,
                          first: int | None = None, after: str | None = None
                          ) -> Connection[PolicyChangeRequest]:
    who = principal(info)
    limit, key = page_args(first, after, "pch")
    if status is not None and status not in change_statuses:
        raise errors.bad_input(InvalidInput(f"status must be one of {list(change_statuses)}",
                                            "status"))
    scope = None if who.role is Role.AUDITOR else sorted(who.jurisdictions)

    async def body(conn: AsyncConnection) -> list[Row[Any]]:
        return await policy_store.change_page(conn, scope, status, limit, key)

    rows = await info.context.router.read_control(body)
    return rows_connection(rows, limit, "pch", change_from_row, lambda r: str(r.id))


async def _change(info: Info[Any, Any], change_id: str) -> PolicyChangeRequest:
    async def body(conn: AsyncConnection) -> Row[Any] | None:
        return await policy_store.change_row(conn, change_id)

    row = await info.context.router.read_control(body)
    assert row is not None, change_id
    return change_from_row(row)


@strawberry.input
class ProposePolicyChangeInput:
    jurisdiction: str
    changes: JSON = strawberry.field(description=(
        'Parameter name -> new value, e.g. {"review_threshold": "12000.00", '
        '"corridors": ["DE", "FR"]}; null turns an optional limit off.'))
    reason: str
    effective_from: datetime | None = strawberry.field(
        default=None, description="When the change takes effect once approved (default: on "
                                  "approval); at most a year ahead.")
    idempotency_key: str


PolicyChangeResult = Annotated[
    PolicyChangeRequest | errors.ValidationError | errors.NotFound | errors.ChangeNotAllowed
    | errors.IdempotencyConflict,
    strawberry.union("PolicyChangeResult"),
]


@errors.typed_errors
async def propose_policy_change(info: Info[Any, Any], input: ProposePolicyChangeInput
                                ) -> PolicyChangeResult:
    who = principal(info)
    key = check_key(input.idempotency_key)
    if not isinstance(input.changes, dict):
        raise InvalidInput("changes must be an object of parameter names to values", "changes")
    if input.effective_from is not None and input.effective_from.tzinfo is None:
        raise InvalidInput("effectiveFrom needs a time zone", "effectiveFrom")
    proposal = policy_store.Proposal(input.jurisdiction, input.changes, input.effective_from,
                                     input.reason, key)
    topo = info.context.router.topology

    async def body(conn: AsyncConnection) -> tuple[str, bool]:
        return await policy_store.propose(conn, who, topo, proposal, datetime.now(UTC))

    change_id, _ = await info.context.router.run_control(body)
    return await _change(info, change_id)


@strawberry.input
class DecidePolicyChangeInput:
    change_id: strawberry.ID
    note: str | None = None
    idempotency_key: str


def _decide_cmd(input: DecidePolicyChangeInput) -> policy_store.Decide:
    key = check_key(input.idempotency_key)
    ids.parse_id(str(input.change_id), "pch", "changeId")
    if input.note is not None:
        check_text(input.note, "note", policy_store.reason_length_max)
    return policy_store.Decide(str(input.change_id), input.note, key)


@errors.typed_errors
async def approve_policy_change(info: Info[Any, Any], input: DecidePolicyChangeInput
                                ) -> PolicyChangeResult:
    who = principal(info)
    cmd = _decide_cmd(input)

    async def body(conn: AsyncConnection) -> bool:
        return await policy_store.approve(conn, who, cmd, datetime.now(UTC))

    if await info.context.router.run_control(body):
        await info.context.gate().refresh(info.context.router, force=True)
    return await _change(info, cmd.change_id)


@errors.typed_errors
async def reject_policy_change(info: Info[Any, Any], input: DecidePolicyChangeInput
                               ) -> PolicyChangeResult:
    who = principal(info)
    cmd = _decide_cmd(input)

    async def body(conn: AsyncConnection) -> bool:
        return await policy_store.reject(conn, who, cmd, datetime.now(UTC))

    await info.context.router.run_control(body)
    return await _change(info, cmd.change_id)


@strawberry.enum
class OperationKind(Enum):
    TRANSFER = "transfer"
    FX_CONVERSION = "fx_conversion"
    PAYOUT = "payout"
    INCOMING_PAYMENT = "incoming_payment"
    TENANT_ONBOARDING = "tenant_onboarding"


@strawberry.input(description="Usage before the operation, as the limits would see it.")
class UsageInput:
    scope: str = strawberry.field(description="tenant, account or beneficiary.")
    period: str = strawberry.field(description="hour, day, month or year.")
    amount: str = strawberry.field(description="In the jurisdiction's limit currency.")
    count: int = 0


@strawberry.input
class EvaluatePolicyInput:
    jurisdiction: str = strawberry.field(description="The tenant's jurisdiction.")
    kind: OperationKind
    amount: str
    currency: str
    sell_currency: str | None = None
    counterparty_country: str | None = None
    counterparty_name: str | None = None
    counterparty_fields: list[str] | None = strawberry.field(
        default=None, description="Which of name, account, address travel with the money "
                                  "(default: name and account).")
    region: str | None = strawberry.field(default=None,
                                          description="Onboarding: the home region asked for.")
    usage: list[UsageInput] | None = None
    change_id: strawberry.ID | None = strawberry.field(
        default=None, description="Dry-run a pending change instead of the version in effect.")


EvaluatePolicyResult = Annotated[
    PolicyEvaluation | errors.ValidationError | errors.NotFound,
    strawberry.union("EvaluatePolicyResult"),
]


def _operation(input: EvaluatePolicyInput, regions: frozenset[str]) -> Operation:
    if input.region is not None and input.region not in regions:
        raise InvalidInput(f"region must be one of {sorted(regions)}", "region")
    cur = lookup_currency(input.currency)
    if input.sell_currency is not None:
        lookup_currency(input.sell_currency, "sellCurrency")
    country = input.counterparty_country
    if country is not None and (len(country) != country_length or not country.isupper()
                                or not country.isalpha()):
        raise InvalidInput("counterpartyCountry must be an ISO 3166 alpha-2 code",
                           "counterpartyCountry")
    if input.counterparty_name is not None:
        check_text(input.counterparty_name, "counterpartyName", 140)
    fields = input.counterparty_fields if input.counterparty_fields is not None else [
        "name", "account"]
    if len(fields) > fields_max or not set(fields) <= {"name", "account", "address"}:
        raise InvalidInput("counterpartyFields may hold name, account and address",
                           "counterpartyFields")
    return Operation(
        kind=Kind(input.kind.value), tenant_id="dry-run", jurisdiction=input.jurisdiction,
        home_region=input.region or "", amount_minor=parse_amount(input.amount, cur),
        currency=cur.code, account_id="dry-run", beneficiary_id="dry-run",
        counterparty_country=country, counterparty_name=input.counterparty_name,
        counterparty_fields=frozenset(fields), sell_currency=input.sell_currency,
        region=input.region)


def _usage(input: EvaluatePolicyInput) -> dict[tuple[Scope, Period], Usage]:
    rows = input.usage or []
    if len(rows) > usage_max:
        raise InvalidInput(f"at most {usage_max} usage figures", "usage")
    code = catalog.jurisdiction(input.jurisdiction).limit_currency
    out = {}
    for i, u in enumerate(rows):
        try:
            key = (Scope(u.scope), Period(u.period))
        except ValueError:
            raise InvalidInput("scope must be tenant, account or beneficiary; period hour, "
                               "day, month or year", f"usage[{i}]") from None
        if u.count < 0:
            raise InvalidInput("count may not be negative", f"usage[{i}].count")
        out[key] = Usage(parse_amount(u.amount, lookup_currency(code), f"usage[{i}].amount"),
                         u.count)
    return out


async def _proposed(info: Info[Any, Any], who: Principal, change_id: str,
                    jurisdiction: str) -> PolicyVersion:
    """The version a pending change would write, to dry-run it."""
    ids.parse_id(change_id, "pch", "changeId")

    async def body(conn: AsyncConnection) -> Row[Any] | None:
        return await policy_store.change_row(conn, change_id)

    row = await info.context.router.read_control(body)
    if row is None or row.jurisdiction != jurisdiction or not in_scope(who, jurisdiction):
        raise NotFound("policy change", change_id)
    if row.status != "PENDING":
        raise InvalidInput(f"policy change {change_id!r} is {row.status.lower()}: dry-run a "
                           "pending change, or leave changeId out for the version in effect",
                           "changeId")
    latest = (await info.context.router.read_control(policy_store.load_versions))[
        jurisdiction][-1]
    values = {**latest.values, **policy_store.changed_values(jurisdiction, row.changes)}
    return PolicyVersion(jurisdiction, latest.version + 1, values, None)


@errors.typed_errors
async def evaluate_policy(info: Info[Any, Any], input: EvaluatePolicyInput
                          ) -> EvaluatePolicyResult:
    """Nothing is written: the rules of every jurisdiction involved answer as they would."""
    who = principal(info)
    if input.jurisdiction not in catalog.codes() or not in_scope(who, input.jurisdiction):
        raise NotFound("jurisdiction", input.jurisdiction)
    op = _operation(input, frozenset(r.code for r in info.context.router.topology.regions))
    usage = _usage(input)
    gate, now = info.context.gate(), datetime.now(UTC)
    versions = {code: gate.version(code, now) for code, _ in catalog.involved(op)}
    if input.change_id is not None:
        versions[input.jurisdiction] = await _proposed(info, who, str(input.change_id),
                                                       input.jurisdiction)
    decision = evaluate(op, versions, contexts(gate, op, versions, usage, now), explain=True)
    versions_json: Any = dict(decision.versions)
    return PolicyEvaluation(outcome=decision.outcome.value, versions=versions_json,
                            rules=[reason_from(r) for r in decision.trace])


policy_field = strawberry.field(resolver=resolve_policy, permission_classes=[only("policy")])
policy_changes_field = strawberry.field(resolver=resolve_changes,
                                        permission_classes=[only("policyChangeRequests")])
propose_policy_change_field = strawberry.mutation(resolver=propose_policy_change,
                                                  permission_classes=[only("proposePolicyChange")])
approve_policy_change_field = strawberry.mutation(resolver=approve_policy_change,
                                                  permission_classes=[only("approvePolicyChange")])
reject_policy_change_field = strawberry.mutation(resolver=reject_policy_change,
                                                 permission_classes=[only("rejectPolicyChange")])
evaluate_policy_field = strawberry.mutation(resolver=evaluate_policy,
                                            permission_classes=[only("evaluatePolicy")])
