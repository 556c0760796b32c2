"""The versioned policy parameter store in the control plane, and its maker-checker changes.

Version 0 of every jurisdiction is its defaults in code. An officer proposes a change (the
parameters it sets, an optional effective time, a reason); a different officer with the same
jurisdiction in scope approves it, which writes the next version, or rejects it. A version
holds every parameter's value, so it reads alone; parameters added to the code later take
their default in older versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.errors import DomainError, IdempotencyConflict, InvalidInput, NotFound
from payments.principal import Principal, Role
from payments.text import check_text
from policies import catalog
from policies.model import PolicyVersion
from policies.params import Kind, Value, from_json, parse_changes, to_json
from regions import events
from regions.tables import policy_changes, policy_versions
from regions.topology import Topology

reason_length_max = 1_000
clock_skew_s_max = 300
"""How far in the past a proposed effective time may be (a client's clock running behind)."""
changes_max = 50
effective_from_days_max = 366


class ChangeNotAllowed(DomainError):
    """Maker-checker refused: self-approval, a change not pending, or a stale base."""

    code = "CHANGE_NOT_ALLOWED"


def officer_scope(who: Principal, jurisdiction: str) -> None:
    """Officers act only within the jurisdictions their key names: others read as absent."""
    if who.role is not Role.COMPLIANCE_OFFICER or jurisdiction not in who.jurisdictions:
        raise NotFound("jurisdiction", jurisdiction)


def values_from_json(jurisdiction: str, stored: Mapping[str, Any]) -> dict[str, Value]:
    """A stored version's values; parameters it does not name keep their code default."""
    spec = catalog.jurisdiction(jurisdiction)
    values = spec.defaults()
    for name, raw in stored.items():
        param = spec.declared.get(name)
        if param is not None:
            values[name] = from_json(param, raw)
    return values


def changed_values(jurisdiction: str, changes: Mapping[str, Any]) -> dict[str, Value]:
    """Only the parameters a stored change names, parsed."""
    declared = catalog.jurisdiction(jurisdiction).declared
    return {name: from_json(declared[name], raw) for name, raw in changes.items()
            if name in declared}


def values_to_json(jurisdiction: str, values: Mapping[str, Value]) -> dict[str, Any]:
    declared = catalog.jurisdiction(jurisdiction).declared
    return {name: to_json(declared[name], value) for name, value in values.items()}


async def load_versions(conn: AsyncConnection) -> dict[str, list[PolicyVersion]]:
    """Every jurisdiction's versions, oldest first, starting with version 0 (the defaults)."""
    out = {code: [PolicyVersion(code, 0, catalog.jurisdiction(code).defaults(), None)]
           for code in catalog.codes()}
    rows = (await conn.execute(select(policy_versions).order_by(
        policy_versions.c.jurisdiction, policy_versions.c.version))).all()
    for row in rows:
        if row.jurisdiction in out:
            out[row.jurisdiction].append(PolicyVersion(
                row.jurisdiction, row.version,
                values_from_json(row.jurisdiction, row.parameters), row.effective_from))
    return out


def effective(versions: list[PolicyVersion], now: datetime) -> PolicyVersion:
    """The latest version in effect at ``now``."""
    current = versions[0]
    for v in versions[1:]:
        if v.effective_from is not None and v.effective_from <= now:
            current = v
    return current


async def latest_version(conn: AsyncConnection, jurisdiction: str) -> int:
    found = (await conn.execute(select(func.max(policy_versions.c.version)).where(
        policy_versions.c.jurisdiction == jurisdiction))).scalar()
    return int(found or 0)


@dataclass(frozen=True, slots=True)
class Proposal:
    jurisdiction: str
    changes: Mapping[str, Any]
    effective_from: datetime | None
    reason: str
    idempotency_key: str


def check_regions(jurisdiction: str, values: Mapping[str, Value], topo: Topology) -> None:
    """Region parameters name regions that exist (the regions file is the authority)."""
    known = {r.code for r in topo.regions}
    for name, value in values.items():
        kind = catalog.jurisdiction(jurisdiction).declared[name].kind
        named: set[str] = set()
        if kind in (Kind.REGIONS, Kind.FIELD_MAP) and isinstance(value, frozenset | Mapping):
            named = set(value)
        unknown = sorted(named - known)
        if unknown:
            raise InvalidInput(f"unknown regions {unknown} in {name}", f"changes.{name}")


async def propose(conn: AsyncConnection, who: Principal, topo: Topology, proposal: Proposal,
                  now: datetime) -> tuple[str, bool]:
    """A pending change and whether this call made it; the same officer's key replays it (a
    different proposal under the same key is a conflict)."""
    officer_scope(who, proposal.jurisdiction)
    check_text(proposal.reason, "reason", reason_length_max, length_min=1)
    if len(proposal.changes) > changes_max:
        raise InvalidInput(f"a change may set at most {changes_max} parameters", "changes")
    spec = catalog.jurisdiction(proposal.jurisdiction)
    parsed = parse_changes(spec.declared, proposal.changes)
    check_regions(proposal.jurisdiction, parsed, topo)
    if proposal.effective_from is not None:
        ahead_s = (proposal.effective_from - now).total_seconds()
        if ahead_s > effective_from_days_max * 86_400:
            raise InvalidInput(f"effectiveFrom may be at most {effective_from_days_max} days "
                               "ahead", "effectiveFrom")
        if ahead_s < -clock_skew_s_max:
            raise InvalidInput("effectiveFrom is in the past; leave it out for a change that "
                               "takes effect when it is approved", "effectiveFrom")
    changes = values_to_json(proposal.jurisdiction, parsed)
    change_id = ids.new_id("pch", "global")
    claimed = (await conn.execute(pg_insert(policy_changes).values(
        id=change_id, jurisdiction=proposal.jurisdiction,
        base_version=await latest_version(conn, proposal.jurisdiction), changes=changes,
        effective_from=proposal.effective_from, status="PENDING", reason=proposal.reason,
        proposed_by=who.key_id, proposal_key=proposal.idempotency_key,
    ).on_conflict_do_nothing().returning(policy_changes.c.id))).first()
    if claimed is not None:
        await events.record_control(conn, who.actor, "policy.change_proposed", change_id, {
            "change_id": change_id, "jurisdiction": proposal.jurisdiction,
            "changes": changes, "reason": proposal.reason}, tenant_id=who.tenant.id)
        return change_id, True
    row = (await conn.execute(select(policy_changes).where(
        policy_changes.c.proposed_by == who.key_id,
        policy_changes.c.proposal_key == proposal.idempotency_key))).one()
    if (row.jurisdiction, row.changes, row.effective_from, row.reason) != (
            proposal.jurisdiction, changes, proposal.effective_from, proposal.reason):
        raise IdempotencyConflict(proposal.idempotency_key)
    return str(row.id), False


@dataclass(frozen=True, slots=True)
class Decide:
    change_id: str
    note: str | None
    idempotency_key: str


async def _pending(conn: AsyncConnection, who: Principal, cmd: Decide,
                   status: str) -> Row[Any] | None:
    """The pending change, locked; None when this officer already decided it so under this
    key (a replay)."""
    change_id = cmd.change_id
    row = (await conn.execute(select(policy_changes).where(policy_changes.c.id == change_id)
                              .with_for_update())).first()
    if row is None or who.role is not Role.COMPLIANCE_OFFICER \
            or row.jurisdiction not in who.jurisdictions:
        raise NotFound("policy change", change_id)
    if row.decision_key == cmd.idempotency_key and row.decided_by == who.key_id:
        if row.status != status or row.decision_note != cmd.note:
            raise IdempotencyConflict(cmd.idempotency_key)
        return None
    used = (await conn.execute(select(policy_changes.c.id).where(
        policy_changes.c.decided_by == who.key_id,
        policy_changes.c.decision_key == cmd.idempotency_key))).first()
    if used is not None:
        raise IdempotencyConflict(cmd.idempotency_key)
    if row.status != "PENDING":
        raise ChangeNotAllowed(f"policy change {change_id!r} is {row.status.lower()}, "
                               "not pending")
    if row.proposed_by == who.key_id:
        raise ChangeNotAllowed("a change must be approved or rejected by another officer "
                               "than the one who proposed it")
    return row


async def approve(conn: AsyncConnection, who: Principal, cmd: Decide, now: datetime) -> bool:
    """Write the next version from a pending change: the latest version's values with the
    change's on top, in effect from the change's time (or now). A version holds everything
    approved before it, so it may not take effect before the latest version does: a change
    that would is refused, to be proposed again for then or later. False: a replay."""
    row = await _pending(conn, who, cmd, "APPROVED")
    if row is None:
        return False
    latest = await latest_version(conn, row.jurisdiction)
    if latest != row.base_version:
        raise _stale(latest, row.base_version)
    base = (await conn.execute(select(policy_versions.c.parameters,
                                      policy_versions.c.effective_from).where(
        policy_versions.c.jurisdiction == row.jurisdiction,
        policy_versions.c.version == latest))).first()
    values = values_from_json(row.jurisdiction, base.parameters if base else {})
    values.update(changed_values(row.jurisdiction, row.changes))
    starts = max(row.effective_from or now, now)
    if base is not None and base.effective_from > starts:
        raise ChangeNotAllowed(
            f"version {latest} takes effect at {base.effective_from.isoformat()}; this change "
            "would take effect before it: propose it again to take effect then or later")
    try:
        await conn.execute(insert(policy_versions).values(
            jurisdiction=row.jurisdiction, version=latest + 1,
            parameters=values_to_json(row.jurisdiction, values), effective_from=starts,
            change_id=cmd.change_id))
    except IntegrityError as exc:  # another approval wrote this version number first
        raise _stale(latest + 1, row.base_version) from exc
    await _decide(conn, who, cmd, "APPROVED", now, latest + 1)
    return True


def _stale(latest: int, base: int) -> ChangeNotAllowed:
    return ChangeNotAllowed(f"version {latest} was approved after this change was proposed on "
                            f"version {base}: propose it again")


async def reject(conn: AsyncConnection, who: Principal, cmd: Decide, now: datetime) -> bool:
    """False: a replay."""
    if await _pending(conn, who, cmd, "REJECTED") is None:
        return False
    await _decide(conn, who, cmd, "REJECTED", now, None)
    return True


async def _decide(conn: AsyncConnection, who: Principal, cmd: Decide, status: str,
                  now: datetime, version: int | None) -> None:
    await conn.execute(update(policy_changes).where(policy_changes.c.id == cmd.change_id)
                       .values(status=status, decided_by=who.key_id, decided_at=now,
                               decision_note=cmd.note, decision_key=cmd.idempotency_key,
                               version=version))
    await events.record_control(conn, who.actor, f"policy.change_{status.lower()}",
                                cmd.change_id, {"change_id": cmd.change_id, "version": version,
                                                "note": cmd.note}, tenant_id=who.tenant.id)


async def change_page(conn: AsyncConnection, jurisdictions: Sequence[str] | None,
                      status: str | None, first: int, after: str | None) -> list[Row[Any]]:
    """Up to ``first`` + 1 changes, newest first; ``jurisdictions`` None: all of them."""
    q = select(policy_changes)
    if jurisdictions is not None:
        q = q.where(policy_changes.c.jurisdiction.in_(list(jurisdictions)))
    if status is not None:
        q = q.where(policy_changes.c.status == status)
    if after is not None:
        q = q.where(policy_changes.c.id < after)
    return list((await conn.execute(q.order_by(policy_changes.c.id.desc())
                                    .limit(first + 1))).all())


async def change_row(conn: AsyncConnection, change_id: str) -> Row[Any] | None:
    return (await conn.execute(select(policy_changes).where(
        policy_changes.c.id == change_id))).first()
