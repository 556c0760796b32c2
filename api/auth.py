"""API keys -> Principal, with a short in-process cache so a hot key costs no query.

A revoked key stops working within ``cache_ttl_s``.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.principal import Principal
from regions import tenants
from regions.router import Router

cache_ttl_s = 30.0
cache_entries_max = 10_000
bearer = "bearer "


class Unauthenticated(Exception):
    code = "UNAUTHENTICATED"


class KeyCache:
    def __init__(self, ttl_s: float = cache_ttl_s, entries_max: int = cache_entries_max):
        self._ttl_s = ttl_s
        self._entries_max = entries_max
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def get(self, digest: bytes) -> Principal | None:
        hit = self._entries.get(digest)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, digest: bytes, who: Principal) -> None:
        self._entries[digest] = (time.monotonic() + self._ttl_s, who)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._entries_max:
            self._entries.popitem(last=False)


def bearer_key(header: str | None) -> str:
    if not header or not header.lower().startswith(bearer):
        raise Unauthenticated("send an API key as `Authorization: Bearer cor_test_...`")
    return header[len(bearer):].strip()


async def authenticate(router: Router, pepper: bytes, cache: KeyCache, key: str) -> Principal:
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
    return who
