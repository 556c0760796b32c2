"""API keys -> Principal, with a short in-process cache so a hot key costs no query.

A revoked key stops working in every process within about ``revocation_check_s``: the cache
asks the control plane that often whether any key was revoked since, and forgets everything
when one was. An expiring key leaves the cache at its expiry.

Failed authentications go to the control plane's audit trail (``FailedAuthTrail``), with the
client address and the key's public prefix, never the key. Each address is already held to
its rate limit; the trail also keeps at most ``failed_auth_rows_per_s`` rows a second per
process, and the next row it writes counts those it left out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.principal import Principal
from regions import api_keys, events, tenants
from regions.router import Recheck, Router

cache_ttl_s = 30.0
failed_auth_rows_per_s = 20
cache_entries_max = 10_000
revocation_check_s = 1.0
bearer = "bearer "


class Unauthenticated(Exception):
    code = "UNAUTHENTICATED"


class KeyCache:
    def __init__(self, ttl_s: float = cache_ttl_s, entries_max: int = cache_entries_max):
        self._ttl_s = ttl_s
        self._entries_max = entries_max
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._revocations: tuple[int, datetime | None] | None = None
        self._recheck = Recheck(revocation_check_s)

    async def sync(self, router: Router) -> None:
        """Forget every key when any was revoked since the last look (at most once a
        second; revocations are rare, so this costs one small query a second)."""
        if not self._recheck.due():
            return
        with self._recheck.looking():
            mark = await router.read_control(api_keys.revocations)
        if self._revocations is not None and mark != self._revocations:
            self._entries.clear()
        self._revocations = mark

    def knows(self, pepper: bytes, key: str) -> bool:
        """Whether ``key`` authenticated recently (no lookup needed to answer it)."""
        return self.get(tenants.key_hash(pepper, key)) is not None

    def get(self, digest: bytes) -> Principal | None:
        hit = self._entries.get(digest)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, digest: bytes, who: Principal) -> None:
        lifetime_s = self._ttl_s
        if who.key_expires_at is not None:
            left_s = (who.key_expires_at - datetime.now(UTC)).total_seconds()
            lifetime_s = max(0.0, min(lifetime_s, left_s))
        self._entries[digest] = (time.monotonic() + lifetime_s, who)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._entries_max:
            self._entries.popitem(last=False)


def bearer_key(header: str | None) -> str:
    if not header or not header.lower().startswith(bearer):
        raise Unauthenticated("send an API key as `Authorization: Bearer cor_test_...`")
    return header[len(bearer):].strip()


async def authenticate(router: Router, pepper: bytes, cache: KeyCache, key: str) -> Principal:
    await cache.sync(router)
    digest = tenants.key_hash(pepper, key)
    who = cache.get(digest)
    if who is not None:
        return who

    async def body(conn: AsyncConnection) -> Principal | None:
        return await tenants.authenticate(conn, pepper, key)

    who = await router.read_control(body)
    if who is None:
        raise Unauthenticated("the API key is not valid")
    cache.put(digest, who)
    key_id = who.key_id
    await router.run_control(lambda conn: api_keys.touch(conn, key_id))
    return who


class FailedAuthTrail:
    """Records failed authentications, at most ``rows_per_s`` a second in this process."""

    def __init__(self, rows_per_s: int = failed_auth_rows_per_s) -> None:
        self._rows_per_s = rows_per_s
        self._second = 0
        self._written = 0
        self._left_out = 0

    async def record(self, router: Router, address: str, header: str | None) -> None:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._written = second, 0
        if self._written >= self._rows_per_s:
            self._left_out += 1
            return
        self._written += 1
        left_out, self._left_out = self._left_out, 0
        detail = {"reason": "no_key" if not header else "invalid_key",
                  "key_prefix": _public_prefix(header), "address": address,
                  "left_out_before": left_out}

        async def body(conn: AsyncConnection) -> None:
            await events.record_control(conn, "anonymous", "auth.failed", None, detail)

        await router.run_control(body)


def _public_prefix(header: str | None) -> str | None:
    """The part of a presented key that Corridor shows anyway (``apiKeys``' prefix), when it
    has the shape of a Corridor key; nothing of anything else."""
    try:
        key = bearer_key(header)
    except Unauthenticated:
        return None
    if not tenants.looks_like_key(key):
        return None
    return key[:tenants.key_display_length]
