"""Personal data sealed per field: AES-256-GCM under a data key per data subject.

Each subject (a beneficiary; a tenant for its incoming-payment senders) has a data key, stored
only wrapped by its home region's key-encryption key (``regions.keyring``) in ``data_keys``.
A field is sealed with associated data binding tenant, table, column and row id, so a
ciphertext copied to another row or column does not open. Destroying a subject's data key
(crypto-shredding) makes every copy of its fields unreadable, backups included.

Unwrapped keys are cached per process for ``cache_ttl_s``, at most ``cache_entries_max`` of
them. Erasure reaches every process within about ``erasure_check_s``: before serving a
region's keys from its cache, a process asks (at most that often, one indexed query) which keys
of the region were destroyed in the last ``cache_ttl_s`` plus a margin, and forgets them.

Calls to a remote key provider (KMS, Vault, Key Vault: a network round trip of tens of
milliseconds) run in a worker thread, so one request's wrap or unwrap never stalls the rest of
the process's event loop; the local keyring (AES key wrap in memory) runs inline.

A shared key (a tenant's, for many rows) counts what it seals in ``data_keys.seals``, in the
sealing transaction; at ``seals_per_key_max`` it is retired (it still opens what it sealed)
and a fresh key takes its place. The bound is 2**24, far below the 2**32 messages NIST SP
800-38D allows one AES-GCM key with random nonces. A subject's own key (a beneficiary's) seals
its few fields once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import crypto, ids
from payments.errors import DomainError
from regions.keyring import KeyProvider, LocalKeyring, RegionalKeys, WrappedKey
from regions.tables import data_keys

_A = TypeVar("_A")
_R = TypeVar("_R")

cache_ttl_s = 60.0
cache_entries_max = 10_000
data_key_version = 1
erasure_check_s = 1.0
seals_per_key_max = 2**24
retired_marker = "~retired~"


class KeyDestroyed(DomainError):
    """A shared key asked for after its subject was erased."""

    code = "ERASED"

_count_seals = text("""
    UPDATE data_keys SET seals = seals + :n
    WHERE region = :region AND subject_id = :subject AND destroyed_at IS NULL
      AND seals + :n <= :max
    RETURNING id""")

_retire = text("""
    UPDATE data_keys SET subject_id = subject_id || :marker || id, retired_at = now()
    WHERE region = :region AND subject_id = :subject AND destroyed_at IS NULL
      AND seals + :n > :max""")

_destroyed_lately = text("""
    SELECT id FROM data_keys
    WHERE region = :region AND destroyed_at IS NOT NULL
      AND destroyed_at > now() - make_interval(secs => :within)""")


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
    def __init__(self, keys: KeyProvider, seals_max: int = seals_per_key_max) -> None:
        self._keys = keys
        self._seals_max = seals_max
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._erasures_checked: dict[str, float] = {}

    @property
    def provider(self) -> KeyProvider:
        return self._keys

    async def new_key(self, conn: AsyncConnection, region: str, tenant_id: str,
                      subject_id: str, seals: int) -> SubjectKey:
        """A fresh data key for a subject, stored wrapped in the subject's region; ``seals``:
        how many values the caller seals under it."""
        key = crypto.new_data_key()
        key_id = ids.new_id("dek", region)
        await conn.execute(insert(data_keys).values(await self._row(region, key_id, tenant_id,
                                                                    subject_id, key, seals)))
        return SubjectKey(key_id, key)

    async def adopt_key(self, conn: AsyncConnection, region: str, tenant_id: str,
                        subject_id: str, wrapped: WrappedKey) -> SubjectKey:
        """Store a data key another region wrapped under this region's key-encryption key (a
        payee sealed for this region by the payout's home region). It must open here first:
        ``KeyUnavailable`` otherwise, and nothing is stored."""
        key = await self.unwrap(region, wrapped)
        key_id = ids.new_id("dek", region)
        await conn.execute(insert(data_keys).values(
            region=region, id=key_id, tenant_id=tenant_id, subject_id=subject_id,
            kek_id=wrapped.kek_id, wrapped_key=wrapped.ciphertext, seals=1))
        return SubjectKey(key_id, self._remember(key_id, key))

    async def wrap(self, region: str, key: bytes) -> WrappedKey:
        """``key`` wrapped by ``region``'s key-encryption key (off the event loop if remote)."""
        return await self._provider_call(region, self._keys.wrap, key)

    async def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        return await self._provider_call(region, self._keys.unwrap, wrapped)

    async def _provider_call(self, region: str, call: Callable[[str, _A], _R], arg: _A) -> _R:
        provider = self._keys
        if isinstance(provider, RegionalKeys):
            provider = provider.provider_of(region)
        if isinstance(provider, LocalKeyring):
            return call(region, arg)
        return await asyncio.to_thread(call, region, arg)

    async def _row(self, region: str, key_id: str, tenant_id: str, subject_id: str,
                   key: bytes, seals: int) -> dict[str, Any]:
        if not 0 <= seals <= self._seals_max:
            raise ValueError(f"{seals} seals is outside 0..{self._seals_max}")
        wrapped = await self.wrap(region, key)
        return {"region": region, "id": key_id, "tenant_id": tenant_id,
                "subject_id": subject_id, "kek_id": wrapped.kek_id,
                "wrapped_key": wrapped.ciphertext, "seals": seals}

    async def shared_key(self, conn: AsyncConnection, region: str, tenant_id: str,
                         subject_id: str, seals: int) -> SubjectKey:
        """The subject's current data key, with ``seals`` more values counted against it
        (a tenant's key for data of many rows, such as its incoming payments' senders).

        Created on first use; concurrent first uses race on the unique subject index and the
        loser takes the winner's key. A key that would pass ``seals_max`` is retired (renamed
        aside, so the subject index names only the current key) and a fresh one created.
        Counting locks the key's row until commit: writers of one subject's shared key take
        turns, as they do on the accounts they credit."""
        if not 0 <= seals <= self._seals_max:
            raise ValueError(f"{seals} seals is outside 0..{self._seals_max}")
        args = {"region": region, "subject": subject_id, "n": seals, "max": self._seals_max,
                "marker": retired_marker}
        for _ in range(3):
            found = (await conn.execute(_count_seals, args)).scalar()
            if found is not None:
                opened = await self.key(conn, region, found)
                if opened is None:
                    raise KeyDestroyed(f"the data of {subject_id!r} was erased")
                return SubjectKey(found, opened)
            row = (await conn.execute(select(data_keys.c.destroyed_at).where(
                data_keys.c.region == region, data_keys.c.subject_id == subject_id))).first()
            if row is not None and row.destroyed_at is not None:
                raise KeyDestroyed(f"the data of {subject_id!r} was erased")
            if row is not None:
                await conn.execute(_retire, args)
            key = crypto.new_data_key()
            key_id = ids.new_id("dek", region)
            made = (await conn.execute(pg_insert(data_keys).values(await self._row(
                region, key_id, tenant_id, subject_id, key, seals)).on_conflict_do_nothing()
                .returning(data_keys.c.id))).scalar()
            if made is not None:
                return SubjectKey(key_id, self._remember(key_id, key))
        raise AssertionError(f"no current data key for {subject_id!r} after 3 attempts")

    async def key(self, conn: AsyncConnection, region: str, key_id: str) -> bytes | None:
        """The data key, or None when it was destroyed (the subject was erased)."""
        return (await self.keys(conn, region, [key_id]))[key_id]

    async def keys(self, conn: AsyncConnection, region: str, key_ids: Sequence[str]
                   ) -> dict[str, bytes | None]:
        """Many data keys with one query for those not cached (a payout batch's)."""
        now = time.monotonic()
        if now - self._erasures_checked.get(region, float("-inf")) >= erasure_check_s:
            self._erasures_checked[region] = now
            for (gone,) in await conn.execute(_destroyed_lately, {
                    "region": region, "within": cache_ttl_s + erasure_check_s * 10}):
                self._cache.pop(gone, None)
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
                    found[row.id] = self._remember(row.id, await self.unwrap(
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

    def forget(self, key_ids: Sequence[str]) -> None:
        """Drop keys from this process's cache at once (the process that erased them)."""
        for key_id in key_ids:
            self._cache.pop(key_id, None)
