"""A remote key provider's calls run off the event loop: while a KMS round trip is in flight,
the process's other requests go on. The local keyring (in-memory AES key wrap) runs inline."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from regions.keyring import LocalKeyring, RegionalKeys, WrappedKey
from regions.sealing import Sealer

region = "eu-central"
wait_s_max = 10.0


class Remote:
    """A KMS stand-in: each call waits until the event loop has run something else, so a call
    made on the loop itself fails instead of returning."""

    def __init__(self, inner: LocalKeyring) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def wrap(self, region: str, key: bytes) -> WrappedKey:
        self._round_trip()
        return self.inner.wrap(region, key)

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        self._round_trip()
        return self.inner.unwrap(region, wrapped)

    def _round_trip(self) -> None:
        self.threads.append(threading.current_thread())
        assert self.release.wait(wait_s_max), "the call blocked the event loop"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Conn:
    """Takes the data key's insert; nothing to read."""

    async def execute(self, *_: Any) -> None:
        return None


def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json", [region])


async def test_a_remote_wrap_and_unwrap_leave_the_event_loop_free(tmp_path: Path) -> None:
    remote = Remote(keyring(tmp_path))
    sealer = Sealer(RegionalKeys({region: remote}))  # type: ignore[dict-item]
    loop_thread = threading.current_thread()

    made = asyncio.ensure_future(sealer.new_key(Conn(), region, "ten", "ben", 1))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the key is being wrapped; the loop runs this
    remote.release.set()
    key = await made
    wrapped = await sealer.wrap(region, key.key)
    assert await sealer.unwrap(region, wrapped) == key.key
    assert remote.threads
    assert all(t is not loop_thread for t in remote.threads)


async def test_the_local_keyring_runs_inline(tmp_path: Path) -> None:
    calls: list[threading.Thread] = []

    class Watched(LocalKeyring):
        def wrap(self, region: str, key: bytes) -> WrappedKey:
            calls.append(threading.current_thread())
            return super().wrap(region, key)

    sealer = Sealer(Watched(tmp_path / "keyring.json", [region]))
    key = await sealer.new_key(Conn(), region, "ten", "ben", 1)  # type: ignore[arg-type]
    assert await sealer.unwrap(region, await sealer.wrap(region, key.key)) == key.key
    assert calls == [threading.current_thread()] * 2
