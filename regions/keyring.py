"""Key providers: the region's key-encryption key (KEK) wraps each subject's data key.

Data keys never leave their region in plaintext form; only a provider holding the region's KEK
turns a wrapped key back into one. Providers are chosen per region in one place,
``provider_from_settings``, from a spec string:

- ``local``: a keyring file (mode 0600) holding every region's KEK versions; dev and tests;
- ``aws-kms:<key ARN or alias ARN>``: AWS KMS in the key's own AWS region (``regions.kms``);
- ``vault-transit:<mount>/<key name>``: a HashiCorp Vault transit key (``regions.vault``),
  at ``VAULT_ADDR`` with ``VAULT_TOKEN`` (and ``VAULT_NAMESPACE``), Vault's own variables;
- ``azure-keyvault:https://<vault>.vault.azure.net/keys/<name>``: an Azure Key Vault RSA key
  (``regions.azure_keys``), with Azure's default credential chain;
- ``alicloud-kms:<region id>/<key id or alias/name>``: an Alibaba Cloud KMS key
  (``regions.alicloud_keys``), with ``ALIBABA_CLOUD_ACCESS_KEY_ID`` and ``..._SECRET``.

Every provider names the KEK version that wrapped a key in ``WrappedKey.kek_id``; after
``rotate`` the old versions still unwrap, and ``rewrap`` moves a wrapped key to the current
version without the data key ever reaching the caller (``corridor keys rotate``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterable, Mapping
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

provider_kinds = ("local", "aws-kms", "vault-transit", "azure-keyvault", "alicloud-kms")
reload_check_s = 1.0
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
    """What every KEK provider offers. ``region`` is checked: a provider refuses
    (``KeyUnavailable``) a region whose KEK it does not hold, and a key wrapped for one region
    does not unwrap as another's."""

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        """Wrap a data key under the region's current KEK version."""
        ...

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        """The data key; ``KeyUnavailable`` when the version is unknown or it does not open."""
        ...

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        """The same data key wrapped under the current version (no-op result if already)."""
        ...

    def rotate(self, region: str) -> str:
        """Make a new KEK version current; returns its ``kek_id``. Old versions still unwrap."""
        ...

    def current_kek_id(self, region: str) -> str:
        """The ``kek_id`` that ``wrap`` stamps now: rows with another one need ``rewrap``."""
        ...


class RegionalKeys:
    """One provider per region, chosen by configuration; dispatches every call by region."""

    def __init__(self, providers: dict[str, KeyProvider]) -> None:
        self._providers = dict(providers)

    def provider_of(self, region: str) -> KeyProvider:
        try:
            return self._providers[region]
        except KeyError:
            raise KeyUnavailable(f"no key provider is configured for region {region!r}") from None

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        return self.provider_of(region).wrap(region, plaintext_key)

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        return self.provider_of(region).unwrap(region, wrapped)

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        return self.provider_of(region).rewrap(region, wrapped)

    def rotate(self, region: str) -> str:
        return self.provider_of(region).rotate(region)

    def current_kek_id(self, region: str) -> str:
        return self.provider_of(region).current_kek_id(region)


Keks = dict[str, dict[int, bytes]]


class LocalKeyring:
    """A dev/test ``KeyProvider`` holding KEKs in a local JSON file (mode 0600, base64 keys).

    Not for production: the KEKs sit on the same disk as the process (use ``aws-kms`` or
    ``vault-transit``). A process reloads the file when it meets a version it does not hold, so
    a rotation by ``corridor keys rotate`` reaches running processes. Two processes rotating
    the same file at once may lose a version: rotate from one place.
    """

    def __init__(self, path: Path, regions: Iterable[str]) -> None:
        self._path = path
        keks = _load(path) if path.exists() else {}
        missing = {r: {1: new_data_key()} for r in regions if r not in keks}
        self._keks = keks | missing
        if missing or not path.exists():
            _save(path, self._keks)
        self._seen = path.stat().st_mtime_ns
        self._checked = time.monotonic()

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
        version = _parse_kek_id(region, wrapped.kek_id)
        versions = self._region(region)
        if version not in versions:  # rotated by another process since we last looked
            self._reload_if_changed(force=True)
            versions = self._region(region)
        if version not in versions:
            raise KeyUnavailable(f"{wrapped.kek_id!r} is not held for region {region!r}")
        try:
            return open_sealed_bytes(
                versions[version], wrapped.ciphertext, _aad(region, wrapped.kek_id)
            )
        except Undecryptable:
            raise KeyUnavailable(f"wrapped key does not open under {wrapped.kek_id!r}") from None

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        if wrapped.kek_id == self.current_kek_id(region):
            return wrapped
        return self.wrap(region, self.unwrap(region, wrapped))

    def rotate(self, region: str) -> str:
        """Add a new current KEK; older versions stay so existing wrapped keys still unwrap."""
        versions = self._region(region)
        version = max(versions) + 1
        keks = self._keks | {region: versions | {version: new_data_key()}}
        _save(self._path, keks)
        self._keks = keks
        return _kek_id(region, version)

    def current_version(self, region: str) -> int:
        return max(self._region(region))

    def current_kek_id(self, region: str) -> str:
        return _kek_id(region, self.current_version(region))

    def _region(self, region: str) -> dict[int, bytes]:
        self._reload_if_changed()
        if region not in self._keks:
            raise KeyUnavailable(f"no key-encryption key for region {region!r}")
        return self._keks[region]


    def _reload_if_changed(self, force: bool = False) -> None:
        """Another process (``corridor keys rotate``) may have added a version: look at the
        file at most once per ``reload_check_s`` (``force``: now)."""
        now = time.monotonic()
        if now - self._checked < reload_check_s and not force:
            return
        self._checked = now
        with contextlib.suppress(FileNotFoundError):
            seen = self._path.stat().st_mtime_ns
            if seen != self._seen:
                self._keks = self._keks | _load(self._path)
                self._seen = seen


def provider_from_settings(default: str, path: Path | None, regions: Iterable[str],
                           per_region: Mapping[str, str] | None = None) -> KeyProvider:
    """The providers of every region: ``per_region[code]`` where given, else ``default``."""
    chosen = {r: (per_region or {}).get(r, default) for r in regions}
    unknown = set(per_region or {}) - set(chosen)
    if unknown:
        raise ValueError(f"key providers configured for unknown regions: {sorted(unknown)}")
    shared = sorted(r for r, spec in chosen.items() if spec == default and spec != "local")
    if len(shared) > 1 and default.partition(":")[0] in provider_kinds:
        # A remote key is one region's KEK: as every region's default it would wrap them all
        # under one key, in one place. Each region names its own.
        raise ValueError(f"key provider {default!r} names one key but would serve regions "
                         f"{shared}: set CORRIDOR_KEY_PROVIDER_<REGION> for each of them")
    local_regions = [r for r, spec in chosen.items() if spec == "local"]
    local: KeyProvider | None = None
    if local_regions:
        if path is None:
            raise ValueError("the local key provider needs a keyring file path")
        local = LocalKeyring(path, local_regions)
    providers: dict[str, KeyProvider] = {}
    for region, spec in chosen.items():
        kind, _, rest = spec.partition(":")
        if kind not in provider_kinds:
            raise ValueError(f"region {region}: unknown key provider {spec!r}; supported: "
                             f"{', '.join(provider_kinds)}")
        if kind == "local":
            assert local is not None
            providers[region] = local
        elif not rest:
            raise ValueError(f"region {region}: key provider {kind!r} needs a key: {kind}:<key>")
        elif kind == "aws-kms":
            from regions.kms import AwsKmsKeys

            providers[region] = AwsKmsKeys.from_spec(region, rest)
        elif kind == "vault-transit":
            from regions.vault import VaultTransitKeys

            providers[region] = VaultTransitKeys.from_spec(region, rest)
        elif kind == "azure-keyvault":
            from regions.azure_keys import AzureKeyVaultKeys

            providers[region] = AzureKeyVaultKeys.from_spec(region, rest)
        else:
            from regions.alicloud_keys import AlicloudKmsKeys

            providers[region] = AlicloudKmsKeys.from_spec(region, rest)
    return RegionalKeys(providers)


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
