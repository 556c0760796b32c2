"""Key providers: the region's key-encryption key (KEK) wraps each tenant's data key.

Data keys never leave their region in plaintext form; only a provider holding the region's KEK
turns a wrapped key back into one. Providers are chosen in one place, ``provider_from_settings``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from payments.crypto import (
    Undecryptable,
    data_key_bytes,
    length_prefixed,
    new_data_key,
    open_sealed_bytes,
    seal_bytes,
)

provider_kinds = ("local",)
keyring_file_format = 1
keyring_file_bytes_max = 1_000_000
_mode_private = 0o600


class KeyUnavailable(Exception):
    """The region's KEK version is not held here, or the wrapped key does not open under it."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    kek_id: str
    ciphertext: bytes


class KeyProvider(Protocol):
    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey: ...
    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes: ...
    def rotate(self, region: str) -> int: ...
    def current_version(self, region: str) -> int: ...


Keks = dict[str, dict[int, bytes]]


class LocalKeyring:
    """A dev/test ``KeyProvider`` holding KEKs in a local JSON file (mode 0600, base64 keys).

    Not for production: the KEKs sit on the same disk as the process. AWS KMS and Vault adapters
    implement the same Protocol and arrive with the security issue. Single process only: two
    processes rotating the same file may lose a version.
    """

    def __init__(self, path: Path, regions: Iterable[str]) -> None:
        self._path = path
        keks = _load(path) if path.exists() else {}
        missing = {r: {1: new_data_key()} for r in regions if r not in keks}
        self._keks = keks | missing
        if missing or not path.exists():
            _save(path, self._keks)

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        if len(plaintext_key) != data_key_bytes:
            raise ValueError(f"a data key is {data_key_bytes} bytes, got {len(plaintext_key)}")
        version = self.current_version(region)
        kek_id = _kek_id(region, version)
        blob = seal_bytes(
            self._keks[region][version], plaintext_key, _aad(region, kek_id), key_version=version
        )
        return WrappedKey(kek_id=kek_id, ciphertext=blob)

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        versions = self._region(region)
        version = _parse_kek_id(region, wrapped.kek_id)
        if version not in versions:
            raise KeyUnavailable(f"{wrapped.kek_id!r} is not held for region {region!r}")
        try:
            return open_sealed_bytes(
                versions[version], wrapped.ciphertext, _aad(region, wrapped.kek_id)
            )
        except Undecryptable:
            raise KeyUnavailable(f"wrapped key does not open under {wrapped.kek_id!r}") from None

    def rotate(self, region: str) -> int:
        """Add a new current KEK; older versions stay so existing wrapped keys still unwrap."""
        versions = self._region(region)
        version = max(versions) + 1
        keks = self._keks | {region: versions | {version: new_data_key()}}
        _save(self._path, keks)
        self._keks = keks
        return version

    def current_version(self, region: str) -> int:
        return max(self._region(region))

    def _region(self, region: str) -> dict[int, bytes]:
        if region not in self._keks:
            raise KeyUnavailable(f"no key-encryption key for region {region!r}")
        return self._keks[region]


def provider_from_settings(kind: str, path: Path | None, regions: Iterable[str]) -> KeyProvider:
    if kind != "local":
        raise ValueError(f"unknown key provider {kind!r}; supported: {', '.join(provider_kinds)}")
    if path is None:
        raise ValueError("the local key provider needs a keyring file path")
    return LocalKeyring(path, regions)


def _kek_id(region: str, version: int) -> str:
    return f"local:{region}:v{version}"


def _parse_kek_id(region: str, kek_id: str) -> int:
    prefix = f"local:{region}:v"
    digits = kek_id.removeprefix(prefix)
    if not kek_id.startswith(prefix) or not digits.isascii() or not digits.isdigit():
        raise KeyUnavailable(f"{kek_id!r} is not a local key of region {region!r}")
    return int(digits)


def _aad(region: str, kek_id: str) -> bytes:
    # Binding the region and KEK id means a wrapped key cannot be replayed under another region.
    return length_prefixed("corridor-kek", region, kek_id)


def _load(path: Path) -> Keks:
    info = path.stat()
    mode = info.st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(
            f"keyring {path} is accessible by group or others (mode {stat.filemode(mode)});"
            f" run: chmod 600 {path}"
        )
    if info.st_size > keyring_file_bytes_max:
        raise ValueError(f"keyring {path} is over {keyring_file_bytes_max} bytes")
    try:
        raw: Any = json.loads(path.read_bytes())
        if raw["format"] != keyring_file_format:
            raise ValueError(f"format {raw['format']!r}, expected {keyring_file_format}")
        keks = {
            region: {int(v): base64.b64decode(k, validate=True) for v, k in versions.items()}
            for region, versions in raw["regions"].items()
        }
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"keyring {path}: malformed: {exc}") from exc
    for region, versions in keks.items():
        if not versions or any(len(k) != data_key_bytes for k in versions.values()):
            raise ValueError(f"keyring {path}: region {region!r} needs {data_key_bytes}-byte keys")
    return keks


def _save(path: Path, keks: Keks) -> None:
    """Write a 0600 temporary file beside the target, then rename: readers see old or new whole."""
    doc = {
        "format": keyring_file_format,
        "regions": {
            region: {str(v): base64.b64encode(k).decode("ascii") for v, k in versions.items()}
            for region, versions in keks.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), _mode_private)
            json.dump(doc, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
