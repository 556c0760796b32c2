"""Importing a bank statement: each booked credit becomes an incoming payment, once.

Entries are routed by their creditor address through the control plane's account directory
to the region that owns it; an address nobody owns goes to the suspense account of the region
whose bank account the statement belongs to. Each region's entries are received in
transactions of ``entries_per_txn_max``; an entry's bank reference is unique per region, so a
statement imported again (whole, or after a failure part-way) has no second effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.statement_matching import Outcome, Recorded, match, period
from payments.statements import StatementEntry
from regions import incoming, virtual_accounts
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.sealing import Sealer
from regions.tables import incoming_payments, tenants
from regions.tables import virtual_accounts as va_table

entries_per_txn_max = 1_000
actor = "cli:statements-import"


@dataclass(frozen=True, slots=True)
class ImportSummary:
    entries: int
    credited: int
    suspense: int
    duplicates: int


def _address(entry: StatementEntry) -> str:
    address = entry.creditor_iban or entry.creditor_account or ""
    return address.replace(" ", "").upper()


def _incoming(entry: StatementEntry, source: str) -> incoming.IncomingEntry:
    return incoming.IncomingEntry(
        bank_reference=entry.bank_reference, source=source, routing_key=_address(entry),
        amount_minor=entry.amount_minor, currency=entry.currency,
        sender_name=entry.sender_name, sender_iban=entry.sender_iban,
        reference=entry.reference, value_date=entry.value_date)


async def _regions(router: Router, directory_key: bytes, entries: Sequence[StatementEntry],
                   fallback: str) -> dict[str, list[StatementEntry]]:
    async def body(conn: AsyncConnection) -> dict[str, str | None]:
        return {a: await virtual_accounts.region_of(conn, directory_key, a)
                for a in {_address(e) for e in entries if _address(e)}}

    owners = await router.read_control(body)
    by_region: dict[str, list[StatementEntry]] = {}
    for e in entries:
        region = owners.get(_address(e)) or fallback
        by_region.setdefault(region, []).append(e)
    return by_region


async def _jurisdictions(router: Router, region: str, addresses: list[str]) -> dict[str, str]:
    """The jurisdiction of each tenant owning one of the addresses (for the policies)."""
    async def owners(conn: AsyncConnection) -> list[str]:
        rows = await conn.execute(select(va_table.c.tenant_id).where(
            va_table.c.region == region, va_table.c.routing_key.in_(addresses)).distinct())
        return [r.tenant_id for r in rows]

    tenant_ids = await router.read(region, owners)

    async def body(conn: AsyncConnection) -> dict[str, str]:
        rows = await conn.execute(select(tenants.c.id, tenants.c.jurisdiction).where(
            tenants.c.id.in_(tenant_ids)))
        return {r.id: r.jurisdiction for r in rows}

    return await router.read_control(body)


async def import_statement(router: Router, sealer: Sealer, gate: PolicyGate,
                           directory_key: bytes, entries: Sequence[StatementEntry], source: str,
                           fallback_region: str) -> ImportSummary:
    counts: Counter[str] = Counter()
    for region, mine in (await _regions(router, directory_key, entries,
                                        fallback_region)).items():
        jurisdictions = await _jurisdictions(router, region, [_address(e) for e in mine])
        for start in range(0, len(mine), entries_per_txn_max):
            chunk = mine[start:start + entries_per_txn_max]

            async def body(conn: AsyncConnection, chunk: list[StatementEntry] = chunk,
                           region: str = region, jurisdictions: dict[str, str] = jurisdictions
                           ) -> list[incoming.Received]:
                return [await incoming.receive(conn, sealer, gate, region, _incoming(e, source),
                                               actor=actor, jurisdictions=jurisdictions)
                        for e in chunk]

            for got in await router.run(region, body):
                counts["duplicates" if not got.created else got.status.lower()] += 1
    return ImportSummary(len(entries), counts["credited"], counts["suspense"],
                         counts["duplicates"])


async def recorded_in(router: Router, region: str, currencies: Sequence[str],
                      start: date, end: date) -> list[Recorded]:
    """The region's incoming payments in those currencies with value dates in [start, end]."""
    async def body(conn: AsyncConnection) -> list[Recorded]:
        t = incoming_payments
        found = await conn.execute(select(
            t.c.id, t.c.bank_reference, t.c.amount_minor, t.c.currency, t.c.reference,
            t.c.value_date).where(t.c.region == region, t.c.currency.in_(list(currencies)),
                                  t.c.value_date.between(start, end)).order_by(t.c.id))
        return [Recorded(r.id, r.bank_reference, r.amount_minor, r.currency, r.reference,
                         r.value_date) for r in found]

    return await router.read(region, body)


async def reconcile_statement(router: Router, region: str, entries: Sequence[StatementEntry],
                              tolerance_days: int) -> Outcome:
    """Match a statement against what the region recorded (``payments.statement_matching``)."""
    span = period(entries, tolerance_days)
    if span is None:
        return Outcome([], [])
    recorded = await recorded_in(router, region, sorted({e.currency for e in entries}), *span)
    return match(entries, recorded, tolerance_days)
