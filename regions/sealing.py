"""Personal data sealed per field: AES-256-GCM under a data key per data subject.

Each subject (a beneficiary; a tenant for its incoming-payment senders) has a data key, stored
only wrapped by its home region's key-encryption key (``regions.keyring``) in ``data_keys``.
A field is sealed with associated data binding tenant, table, column and row id, so a
ciphertext copied to another row or column does not open. Destroying a subject's data key
(crypto-shredding) makes every copy of its fields unreadable, backups included.

Unwrapped keys are cached per process for ``cache_ttl_s`` (a destroyed key stops opening
within that time in other processes), at most ``cache_entries_max`` of them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import crypto, ids
from regions.keyring import KeyProvider, WrappedKey
from regions.tables import data_keys

cache_ttl_s = 60.0
cache_entries_max = 10_000
data_key_version = 1


@dataclass(frozen=True, slots=True)
class SubjectKey:
    id: str
    key: bytes


@dataclass(frozen=True, slots=True)
class Place:
    """Where a sealed value lives; it is the associated data of its ciphertext."""

    tenant_id: str
    table: str
    row_id: str

    def aad(self, column: str) -> bytes:
        return crypto.field_aad(self.tenant_id, self.table, column, self.row_id)


class Sealer:
    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def new_key(self, conn: AsyncConnection, region: str, tenant_id: str,
                      subject_id: str) -> SubjectKey:
        """A fresh data key for a subject, stored wrapped in the subject's region."""
        key = crypto.new_data_key()
        key_id = ids.new_id("dek", region)
        await conn.execute(insert(data_keys).values(self._row(region, key_id, tenant_id,
                                                              subject_id, key)))
        return SubjectKey(key_id, key)

    def _row(self, region: str, key_id: str, tenant_id: str, subject_id: str,
             key: bytes) -> dict[str, Any]:
        wrapped = self._keys.wrap(region, key)
        return {"region": region, "id": key_id, "tenant_id": tenant_id,
                "subject_id": subject_id, "kek_id": wrapped.kek_id,
                "wrapped_key": wrapped.ciphertext}

    async def shared_key(self, conn: AsyncConnection, region: str, tenant_id: str,
                         subject_id: str) -> SubjectKey:
        """The subject's data key, created on first use (a tenant's key for data of many
        rows, such as its incoming payments' senders). Concurrent first uses race on the
        unique subject index; the loser reads the winner's key."""
        found = (await conn.execute(select(data_keys.c.id).where(
            data_keys.c.region == region, data_keys.c.subject_id == subject_id))).scalar()
        if found is None:
            await conn.execute(pg_insert(data_keys).values(self._row(
                region, ids.new_id("dek", region), tenant_id, subject_id,
                crypto.new_data_key())).on_conflict_do_nothing())
            found = (await conn.execute(select(data_keys.c.id).where(
                data_keys.c.region == region, data_keys.c.subject_id == subject_id))).scalar_one()
        opened = await self.key(conn, region, found)
        assert opened is not None, f"the data key of {subject_id} was destroyed"
        return SubjectKey(found, opened)

    async def key(self, conn: AsyncConnection, region: str, key_id: str) -> bytes | None:
        """The data key, or None when it was destroyed (the subject was erased)."""
        return (await self.keys(conn, region, [key_id]))[key_id]

    async def keys(self, conn: AsyncConnection, region: str, key_ids: Sequence[str]
                   ) -> dict[str, bytes | None]:
        """Many data keys with one query for those not cached (a payout batch's)."""
        now = time.monotonic()
        found: dict[str, bytes | None] = {}
        for key_id in key_ids:
            hit = self._cache.get(key_id)
            if hit is not None and hit[0] > now:
                found[key_id] = hit[1]
        missing = [k for k in set(key_ids) if k not in found]
        if missing:
            rows = await conn.execute(select(data_keys.c.id, data_keys.c.kek_id,
                                             data_keys.c.wrapped_key).where(
                data_keys.c.region == region, data_keys.c.id.in_(missing)))
            for row in rows:
                if row.wrapped_key is not None:
                    found[row.id] = self._remember(row.id, self._keys.unwrap(
                        region, WrappedKey(row.kek_id, bytes(row.wrapped_key))))
        for key_id in missing:
            if key_id not in found:
                self._cache.pop(key_id, None)
                found[key_id] = None
        return found

    def _remember(self, key_id: str, key: bytes) -> bytes:
        self._cache[key_id] = (time.monotonic() + cache_ttl_s, key)
        self._cache.move_to_end(key_id)
        while len(self._cache) > cache_entries_max:
            self._cache.popitem(last=False)
        return key

    @staticmethod
    def seal(key: bytes, place: Place, column: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        return crypto.seal(key, value, place.aad(column), key_version=data_key_version)

    @staticmethod
    def open(key: bytes | None, place: Place, column: str, blob: bytes | None) -> str | None:
        """The plaintext; None when there is none or the key was destroyed."""
        if blob is None or key is None:
            return None
        return crypto.open_sealed(key, bytes(blob), place.aad(column))
