"""Process caches look at the control plane at most once a second, and a look that failed does
not count: the key cache must not go on trusting revoked keys for a second because the
revocation check hit a dead connection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from api.auth import KeyCache
from regions.router import Recheck

who = SimpleNamespace(key_expires_at=None)


class Flaky:
    """A router whose control-plane reads fail while ``down`` is set."""

    def __init__(self, mark: Any) -> None:
        self.mark = mark
        self.down = False
        self.reads = 0

    async def read_control(self, body: Any) -> Any:
        self.reads += 1
        if self.down:
            raise ConnectionError("control plane unreachable")
        return self.mark


def test_due_once_per_interval_and_again_after_a_failed_look() -> None:
    recheck = Recheck(3600.0)
    assert recheck.due()
    with recheck.looking():
        assert not recheck.due()  # callers arriving meanwhile take it as done
    assert not recheck.due()
    with pytest.raises(ZeroDivisionError), recheck.looking():
        1 / 0  # noqa: B018 - the failing look
    assert not recheck.due()  # a failure only rolls back to the last good look's time

    fresh = Recheck(3600.0)
    with pytest.raises(ZeroDivisionError), fresh.looking():
        1 / 0  # noqa: B018
    assert fresh.due()


async def test_a_failed_revocation_check_is_retried_by_the_next_request() -> None:
    good = Flaky((1, None))
    cache = KeyCache()
    await cache.sync(good)  # type: ignore[arg-type]
    await cache.sync(good)  # type: ignore[arg-type]
    assert good.reads == 1  # a good look holds for the interval

    failing = Flaky((1, None))
    failing.down = True
    cache = KeyCache()
    with pytest.raises(ConnectionError):
        await cache.sync(failing)  # type: ignore[arg-type]
    failing.down = False
    await cache.sync(failing)  # type: ignore[arg-type]  # not skipped: it looks again now
    assert failing.reads == 2


async def test_a_revocation_seen_after_a_failure_empties_the_cache() -> None:
    cache = KeyCache()
    router = Flaky((1, None))
    await cache.sync(router)  # type: ignore[arg-type]
    cache.put(b"d" * 32, who)  # type: ignore[arg-type]
    cache._recheck = Recheck(0.0)
    router.down = True
    with pytest.raises(ConnectionError):
        await cache.sync(router)  # type: ignore[arg-type]
    assert cache.get(b"d" * 32) is not None
    router.down = False
    router.mark = (2, None)  # a key was revoked meanwhile
    await cache.sync(router)  # type: ignore[arg-type]
    assert cache.get(b"d" * 32) is None
