"""Erasure by crypto-shredding: destroying a data subject's data keys.

Personal fields are sealed under data keys (``regions.sealing``). Erasing a subject overwrites
its keys' wrapped copies with NULL and stamps ``destroyed_at``: every ciphertext sealed under
them, in the live database and in every backup taken before, becomes noise, while the rows,
the ledger and every amount stay as they were. Other processes stop opening the keys within
about a second (``regions.sealing.erasure_check_s``). A backup restored from before the erasure
still holds the wrapped keys: restoring one means erasing again (docs/security.md).

- ``eraseBeneficiary``: one beneficiary's key. Refused while a payout to it is still on its
  way (its rail needs the details); done ones keep their amounts, the payee reads as erased.
- ``corridor tenant erase``: every key of the tenant in its home region (its beneficiaries',
  and its own shared key: incoming payments' senders, webhook secrets). Its API keys are
  revoked and it can no longer act; its accounts and journals stay, balanced and readable
  by Corridor's operators. Refused while any of its payouts is on its way. Money in suspense
  that came for it is sealed under the region's suspense key, not the tenant's, so the sender
  can still be paid back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import DomainError, NotFound
from payments.payouts import PayoutStatus
from payments.principal import Principal
from regions import events, idempotency, xr_dispatch
from regions.events import Event
from regions.tables import beneficiaries, data_keys, payouts, virtual_accounts, webhook_endpoints

in_flight = (PayoutStatus.PENDING.value, PayoutStatus.HELD_FOR_REVIEW.value,
             PayoutStatus.PROCESSING.value)
erased = "ERASED"


class ErasureRefused(DomainError):
    code = "ERASURE_REFUSED"


@dataclass(frozen=True, slots=True)
class EraseBeneficiary:
    beneficiary_id: str
    idempotency_key: str


async def destroy_keys(conn: AsyncConnection, region: str, key_ids: Sequence[str]) -> int:
    """Destroy the keys not yet destroyed; returns how many were."""
    if not key_ids:
        return 0
    done = await conn.execute(update(data_keys).where(
        data_keys.c.region == region, data_keys.c.id.in_(list(key_ids)),
        data_keys.c.destroyed_at.is_(None)).values(wrapped_key=None, destroyed_at=func.now()))
    return int(done.rowcount)


async def _payouts_in_flight(conn: AsyncConnection, region: str, tenant_id: str,
                             beneficiary_id: str | None = None) -> int:
    q = select(func.count()).select_from(payouts).where(
        payouts.c.region == region, payouts.c.tenant_id == tenant_id,
        payouts.c.status.in_(in_flight))
    if beneficiary_id is not None:
        q = q.where(payouts.c.beneficiary_id == beneficiary_id)
    return int((await conn.execute(q)).scalar_one())


async def erase_beneficiary_txn(conn: AsyncConnection, who: Principal,
                                cmd: EraseBeneficiary) -> dict[str, Any]:
    """Shred one beneficiary's personal data; erasing an erased one changes nothing."""
    async def effect() -> tuple[dict[str, Any], list[Event]]:
        row = (await conn.execute(select(beneficiaries).where(
            beneficiaries.c.region == who.region, beneficiaries.c.tenant_id == who.tenant.id,
            beneficiaries.c.id == cmd.beneficiary_id).with_for_update())).first()
        if row is None:
            raise NotFound("beneficiary", cmd.beneficiary_id)
        response = {"type": "Beneficiary", "id": row.id, "data_key_id": row.data_key_id}
        if row.status == erased:
            return response, []
        pending = await _payouts_in_flight(conn, who.region, who.tenant.id, row.id)
        if pending:
            raise ErasureRefused(f"beneficiary {row.id!r} has {pending} payout(s) on their way;"
                                 " erase it once they are final (or cancel them)")
        destroyed = await destroy_keys(conn, who.region, [row.data_key_id])
        # The regions that paid this beneficiary hold a sealed copy of it: shred those too.
        await xr_dispatch.send_erasures(conn, who.region, who.tenant.id, row.id)
        await conn.execute(update(beneficiaries).where(
            beneficiaries.c.region == who.region, beneficiaries.c.id == row.id).values(
            status=erased))
        return response, [Event("beneficiary.erased", {
            "beneficiary_id": row.id, "data_keys_destroyed": destroyed}, row.id)]

    return await idempotency.once(conn, who, cmd.idempotency_key, "eraseBeneficiary",
                                  {"beneficiaryId": cmd.beneficiary_id}, effect)


@dataclass(frozen=True, slots=True)
class TenantErased:
    tenant_id: str
    region: str
    data_keys_destroyed: list[str]
    beneficiaries_erased: int


async def erase_tenant_region_txn(conn: AsyncConnection, region: str, tenant_id: str,
                                  actor: str, reason: str) -> TenantErased:
    """The regional half of a tenant's erasure: its data keys, beneficiaries, addresses and
    webhook endpoints, in its home region. Run again, it destroys only what is left."""
    pending = await _payouts_in_flight(conn, region, tenant_id)
    if pending:
        raise ErasureRefused(f"tenant {tenant_id!r} has {pending} payout(s) on their way; "
                             "erase it once they are final (or cancel them)")
    keys = [r.id for r in await conn.execute(select(data_keys.c.id).where(
        data_keys.c.region == region, data_keys.c.tenant_id == tenant_id,
        data_keys.c.destroyed_at.is_(None)).with_for_update())]
    await destroy_keys(conn, region, keys)
    await xr_dispatch.send_erasures(conn, region, tenant_id)
    bens = await conn.execute(update(beneficiaries).where(
        beneficiaries.c.region == region, beneficiaries.c.tenant_id == tenant_id,
        beneficiaries.c.status != erased).values(status=erased))
    await conn.execute(update(virtual_accounts).where(
        virtual_accounts.c.region == region, virtual_accounts.c.tenant_id == tenant_id)
        .values(status="CLOSED"))
    await conn.execute(update(webhook_endpoints).where(
        webhook_endpoints.c.region == region, webhook_endpoints.c.tenant_id == tenant_id)
        .values(status="DISABLED"))
    done = TenantErased(tenant_id, region, keys, int(bens.rowcount))
    await events.record(conn, region, tenant_id, actor, [Event("tenant.erased", {
        "tenant_id": tenant_id, "data_keys_destroyed": len(keys),
        "beneficiaries_erased": done.beneficiaries_erased, "reason": reason}, tenant_id)])
    return done
