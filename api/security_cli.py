"""Operators' key and erasure commands; each is recorded in the control plane's audit trail.

    corridor keys rotate --region R [--settle-s S]   new KEK version, then rewrap every data key
    corridor keys status [--region R]                live data keys per KEK version
    corridor tenant erase TENANT --reason TEXT       shred a tenant's personal data

``tenant erase`` first suspends the tenant (status ``erasing``, every API key revoked), then
destroys its data keys in its home region, then marks it ``erased``. When payouts of the
tenant are still on their way it stops after the suspension and says so: run it again once
they are final. Running it again after it finished changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from functools import partial
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import InvalidInput, NotFound
from regions import erasure, events, key_rotation
from regions.keyring import KeyProvider
from regions.router import Router
from regions.tables import api_keys, tenants

settle_s_default = 10.0
reason_length_max = 500


def cli_actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


def add_parsers(sub: Any, tenant: Any) -> None:
    keys = sub.add_parser("keys").add_subparsers(dest="action", required=True)
    rot = keys.add_parser("rotate", help="rotate a region's key-encryption key and rewrap")
    rot.add_argument("--region", required=True)
    rot.add_argument("--settle-s", type=float, default=settle_s_default,
                     help="wait before the second rewrap pass, for processes still caching "
                          "the old version (default %(default)s)")
    st = keys.add_parser("status", help="live data keys per key-encryption key version")
    st.add_argument("--region", help="one region (default: every region)")
    er = tenant.add_parser("erase", help="crypto-shred a tenant's personal data")
    er.add_argument("tenant_id")
    er.add_argument("--reason", required=True, help="recorded in the audit trail")


async def dispatch(args: argparse.Namespace) -> int:
    from api.settings import from_env

    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=2)
    try:
        if args.command == "tenant":
            return await erase_tenant(router, args.tenant_id, args.reason)
        regions = [r.code for r in settings.topology.regions]
        chosen = [args.region] if getattr(args, "region", None) else regions
        unknown = [r for r in chosen if r not in regions]
        if unknown:
            raise InvalidInput(f"unknown region {unknown[0]!r}; one of {regions}", "region")
        from regions.keyring import provider_from_settings

        keys = provider_from_settings(settings.key_provider, settings.keyring_path, regions,
                                      settings.key_providers)
        if args.action == "status":
            for region in chosen:
                used = await router.read(region, partial(key_rotation.versions_in_use,
                                                         region=region))
                print(json.dumps({"region": region, "current": keys.current_kek_id(region),
                                  "live_data_keys": used}))
            return 0
        print(json.dumps(await rotate(router, keys, chosen[0], args.settle_s)))
        return 0
    finally:
        await router.dispose()


async def rotate(router: Router, keys: KeyProvider, region: str, settle_s: float
                 ) -> dict[str, Any]:
    """Rotate, rewrap, wait ``settle_s``, rewrap what was wrapped meanwhile; audited."""
    before = keys.current_kek_id(region)
    current = keys.rotate(region)
    await _audit(router, "keys.rotated", region, {"region": region, "from": before,
                                                  "to": current})
    rewrapped = await rewrap(router, keys, region, current)
    if settle_s > 0:
        await asyncio.sleep(settle_s)
    rewrapped += await rewrap(router, keys, region, current)
    used = await router.read(region, lambda c: key_rotation.versions_in_use(c, region))
    report = {"region": region, "from": before, "to": current, "rewrapped": rewrapped,
              "live_data_keys": used}
    await _audit(router, "keys.rewrapped", region, report)
    return report


async def rewrap(router: Router, keys: KeyProvider, region: str, current: str) -> int:
    done, after = 0, ""
    while True:
        batch = await router.run(region, partial(key_rotation.rewrap_batch, keys=keys,
                                                 region=region, current=current, after=after))
        if batch.last_id is None:
            return done
        done, after = done + batch.rewrapped, batch.last_id


async def erase_tenant(router: Router, tenant_id: str, reason: str) -> int:
    reason = reason.strip()
    if not reason or len(reason) > reason_length_max:
        raise InvalidInput(f"--reason needs 1 to {reason_length_max} characters", "reason")
    actor = cli_actor()

    async def suspend(conn: AsyncConnection) -> str:
        row = (await conn.execute(select(tenants.c.home_region, tenants.c.status).where(
            tenants.c.id == tenant_id).with_for_update())).first()
        if row is None:
            raise NotFound("tenant", tenant_id)
        if row.status != "erased":
            await conn.execute(update(tenants).where(tenants.c.id == tenant_id)
                               .values(status="erasing"))
            await conn.execute(update(api_keys).where(
                api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=func.now()))
            await events.record_control(conn, actor, "tenant.erasure_started", tenant_id,
                                        {"reason": reason}, tenant_id=tenant_id)
        return str(row.home_region)

    region = await router.run_control(suspend)
    try:
        done = await router.run(region, lambda c: erasure.erase_tenant_region_txn(
            c, region, tenant_id, actor, reason))
    except erasure.ErasureRefused as exc:
        print(json.dumps({"tenant_id": tenant_id, "status": "erasing", "refused": str(exc)}))
        return 1

    async def finish(conn: AsyncConnection) -> None:
        await conn.execute(update(tenants).where(tenants.c.id == tenant_id)
                           .values(status="erased", erased_at=func.coalesce(
                               tenants.c.erased_at, func.now())))
        await events.record_control(conn, actor, "tenant.erased", tenant_id, {
            "reason": reason, "region": region,
            "data_keys_destroyed": len(done.data_keys_destroyed),
            "beneficiaries_erased": done.beneficiaries_erased}, tenant_id=tenant_id)

    await router.run_control(finish)
    print(json.dumps({"tenant_id": tenant_id, "status": "erased", "region": region,
                      "data_keys_destroyed": len(done.data_keys_destroyed),
                      "beneficiaries_erased": done.beneficiaries_erased}))
    return 0


async def _audit(router: Router, action: str, region: str, detail: dict[str, Any]) -> None:
    """Key operations go to both trails: the region's (whose keys they are) and the
    control plane's (the operator's command)."""
    actor = cli_actor()
    await router.run(region, lambda c: events.record(
        c, region, None, actor, [events.Event(action, detail, region, published=False)]))
    await router.run_control(lambda c: events.record_control(c, actor, action, region, detail))
