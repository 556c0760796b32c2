"""Rotating a region's key-encryption key, and rewrapping its data keys under the new version.

``rotate`` makes a new KEK version current at the provider; every old version still unwraps,
so nothing breaks in between. ``rewrap`` then walks the region's live data keys in id order,
a bounded, locked batch per transaction, and has the provider rewrap each one not yet under
the current version (KMS and Vault do it without the data key leaving them). Destroyed keys
are left alone: there is nothing to rewrap. Processes that have not yet noticed the rotation
(providers cache the current version for a few seconds) may still wrap new keys under the old
one for that long, so ``corridor keys rotate`` makes a second pass after ``settle_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions.keyring import KeyProvider, WrappedKey

rewrap_batch_rows = 500

_stale = text("""
    SELECT id, kek_id, wrapped_key FROM data_keys
    WHERE region = :region AND wrapped_key IS NOT NULL AND kek_id <> :current AND id > :after
    ORDER BY id LIMIT :limit FOR UPDATE""")

_store = text("""
    UPDATE data_keys AS d SET kek_id = u.kek_id, wrapped_key = u.wrapped_key
    FROM unnest(CAST(:ids AS TEXT[]), CAST(:kek_ids AS TEXT[]), CAST(:wrapped AS BYTEA[]))
         AS u(id, kek_id, wrapped_key)
    WHERE d.region = :region AND d.id = u.id AND d.wrapped_key IS NOT NULL""")

_count = text("""
    SELECT kek_id, count(*) AS n FROM data_keys
    WHERE region = :region AND wrapped_key IS NOT NULL GROUP BY kek_id ORDER BY kek_id""")


@dataclass(frozen=True, slots=True)
class Batch:
    rewrapped: int
    last_id: str | None
    """Where the next batch starts; None when this one found nothing left."""


async def rewrap_batch(conn: AsyncConnection, keys: KeyProvider, region: str, current: str,
                       after: str, limit: int = rewrap_batch_rows) -> Batch:
    rows = (await conn.execute(_stale, {"region": region, "current": current, "after": after,
                                        "limit": limit})).all()
    if not rows:
        return Batch(0, None)
    moved = [keys.rewrap(region, WrappedKey(r.kek_id, bytes(r.wrapped_key))) for r in rows]
    await conn.execute(_store, {"region": region, "ids": [r.id for r in rows],
                                "kek_ids": [m.kek_id for m in moved],
                                "wrapped": [m.ciphertext for m in moved]})
    return Batch(len(rows), rows[-1].id)


async def versions_in_use(conn: AsyncConnection, region: str) -> dict[str, int]:
    """How many live data keys each KEK version wraps."""
    return {r.kek_id: int(r.n) for r in await conn.execute(_count, {"region": region})}
