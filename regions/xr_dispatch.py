"""A payout's trip to the region whose rail pays it: what may cross, and the sealed instruction.

Only what the paying region needs crosses: the payee's name and account (``needed_fields``), and
the partner's reference where both regions' policies let it (``optional_fields``). Both ends'
``exportable_fields`` must allow a field (``policies.residency``); the destination's end is
every jurisdiction the destination region serves. A payout whose payee cannot cross is refused
when it is created and, should a policy change meanwhile, failed before it leaves.

The payee travels sealed for the destination: a fresh data key seals it (AES-256-GCM, associated
data naming the origin tenant, ``xr_payouts``, the payout and the column) and is wrapped by the
destination region's key-encryption key, so only the destination opens it, and its data key
lands in the destination's ``data_keys`` as it came.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import crypto
from payments.bank_details import BankDetails
from payments.errors import PolicyDenied
from policies.residency import fields_allowed
from regions import xr
from regions.policy_gate import PolicyGate
from regions.sealing import Place, Sealer
from regions.tables import payouts

needed_fields = frozenset({"payee_name", "payee_account"})
optional_fields = frozenset({"reference"})
table_name = "xr_payouts"
payee_column = "payee"
instruct_kind = "payout.instruct"
outcome_kind = "payout.outcome"
returned_kind = "payout.returned"
residency_code = "DATA_RESIDENCY"
erase_kind = "payee.erase"
erase_ids_max = 1_000
"""Payout ids per erasure message (a tenant's erasure sends as many messages as it needs)."""


def fields_for(gate: PolicyGate, jurisdiction: str, origin: str, destination: str
               ) -> frozenset[str]:
    """The payee fields that go with a payout from ``origin`` to ``destination``;
    ``PolicyDenied`` when a field the rail needs may not go."""
    mine = gate.params(jurisdiction)
    allowed = frozenset(needed_fields | optional_fields)
    for other in gate.jurisdictions_of_region(destination):
        allowed &= fields_allowed(mine, origin, gate.params(other), destination)
    missing = sorted(needed_fields - allowed)
    if missing:
        raise PolicyDenied(
            f"the payee's details may not go from {origin} to {destination}, whose rail pays "
            f"this payout", [f"{residency_code}: exportable_fields does not let "
                             f"{', '.join(missing)} go from {origin} to {destination}"])
    return allowed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def seal_payee(sealer: Sealer, destination: str, tenant_id: str, payout_id: str,
                     payee_name: str, details: BankDetails) -> dict[str, str]:
    """The payee sealed under a new data key wrapped by ``destination``'s key."""
    key = crypto.new_data_key()
    wrapped = await sealer.wrap(destination, key)
    sealed = Sealer.seal(key, Place(tenant_id, table_name, payout_id), payee_column,
                         json.dumps({"name": payee_name, "account": asdict(details)},
                                    separators=(",", ":"), sort_keys=True))
    assert sealed is not None
    return {"kek_id": wrapped.kek_id, "wrapped_key": _b64(wrapped.ciphertext),
            "payee_sealed": _b64(sealed)}


async def send_erasures(conn: AsyncConnection, region: str, tenant_id: str,
                        beneficiary_id: str | None = None) -> int:
    """Tell every region that paid one of these payouts to shred its copy of the payee (the
    tenant's, or one beneficiary's), in the erasure's transaction; how many payouts named.
    Only payouts that left (a final status after PROCESSING) can have a copy; a region that
    has none for an id ignores it."""
    q = select(payouts.c.id, payouts.c.rail_region).where(
        payouts.c.region == region, payouts.c.tenant_id == tenant_id,
        payouts.c.rail_region != region,
        payouts.c.status.in_(("COMPLETED", "FAILED", "RETURNED"))).order_by(payouts.c.id)
    if beneficiary_id is not None:
        q = q.where(payouts.c.beneficiary_id == beneficiary_id)
    by_region: dict[str, list[str]] = {}
    for row in await conn.execute(q):
        by_region.setdefault(row.rail_region, []).append(row.id)
    for destination, ids in sorted(by_region.items()):
        for start in range(0, len(ids), erase_ids_max):
            await xr.send(conn, region, destination, erase_kind,
                          {"tenant_id": tenant_id,
                           "payout_ids": ids[start:start + erase_ids_max]})
    return sum(len(ids) for ids in by_region.values())


async def send_instruction(conn: AsyncConnection, sealer: Sealer, row: Any, payee_name: str,
                           details: BankDetails, fields: frozenset[str]) -> str:
    """Queue the payout's instruction for its rail's region, in the caller's transaction."""
    payload: dict[str, Any] = {
        "payout_id": row.id, "tenant_id": row.tenant_id, "amount_minor": row.amount_minor,
        "currency": row.currency, "rail": row.rail, "purpose_code": row.purpose_code,
        "reference": row.reference if "reference" in fields else None,
        "fields": sorted(fields),
        **await seal_payee(sealer, row.rail_region, row.tenant_id, row.id, payee_name, details),
    }
    return await xr.send(conn, row.region, row.rail_region, instruct_kind, payload)
