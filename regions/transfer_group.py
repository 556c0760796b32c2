"""Many single ``createTransfer`` requests of one region as one set-based transaction.

``create_transfers_txn`` gives each request exactly the outcome it would have had alone, run one
after the other in the group's order (``commands.create_transfer_txn``), in a handful of
statements whatever the group's size:

1. claim every first use of a (tenant, key) in one ``INSERT ... ON CONFLICT DO NOTHING``; read
   the stored rows of the keys already taken (a replay, or ``IdempotencyConflict``);
2. lock every account the group names, in id order, in one ``SELECT ... FOR UPDATE``;
3. in Python, in order: the policies (book transfers read no usage counter), then the transfer
   on working copies of the accounts, shared by the group, so a request sees the balances its
   predecessors left; a domain error is that request's answer only;
4. write every journal, transfer, entry and balance in one statement, every event, audit row
   and stored response in another, and give back the claims of the requests that failed (a
   failed request leaves no key, as when it rolls back alone);
5. read the transfers answered (new and replayed) in one query.

A key used twice in a group behaves as it would serially: the second replays the first's
response (or conflicts, if its request differs); if the first failed, the second runs as if
the key were new. Policy refusals are audited in the group's transaction (alone, ``Router.run``
records them after the rollback). Conflicts (SQLSTATE 40001) re-run the whole group through the
one retry wrapper, like any transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids, ledger
from payments.errors import DomainError, IdempotencyConflict, PolicyDenied
from payments.principal import Principal
from policies.usage import meter
from regions import commands
from regions.events import Event, Trail
from regions.idempotency import replay, request_hash
from regions.ledger_store import (
    Locked,
    account_from_row,
    balance_changes,
    entries_and_balances,
    entry_params,
    transfer_params,
)
from regions.policy_gate import PolicyGate, decide

operation = "createTransfer"


@dataclass(frozen=True, slots=True)
class Request:
    """One caller's request, with what its audit rows and events carry from its context."""

    who: Principal
    cmd: commands.CreateTransfer
    origin: str | None = None
    trace_context: str | None = None


Outcome = Row[Any] | DomainError
"""A request's answer: its transfer's row (new or replayed), or the domain error it gets."""


@dataclass(slots=True)
class _Key:
    """A (tenant, key) of the group: who holds its claim now and what it answered."""

    claimed: bool
    stored: Any = None
    owner: int | None = None
    response: dict[str, Any] | None = None
    digest: bytes = b""
    released: bool = False


@dataclass(slots=True)
class _Writes:
    transfers: list[tuple[ledger.Transfer, str | None, str, str]] = field(default_factory=list)
    """(transfer, reference, journal id, tenant id) of every request that posted."""
    events: list[tuple[Request, Event]] = field(default_factory=list)


_claim = text("""
    INSERT INTO idempotency_keys (region, tenant_id, key, operation, request_hash, response)
    SELECT :region, u.tenant, u.key, :operation, u.hash, '{}'::jsonb
    FROM unnest(CAST(:tenants AS TEXT[]), CAST(:keys AS TEXT[]), CAST(:hashes AS BYTEA[]))
         WITH ORDINALITY AS u(tenant, key, hash, n)
    ORDER BY u.n
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, key""")
_stored = text("""
    SELECT k.tenant_id, k.key, k.operation, k.request_hash, k.response
    FROM idempotency_keys k
    JOIN unnest(CAST(:tenants AS TEXT[]), CAST(:keys AS TEXT[])) AS u(tenant, key)
      ON k.tenant_id = u.tenant AND k.key = u.key
    WHERE k.region = :region""")
_lock_named = text("""
    SELECT a.* FROM accounts a
    JOIN unnest(CAST(:ids AS TEXT[]), CAST(:tenants AS TEXT[])) AS u(id, tenant)
      ON a.id = u.id AND a.tenant_id = u.tenant
    WHERE a.region = :region AND a.kind = 'customer'
    ORDER BY a.id FOR UPDATE OF a""")
_write = text("""
WITH j AS (
    INSERT INTO journals (region, id, tenant_id, kind)
    SELECT :region, u.id, u.tenant, 'transfer'
    FROM unnest(CAST(:j_id AS TEXT[]), CAST(:j_tenant AS TEXT[])) AS u(id, tenant)),
t AS (
    INSERT INTO transfers (region, id, journal_id, tenant_id, debit_account_id,
                           credit_account_id, amount_minor, currency, status, reference)
    SELECT :region, u.id, u.journal, u.tenant, u.debit, u.credit, u.amount, u.currency,
           :phase, u.ref
    FROM unnest(CAST(:t_id AS TEXT[]), CAST(:t_journal AS TEXT[]), CAST(:t_tenant AS TEXT[]),
                CAST(:t_debit AS TEXT[]), CAST(:t_credit AS TEXT[]),
                CAST(:t_amount AS BIGINT[]), CAST(:t_currency AS TEXT[]),
                CAST(:t_ref AS TEXT[]))
         AS u(id, journal, tenant, debit, credit, amount, currency, ref)),
""" + entries_and_balances + """
SELECT count(*) FROM b
""")
_record_all = text("""
WITH o AS (
    INSERT INTO outbox (region, id, tenant_id, topic, payload, created_at, trace_context)
    SELECT :region, u.id, u.tenant, u.topic, CAST(u.payload AS JSONB), clock_timestamp(),
           u.trace
    FROM unnest(CAST(:o_id AS TEXT[]), CAST(:o_tenant AS TEXT[]), CAST(:o_topic AS TEXT[]),
                CAST(:o_payload AS TEXT[]), CAST(:o_trace AS TEXT[]))
         AS u(id, tenant, topic, payload, trace)),
a AS (
    INSERT INTO audit_events (region, id, tenant_id, actor, action, target, detail, origin,
                              created_at)
    SELECT :region, u.id, u.tenant, u.actor, u.topic, u.target, CAST(u.detail AS JSONB),
           u.origin, clock_timestamp()
    FROM unnest(CAST(:a_id AS TEXT[]), CAST(:a_tenant AS TEXT[]), CAST(:a_actor AS TEXT[]),
                CAST(:a_topic AS TEXT[]), CAST(:a_target AS TEXT[]),
                CAST(:a_detail AS TEXT[]), CAST(:a_origin AS TEXT[]))
         AS u(id, tenant, actor, topic, target, detail, origin))
UPDATE idempotency_keys AS k
SET response = CAST(v.response AS JSONB), request_hash = v.hash, operation = :operation
FROM unnest(CAST(:k_tenant AS TEXT[]), CAST(:k_key AS TEXT[]), CAST(:k_response AS TEXT[]),
            CAST(:k_hash AS BYTEA[])) AS v(tenant, key, response, hash)
WHERE k.region = :region AND k.tenant_id = v.tenant AND k.key = v.key""")
_release = text("""
    DELETE FROM idempotency_keys AS k
    USING unnest(CAST(:tenants AS TEXT[]), CAST(:keys AS TEXT[])) AS u(tenant, key)
    WHERE k.region = :region AND k.tenant_id = u.tenant AND k.key = u.key""")
_rows = text("""
    SELECT * FROM transfers WHERE region = :region AND id = ANY(CAST(:ids AS TEXT[]))""")


def _identity(r: Request) -> tuple[str, str]:
    return (r.who.tenant.id, r.cmd.idempotency_key)


async def create_transfers_txn(conn: AsyncConnection, region: str, gate: PolicyGate,
                               requests: list[Request]) -> list[Outcome]:
    """Every request's outcome, as if each had run alone, in order (see the module)."""
    assert requests
    assert all(r.who.region == region for r in requests), "one region per group"
    digests = [request_hash(operation, commands.transfer_request(r.cmd)) for r in requests]
    keys = await _claim_keys(conn, region, requests, digests)
    locked, owners = await _lock(conn, region, [
        r for r in requests if keys[_identity(r)].claimed])
    working = {k: v.copy() for k, v in locked.accounts.items()}
    writes = _Writes()
    trails: list[tuple[Request, Trail]] = []
    answers: list[dict[str, Any] | DomainError] = []
    for index, (r, digest) in enumerate(zip(requests, digests, strict=True)):
        state = keys[_identity(r)]
        replay = _replayed(state, r, digest)
        if replay is not None:
            answers.append(replay)
            continue
        try:
            response = await _execute(conn, gate, r, working, owners, writes)
        except PolicyDenied as exc:
            if isinstance(exc.trail, Trail):
                trails.append((r, exc.trail))
            answers.append(exc)
            state.released = True
            continue
        except DomainError as exc:
            answers.append(exc)
            state.released = True
            continue
        state.owner, state.response, state.digest, state.released = (
            index, response, digest, False)
        answers.append(response)
    await _write_ledger(conn, region, locked, working, writes)
    await _record(conn, region, requests, keys, writes, trails)
    return await _answers(conn, region, requests, answers)


async def _claim_keys(conn: AsyncConnection, region: str, requests: list[Request],
                      digests: list[bytes]) -> dict[tuple[str, str], _Key]:
    first: dict[tuple[str, str], bytes] = {}
    for r, digest in zip(requests, digests, strict=True):
        first.setdefault(_identity(r), digest)
    # Claimed in one order everywhere, so two groups sharing keys queue rather than deadlock.
    first = dict(sorted(first.items()))
    got = await conn.execute(_claim, {
        "region": region, "operation": operation,
        "tenants": [t for t, _ in first], "keys": [k for _, k in first],
        "hashes": list(first.values())})
    claimed = {(row.tenant_id, row.key) for row in got}
    keys = {k: _Key(claimed=k in claimed) for k in first}
    taken = [k for k in first if k not in claimed]
    if taken:
        for row in await conn.execute(_stored, {"region": region,
                                                "tenants": [t for t, _ in taken],
                                                "keys": [k for _, k in taken]}):
            keys[(row.tenant_id, row.key)].stored = row
        purged = [k for k in taken if keys[k].stored is None]
        if purged:  # purged between our claim and the read: rare; the caller runs alone
            raise KeyPurgedMeanwhile(purged)
    return keys


class KeyPurgedMeanwhile(RuntimeError):
    """A key taken at the claim was gone at the read (the purge job): the group is retried
    request by request, where ``idempotency.once`` claims it afresh."""


def _replayed(state: _Key, r: Request, digest: bytes) -> dict[str, Any] | DomainError | None:
    """The answer of a request whose key is already answered: a replay, or a conflict."""
    if not state.claimed:
        try:
            return replay(state.stored, r.cmd.idempotency_key, operation, digest)
        except IdempotencyConflict as conflict:
            return conflict
    if state.owner is not None and not state.released:
        if state.digest != digest:
            return IdempotencyConflict(r.cmd.idempotency_key)
        assert state.response is not None
        return state.response
    return None


async def _lock(conn: AsyncConnection, region: str, requests: list[Request]
                ) -> tuple[Locked, dict[str, str | None]]:
    """The accounts the requests that may run name and their tenants own, locked in id order
    (as ``ledger_store.lock_accounts``: another tenant's or an internal account is never
    locked, only not found); and who owns each."""
    named = sorted({(a, r.who.tenant.id) for r in requests
                    for a in (r.cmd.item.from_account_id, r.cmd.item.to_account_id)})
    rows = (await conn.execute(_lock_named, {"region": region,
                                             "ids": [a for a, _ in named],
                                             "tenants": [t for _, t in named]})).all()
    return (Locked({row.id: account_from_row(row) for row in rows},
                   {row.id: row.entry_seq for row in rows}),
            {row.id: row.tenant_id for row in rows})


async def _execute(conn: AsyncConnection, gate: PolicyGate, r: Request,
                   working: dict[str, ledger.Account], owners: dict[str, str | None],
                   writes: _Writes) -> dict[str, Any]:
    """One request's policies and transfer, on the group's working accounts."""
    item, tenant = r.cmd.item, r.who.tenant.id
    op = commands.transfer_operation(r.who, item)
    # Book transfers read no usage counter: deciding writes nothing a failed request would
    # have to take back (a metered operation cannot be grouped this way).
    assert meter(op) is None, op
    ruling = await decide(conn, gate, op, subject_id=None, actor=r.who.actor,
                          reviewable=False)
    # The tenant sees its own accounts only; others' (and internal ones) are not found.
    visible = {a: working[a] for a in (item.from_account_id, item.to_account_id)
               if a in working and owners.get(a) == tenant}
    transfer = ledger.Transfer(ids.new_id("trf", r.who.region), item.from_account_id,
                               item.to_account_id, item.amount_minor, item.currency)
    ledger.post(visible, transfer)
    writes.transfers.append((transfer, item.reference, ids.new_id("jnl", r.who.region),
                             tenant))
    writes.events += [(r, e) for e in commands.transfer_events(transfer.id, item, ruling)]
    return {"type": "Transfer", "id": transfer.id}


async def _write_ledger(conn: AsyncConnection, region: str, locked: Locked,
                        working: dict[str, ledger.Account], writes: _Writes) -> None:
    if not writes.transfers:
        return
    posted = [t for t, _, _, _ in writes.transfers]
    journal_entries = ledger.entries(posted)
    entry_seq, changed, balances = balance_changes(journal_entries, locked, working)
    updated = (await conn.execute(_write, {
        "region": region, "phase": ledger.TransferStatus.POSTED.value,
        "j_id": [j for _, _, j, _ in writes.transfers],
        "j_tenant": [t for _, _, _, t in writes.transfers],
        "t_journal": [j for _, _, j, _ in writes.transfers],
        "t_tenant": [t for _, _, _, t in writes.transfers],
        **transfer_params(posted, [ref for _, ref, _, _ in writes.transfers]),
        **entry_params(journal_entries, entry_seq), **balances,
    })).scalar_one()
    assert updated == len(changed), (updated, len(changed))


async def _record(conn: AsyncConnection, region: str, requests: list[Request],
                  keys: dict[tuple[str, str], _Key], writes: _Writes,
                  trails: list[tuple[Request, Trail]]) -> None:
    """Every event and audit row of the group, every stored response, in one statement (as
    ``events.record`` does for one request: each event has an id, the published ones an
    outbox row, the audited ones an audit row naming it); then the claims of the keys whose
    requests failed are given back."""
    rows: list[tuple[str | None, str, str | None, str | None, Event]] = [
        (r.who.tenant.id, r.who.actor, r.origin, r.trace_context, e) for r, e in writes.events]
    rows += [(t.tenant_id, t.actor, r.origin, None, t.event) for r, t in trails]
    event_ids = [ids.new_id("evt", region) for _ in rows]
    published = [(i, row) for i, row in zip(event_ids, rows, strict=True) if row[4].published]
    audited = [(i, row) for i, row in zip(event_ids, rows, strict=True) if row[4].audited]
    answered = [(k, s) for k, s in keys.items()
                if s.claimed and s.owner is not None and not s.released]
    await conn.execute(_record_all, {
        "region": region, "operation": operation,
        "o_id": [i for i, _ in published], "o_tenant": [row[0] for _, row in published],
        "o_topic": [row[4].topic for _, row in published],
        "o_payload": [json.dumps(row[4].payload) for _, row in published],
        "o_trace": [row[3] for _, row in published],
        "a_id": [ids.new_id("aud", region) for _ in audited],
        "a_tenant": [row[0] for _, row in audited], "a_actor": [row[1] for _, row in audited],
        "a_topic": [row[4].topic for _, row in audited],
        "a_target": [row[4].target for _, row in audited],
        "a_detail": [json.dumps({"event_id": i, **row[4].payload}) for i, row in audited],
        "a_origin": [row[2] for _, row in audited],
        "k_tenant": [t for (t, _), _ in answered], "k_key": [k for (_, k), _ in answered],
        "k_response": [json.dumps(s.response) for _, s in answered],
        "k_hash": [s.digest for _, s in answered],
    })
    released = [k for k, s in keys.items() if s.claimed and (s.owner is None or s.released)]
    if released:
        await conn.execute(_release, {"region": region, "tenants": [t for t, _ in released],
                                      "keys": [k for _, k in released]})


async def _answers(conn: AsyncConnection, region: str, requests: list[Request],
                   answers: list[dict[str, Any] | DomainError]) -> list[Outcome]:
    wanted = [a["id"] for a in answers if isinstance(a, dict)]
    rows = {row.id: row for row in await conn.execute(_rows, {"region": region,
                                                              "ids": wanted})}
    out: list[Outcome] = []
    for r, a in zip(requests, answers, strict=True):
        if isinstance(a, DomainError):
            out.append(a)
            continue
        row = rows.get(a["id"])
        assert row is not None, a
        assert row.tenant_id == r.who.tenant.id, (a, r.who.tenant.id)
        out.append(row)
    return out
