"""The bank test's checker: what must hold whatever the faults did.

1. Money is neither created nor lost. Per region and currency, every account but the boundary
   (``incoming_clearing``, the bank's side of the money received) sums to what was received at
   setup: customer balances, holds in flight, fees, FX liquidity, payout clearing (paid out or
   on its way), ``due_to``/``due_from`` and ``settlement`` accounts. Every journal balances
   (posted and pending sum to zero). Checked on every read the reader takes during the run (one
   statement per region: a consistent snapshot; the regions' ledgers are apart, each balanced
   on its own) and at the end.
2. No customer account is overdrawn (posted debits and holds never exceed credits), in the
   reader's snapshots, in the API's answers during the run and at the end.
3. Every acknowledged operation exists exactly once: its idempotency key holds its answer's id;
   the customer transfers in the database are exactly those of the acknowledged operations
   (and the setup's funding); the payouts are exactly the acknowledged ones, and each
   cross-region payout has one record in its rail's region, in the same final state.
4. Each customer account's balance is what the acknowledged operations make it, to the minor
   unit (a double effect or a lost one shows here even when every journal balances).
5. Every replay (the same key and input sent again after a definitive answer) returned the
   original answer.
6. Every payout is final, on both sides; every operation got a definitive answer, and none an
   answer the workload never expects (a conflict, a validation error, a top-level error). The
   API never failed itself (HTTP 5xx but 503, ``INTERNAL_SERVER_ERROR``; checked in
   ``tests.chaos.run`` from ``History.internal_errors``): a database it cannot reach is
   ``UNAVAILABLE``.
7. Cross-region settlement reconciles: per currency, the two regions' obligations, batches and
   due-to/due-from balances agree (``corridor reconcile``: zero breaks).
8. The operators' own ledger check finds nothing (``corridor ledger verify``: journals balance,
   every balance is the sum of its transfers, entries are dense, payout holds match).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text

from regions import ledger_checks, reconciliation
from regions.router import Router
from tests.chaos.history import History, Op, Step, business_errors, minor_units, step_success
from tests.chaos.tenants import Tenant
from tests.payouts_helpers import assert_ledger_consistent

final_statuses = frozenset({"COMPLETED", "FAILED", "RETURNED", "CANCELLED"})
boundary = "incoming_clearing.%"
anomalies_per_check_max = 20
"""A broken invariant usually breaks it many times; the report keeps the first few."""

_totals = text("""
    SELECT currency,
           sum(credits_posted - debits_posted) AS posted,
           sum(credits_pending - debits_pending) AS pending,
           sum(CASE WHEN purpose LIKE :boundary THEN 0
                    ELSE credits_posted - debits_posted + credits_pending - debits_pending
               END) AS held,
           count(*) FILTER (WHERE debits_must_not_exceed_credits
                              AND debits_posted + debits_pending > credits_posted) AS overdrawn
    FROM accounts WHERE region = :r GROUP BY currency ORDER BY currency""")
_holders = text("""
    SELECT currency, coalesce(split_part(purpose, '.', 1), kind) AS holder,
           sum(credits_posted - debits_posted + credits_pending - debits_pending) AS net
    FROM accounts WHERE region = :r GROUP BY 1, 2 ORDER BY 1, 2""")


def region_of(entity_id: str) -> str:
    """Corridor's ids name their region: ``<kind>_<region>_<ulid>``."""
    return entity_id.split("_")[1]


async def rows(router: Router, region: str, sql: Any, **params: Any) -> list[Any]:
    return await router.read(region, lambda c: _fetch(c, sql, params))


async def _fetch(conn: Any, sql: Any, params: dict[str, Any]) -> list[Any]:
    return list(await conn.execute(sql if not isinstance(sql, str) else text(sql), params))


def funded_totals(tenants: list[Tenant]) -> dict[tuple[str, str], int]:
    """(region, currency) -> what the setup's incoming payments credited."""
    found: Counter[tuple[str, str]] = Counter()
    for t in tenants:
        for account_id, minor in t.funded_minor.items():
            found[(t.region, t.currency_of(account_id))] += minor
    return dict(found)


async def totals_anomalies(router: Router, region: str,
                           funded: dict[tuple[str, str], int]) -> list[str]:
    """Check 1 and 2 on one consistent read of the region's accounts."""
    found: list[str] = []
    seen = set()
    for r in await rows(router, region, _totals, r=region, boundary=boundary):
        seen.add(r.currency)
        posted, pending, held = int(r.posted), int(r.pending), int(r.held)
        if (posted, pending) != (0, 0):
            found.append(f"{region} {r.currency}: journals do not balance (posted {posted}, "
                         f"pending {pending})")
        expected = funded.get((region, r.currency), 0)
        if held != expected:
            found.append(f"{region} {r.currency}: {held} held, {expected} received "
                         f"({held - expected:+d})")
        if r.overdrawn:
            found.append(f"{region} {r.currency}: {r.overdrawn} overdrawn customer account(s)")
    missing = sorted(c for (reg, c), v in funded.items() if reg == region and v and c not in seen)
    found += [f"{region} {c}: no accounts, {funded[(region, c)]} received" for c in missing]
    return found


async def verify_anomalies(router: Router, region: str) -> list[str]:
    """Check 8: what ``corridor ledger verify`` finds in ``region``."""
    async def body(conn: Any) -> ledger_checks.Report:
        return await ledger_checks.verify(conn, region, anomalies_per_check_max)

    report = await router.run(region, body)
    return [f"{region} ledger verify: {f.kind} {f.subject}: {f.detail}"
            for f in report.findings]


async def holders(router: Router, region: str) -> dict[str, dict[str, int]]:
    """Currency -> holder (customer, fees, payout_clearing, due_to:<peer>, ...) -> net."""
    found: dict[str, dict[str, int]] = {}
    for r in await rows(router, region, _holders, r=region):
        found.setdefault(r.currency, {})[r.holder] = int(r.net)
    return found


async def payout_statuses(router: Router, tenants: list[Tenant]) -> dict[str, dict[str, int]]:
    """Region -> "<status>" (its own payouts, by rail region) -> count."""
    found: dict[str, dict[str, int]] = {}
    for region in sorted({t.region for t in tenants}):
        for r in await rows(router, region, """
                SELECT status, rail_region = region AS local, count(*) AS n FROM payouts
                WHERE region = :r AND tenant_id = ANY(:t) GROUP BY 1, 2 ORDER BY 1, 2""",
                            r=region, t=[t.tenant_id for t in tenants]):
            where = "local" if r.local else "cross-region"
            found.setdefault(region, {})[f"{r.status} {where}"] = int(r.n)
    return found


def _identity(mutation: str, data: dict[str, Any]) -> Any:
    """What a replay must answer again (a payout's or quote's status may move on)."""
    if mutation == "createTransferBatch" and data.get("__typename") == "TransferBatch":
        return (data["id"], data["succeeded"], data["failed"],
                [(i["index"], (i["transfer"] or {}).get("id"), (i["error"] or {}).get("code"))
                 for i in data["items"]])
    if mutation == "createPayoutBatch" and data.get("__typename") == "PayoutBatch":
        return (data["id"], data["itemCount"], data["rejected"], _batch_payouts(data))
    if mutation == "executeFxQuote" and data.get("__typename") == "Conversion":
        return (data["id"], data["sell"], data["buy"], data["sellTransfer"]["id"],
                data["buyTransfer"]["id"])
    keep = ("__typename", "id", "amount", "fee", "fromAccountId", "toAccountId", "accountId",
            "sell", "buy", "rate", "code")
    return {k: data.get(k) for k in keep}


def _batch_payouts(data: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(e["node"]["id"], e["node"]["amount"], e["node"]["fee"])
            for e in data["items"]["edges"]]


def history_anomalies(history: History) -> list[str]:
    """Checks 5 and 6 on the history alone."""
    found: list[str] = []
    for op in history.ops:
        for step in op.steps:
            found += _step_anomalies(op, step)
    return found


def _step_anomalies(op: Op, step: Step) -> list[str]:
    name = f"op {op.n} ({op.kind}) {step.mutation} key {step.key}"
    answer = step.answer
    if answer.data is None:
        return [f"{name}: {answer.unexpected or 'no definitive answer'} after "
                f"{len(answer.attempts)} tries"]
    if answer.typename not in (step_success[step.mutation], *business_errors):
        return [f"{name}: unexpected answer {answer.data}"]
    found = []
    original = _identity(step.mutation, answer.data)
    for replay in step.replays:
        if replay.data is None or _identity(step.mutation, replay.data) != original:
            found.append(f"{name}: replay answered {replay.data or replay.unexpected}, "
                         f"first answer {answer.data}")
    return found


Payouts = dict[str, tuple[int, int, str]]
"""Payout id -> (amount, fee, account) as acknowledged."""


def effects(history: History) -> tuple[Counter[str], set[str], Payouts]:
    """From the acknowledged answers: each customer account's posted change (payouts left out:
    they move by their final status), the transfer ids they made, and the payouts."""
    change: Counter[str] = Counter()
    transfers: set[str] = set()
    payouts: Payouts = {}
    for op in history.ops:
        if not op.acknowledged:
            continue
        result = op.result
        if op.kind in ("payout", "payout_batch"):
            made = [result] if op.kind == "payout" else [
                e["node"] for e in result["items"]["edges"]]
            payouts |= {str(p["id"]): (minor_units(p["amount"]), minor_units(p["fee"]),
                                       str(p["accountId"])) for p in made}
            continue
        moved = {"transfer": lambda r: [r],
                 "batch": lambda r: [i["transfer"] for i in r["items"] if i["transfer"]],
                 "fx": lambda r: [r["sellTransfer"], r["buyTransfer"]]}[op.kind](result)
        for t in moved:
            transfers.add(str(t["id"]))
            change[t["fromAccountId"]] -= minor_units(t["amount"])
            change[t["toAccountId"]] += minor_units(t["amount"])
    return change, transfers, payouts


async def ledger_anomalies(router: Router, history: History, tenants: list[Tenant]) -> list[str]:
    """Checks 3, 4 and the payouts' part of 6, on the database after the run."""
    change, made, acknowledged = effects(history)
    found: list[str] = []
    for region in sorted({t.region for t in tenants}):
        mine = [t for t in tenants if t.region == region]
        ids = [t.tenant_id for t in mine]
        payouts = {r.id: r for r in await rows(router, region, """
            SELECT id, status, amount_minor, fee_minor, account_id, hold_transfer_id,
                   fee_transfer_id, return_transfer_id, rail_region, tenant_id FROM payouts
            WHERE region = :r AND tenant_id = ANY(:t)""", r=region, t=ids)}
        wanted = {p for p in acknowledged if region_of(p) == region}
        found += [f"payout {p} was acknowledged but is not in {region}"
                  for p in sorted(wanted - payouts.keys())]
        found += [f"payout {p} in {region} was never acknowledged"
                  for p in sorted(payouts.keys() - acknowledged.keys())]
        found += [f"payout {p.id} in {region}: (amount, fee, account) "
                  f"{(p.amount_minor, p.fee_minor, p.account_id)}, acknowledged "
                  f"{acknowledged[p.id]}" for p in payouts.values()
                  if p.id in acknowledged
                  and acknowledged[p.id] != (p.amount_minor, p.fee_minor, p.account_id)]
        found += [f"payout {p.id} in {region} ended {p.status}" for p in payouts.values()
                  if p.status not in final_statuses]
        found += await _transfers_once(router, region, ids, made, payouts)
        found += await _balances(router, region, mine, change, payouts)
        found += await _keys(router, region, history, ids)
        found += await _crossed(router, region, payouts)
        found += await _batches(router, region, history, ids)
        for t in mine:
            try:
                await assert_ledger_consistent(router, region, t.tenant_id)
            except AssertionError as exc:
                found.append(f"{region} ledger of {t.tenant_id}: {exc}")
    return found


async def _transfers_once(router: Router, region: str, tenant_ids: list[str], made: set[str],
                          payouts: dict[str, Any]) -> list[str]:
    """The tenants' transfers are the acknowledged ones, the payouts' holds, fees and returns,
    and the funding: none missing, none extra."""
    held = {t for p in payouts.values()
            for t in (p.hold_transfer_id, p.fee_transfer_id, p.return_transfer_id) if t}
    wanted = {t for t in made if region_of(t) == region} | held
    found_rows = await rows(router, region, """
        SELECT t.id FROM transfers t JOIN journals j ON j.region = t.region AND j.id = t.journal_id
        WHERE t.region = :r AND t.tenant_id = ANY(:t) AND j.kind <> 'incoming_payment'""",
                            r=region, t=tenant_ids)
    there = {r.id for r in found_rows}
    return ([f"transfer {t} was acknowledged but is not in {region}"
             for t in sorted(wanted - there)]
            + [f"transfer {t} in {region} belongs to no acknowledged operation"
               for t in sorted(there - wanted)])


def _payout_change(p: Any) -> tuple[int, int]:
    """(posted, held) change of the payout's account."""
    total = p.amount_minor + p.fee_minor
    if p.status == "COMPLETED":
        return -total, 0
    if p.status == "RETURNED":
        return -p.fee_minor, 0
    if p.status in ("FAILED", "CANCELLED"):
        return 0, 0
    return 0, total


async def _balances(router: Router, region: str, mine: list[Tenant], change: Counter[str],
                    payouts: dict[str, Any]) -> list[str]:
    held: Counter[str] = Counter()
    posted = Counter(change)
    for p in payouts.values():
        moved, on_hold = _payout_change(p)
        posted[p.account_id] += moved
        held[p.account_id] += on_hold
    accounts = {r.id: r for r in await rows(router, region, """
        SELECT id, credits_posted - debits_posted AS posted, debits_pending, credits_pending
        FROM accounts WHERE region = :r AND tenant_id = ANY(:t)""",
                                            r=region, t=[t.tenant_id for t in mine])}
    found = []
    expected_ids = {a for t in mine for ids in t.accounts.values() for a in ids}
    found += [f"account {a} in {region} was never opened by the workload"
              for a in sorted(accounts.keys() - expected_ids)]
    for t in mine:
        for account_id, funded in t.funded_minor.items():
            row = accounts.get(account_id)
            want = (funded + posted[account_id], held[account_id], 0)
            got = None if row is None else (row.posted, row.debits_pending, row.credits_pending)
            if got != want:
                found.append(f"account {account_id} in {region}: (posted, held, incoming held) "
                             f"{got}, the acknowledged operations make it {want}")
    return found


async def _keys(router: Router, region: str, history: History, tenant_ids: list[str]
                ) -> list[str]:
    """Each successful step's key holds its answer's id; a refused step's key was freed."""
    stored = {(r.tenant_id, r.key): r for r in await rows(router, region, """
        SELECT tenant_id, key, operation, response FROM idempotency_keys
        WHERE region = :r AND tenant_id = ANY(:t) AND key LIKE 'chaos-%'""",
                                                            r=region, t=tenant_ids)}
    found = []
    for op in history.ops:
        if op.region != region:
            continue
        for step in op.steps:
            row = stored.pop((op.tenant_id, step.key), None)
            data = step.answer.data
            ok = step.answer.typename == step_success[step.mutation]
            if ok and (row is None or row.response.get("id") != data["id"]
                       or row.operation != step.mutation):
                found.append(f"key {step.key}: answered {data['id']}, stored "
                             f"{row and row.response}")
            elif not ok and row is not None:
                found.append(f"key {step.key}: answered {step.answer.typename}, yet stored "
                             f"{row.response}")
    found += [f"key {key} of {tenant} in {region} was never sent by the workload"
              for tenant, key in sorted(stored)]
    return found


async def _crossed(router: Router, origin: str, payouts: dict[str, Any]) -> list[str]:
    """Each cross-region payout has one record in its rail's region, in the same final state."""
    found = []
    for destination in sorted({p.rail_region for p in payouts.values()} - {origin}):
        theirs = {r.id: r for r in await rows(router, destination, """
            SELECT id, status, amount_minor FROM xr_payouts
            WHERE region = :r AND origin = :o""", r=destination, o=origin)}
        for p in payouts.values():
            if p.rail_region != destination:
                continue
            there = theirs.pop(p.id, None)
            if there is None or there.status != p.status or there.amount_minor != p.amount_minor:
                found.append(f"payout {p.id} {p.status} in {origin}, in {destination}: "
                             f"{there and (there.status, there.amount_minor)}")
        found += [f"{destination} paid {i} for {origin}, which has no such payout"
                  for i in sorted(theirs)]
    return found


async def settlement_anomalies(router: Router, a: str, b: str) -> list[str]:
    """Check 7: ``corridor reconcile``'s comparison of the pair, per currency."""
    found = []
    for region_a, region_b, currency in await reconciliation.pairs(router):
        if {region_a, region_b} != {a, b}:
            continue
        report = await reconciliation.reconcile(router, region_a, region_b, currency)
        found += [f"reconcile {region_a}/{region_b} {currency}: {x.kind} {x.detail}"
                  for x in report.breaks]
    return found


async def _batches(router: Router, region: str, history: History, tenant_ids: list[str]
                   ) -> list[str]:
    """The payout batches are the acknowledged ones, each COMPLETED (no item waits)."""
    wanted = {str(op.result["id"]) for op in history.ops
              if op.kind == "payout_batch" and op.acknowledged and op.region == region}
    there = {r.id: r.status for r in await rows(router, region, """
        SELECT id, status FROM payout_batches WHERE region = :r AND tenant_id = ANY(:t)""",
                                                r=region, t=tenant_ids)}
    return ([f"payout batch {b} was acknowledged but is not in {region}"
             for b in sorted(wanted - there.keys())]
            + [f"payout batch {b} in {region} was never acknowledged"
               for b in sorted(there.keys() - wanted)]
            + [f"payout batch {b} in {region} ended {s}" for b, s in sorted(there.items())
               if s != "COMPLETED"])
