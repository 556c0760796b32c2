"""A region's key-encryption key held by HashiCorp Vault's transit secrets engine.

Configured per region as ``vault-transit:<mount>/<key name>`` (see ``regions.keyring``), for
example ``vault-transit:transit/corridor-eu-central``. The Vault server and token come from
Vault's own environment variables: ``VAULT_ADDR``, ``VAULT_TOKEN`` and, for Vault Enterprise
namespaces, ``VAULT_NAMESPACE``; hvac reads ``VAULT_CACERT``/``VAULT_CAPATH`` and
``VAULT_CLIENT_CERT``/``VAULT_CLIENT_KEY`` for TLS itself. The token is not renewed here: give
the process a periodic token kept alive by Vault Agent, or a token that outlives the process.

Create the key as a derived key, once per region: ``vault write -f
transit/keys/corridor-eu-central derived=true`` (type ``aes256-gcm96``, Vault's default).

How a data key is bound to its region. Every request carries a key-derivation ``context``
naming Corridor's purpose and the region, and Vault encrypts under a key derived from the
transit key's version and that context (HKDF-SHA256). A key wrapped for one region therefore
does not unwrap as another region's, even when two regions share one transit key. We use
``context`` rather than ``associated_data`` because Vault's rewrap endpoint accepts ``context``
but has no ``associated_data`` field: a key wrapped with associated data could only be moved to
a new version by decrypting it in Corridor, and rewrap exists so that it never leaves Vault. A
derived key refuses any request without a context; a key created without ``derived=true``
silently ignores the context, so this provider reads the key first and refuses to use one that
is not derived.

Versions and kek_ids. Vault prefixes each ciphertext with the key version that made it,
``vault:v3:...``; that string, as UTF-8 bytes, is ``WrappedKey.ciphertext`` and its version
names the kek_id: ``vault-transit:transit/corridor-eu-central:v3``. ``rotate`` adds a version
that ``wrap`` then uses; ciphertexts of older versions still decrypt as long as the key's
``min_decryption_version`` is at most their version. Raise it (``vault write
transit/keys/<name>/config min_decryption_version=N``) only after ``corridor keys rotate`` has
rewrapped every row: rows still below it stop unwrapping (``KeyUnavailable``).
``current_kek_id`` reads the key's ``latest_version``, cached for ``kek_cache_s`` seconds, so a
rotation by another process reaches this one within that time.

The Vault token's policy, for the mount ``transit`` and key ``corridor-eu-central``::

    path "transit/encrypt/corridor-eu-central"      { capabilities = ["update"] }
    path "transit/decrypt/corridor-eu-central"      { capabilities = ["update"] }
    path "transit/rewrap/corridor-eu-central"       { capabilities = ["update"] }
    path "transit/keys/corridor-eu-central/rotate"  { capabilities = ["update"] }
    path "transit/keys/corridor-eu-central"         { capabilities = ["read"] }

Without ``create`` on the encrypt path, a mistyped key name fails instead of Vault creating a
new key. Serving processes need only the encrypt, decrypt and read paths; the rewrap and rotate
paths can be granted to the token of whoever runs ``corridor keys rotate``.

Any Vault or network error, and anything malformed, becomes ``KeyUnavailable`` naming the
operation and the key; the message carries Vault's error text, never a key or a request body.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import hvac
from hvac import exceptions as vault_errors

from payments.crypto import data_key_bytes, length_prefixed
from regions.keyring import KeyUnavailable, WrappedKey

provider_prefix = "vault-transit:"
context_purpose = "corridor-kek-data-key"
request_timeout_s = 10.0
request_timeout_s_max = 120.0
kek_cache_s = 5.0
ciphertext_chars_max = 512
error_chars_max = 300

# Vault's own rule for key names (framework.GenericNameRegex), in ASCII; mounts are such names
# joined by "/". A segment cannot be "." or "..".
_name = r"[A-Za-z0-9_](?:[A-Za-z0-9_.@-]*[A-Za-z0-9_])?"
_spec = re.compile(rf"((?:{_name}/)*{_name})/({_name})")
_version = r"[1-9][0-9]{0,9}"
_ciphertext = re.compile(rf"vault:v({_version}):[A-Za-z0-9+/]+={{0,2}}")


def parse_spec(region: str, spec: str) -> tuple[str, str]:
    """``<mount>/<key name>`` as (mount, key name); the mount may itself contain "/"."""
    found = _spec.fullmatch(spec)
    if found is None:
        raise ValueError(f"region {region}: vault-transit key {spec!r} is not <mount>/<key name>"
                         f" (for example transit/corridor-{region})")
    return found.group(1), found.group(2)


def transit_context(region: str) -> bytes:
    """The key-derivation context of a region's wrapped data keys (sent base64 encoded)."""
    return length_prefixed(context_purpose, region)


class VaultTransitKeys:
    """A ``KeyProvider`` for one region whose KEK is one derived Vault transit key."""

    def __init__(self, region: str, mount: str, key_name: str, client: hvac.Client, *,
                 cache_s: float = kek_cache_s) -> None:
        if parse_spec(region, f"{mount}/{key_name}") != (mount, key_name):
            raise ValueError(f"region {region}: {key_name!r} is not a Vault key name")
        self._region = region
        self._mount = mount
        self._key_name = key_name
        self._kek_prefix = f"{provider_prefix}{mount}/{key_name}:v"
        self._transit = client.secrets.transit
        self._context = _b64(transit_context(region))
        self._cache_s = cache_s
        self._latest: tuple[float, int] | None = None

    @classmethod
    def from_spec(cls, region: str, spec: str, *,
                  timeout_s: float = request_timeout_s) -> VaultTransitKeys:
        """The provider of ``spec`` (``<mount>/<key name>``), at ``VAULT_ADDR`` with
        ``VAULT_TOKEN`` (and ``VAULT_NAMESPACE`` when set)."""
        mount, key_name = parse_spec(region, spec)
        addr = os.environ.get("VAULT_ADDR", "")
        token = os.environ.get("VAULT_TOKEN", "")
        missing = [name for name, value in (("VAULT_ADDR", addr), ("VAULT_TOKEN", token))
                   if not value]
        if missing:
            raise ValueError(f"region {region}: the vault-transit key provider needs "
                             f"{' and '.join(missing)} set in the environment")
        url = urlsplit(addr)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"region {region}: VAULT_ADDR {addr!r} is not an http(s) URL")
        if not 0 < timeout_s <= request_timeout_s_max:
            raise ValueError(f"a Vault request timeout is in (0, {request_timeout_s_max}] s")
        client = hvac.Client(url=addr, token=token, timeout=timeout_s,
                             namespace=os.environ.get("VAULT_NAMESPACE") or None)
        return cls(region, mount, key_name, client)

    @property
    def key_path(self) -> str:
        return f"{self._mount}/{self._key_name}"

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        self._check_region(region)
        if len(plaintext_key) != data_key_bytes:
            raise ValueError(f"a data key is {data_key_bytes} bytes, got {len(plaintext_key)}")
        self._current_version()  # a key without derivation is refused before the data key is sent
        response = self._call("encrypt", self._transit.encrypt_data,
                              plaintext=_b64(plaintext_key), context=self._context)
        return self._wrapped(_data_str(response, "ciphertext"))

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        ciphertext, _ = self._checked(region, wrapped)
        self._current_version()  # without derivation, another region's context would open it
        response = self._call("decrypt", self._transit.decrypt_data,
                              ciphertext=ciphertext, context=self._context)
        try:
            key = base64.b64decode(_data_str(response, "plaintext"), validate=True)
        except binascii.Error:
            raise KeyUnavailable(f"vault transit decrypt on {self.key_path} returned a"
                                 f" malformed plaintext") from None
        if len(key) != data_key_bytes:
            raise KeyUnavailable(f"{wrapped.kek_id!r} does not hold a {data_key_bytes}-byte"
                                 f" data key")
        return key

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        """Vault decrypts and encrypts again under its latest version; the data key stays in
        Vault."""
        ciphertext, version = self._checked(region, wrapped)
        if version >= self._current_version():
            return wrapped
        response = self._call("rewrap", self._transit.rewrap_data,
                              ciphertext=ciphertext, context=self._context)
        return self._wrapped(_data_str(response, "ciphertext"))

    def rotate(self, region: str) -> str:
        self._check_region(region)
        self._call("rotate", self._transit.rotate_key)
        self._latest = None
        return self._kek_id(self._current_version())

    def current_kek_id(self, region: str) -> str:
        self._check_region(region)
        return self._kek_id(self._current_version())

    def _check_region(self, region: str) -> None:
        if region != self._region:
            raise KeyUnavailable(f"vault transit key {self.key_path} holds the KEK of region"
                                 f" {self._region!r}, not {region!r}")

    def _kek_id(self, version: int) -> str:
        return f"{self._kek_prefix}{version}"

    def _checked(self, region: str, wrapped: WrappedKey) -> tuple[str, int]:
        """The wrapped key's ciphertext and version, once its kek_id names this key and the
        same version as the ciphertext's prefix."""
        self._check_region(region)
        digits = wrapped.kek_id.removeprefix(self._kek_prefix)
        if not wrapped.kek_id.startswith(self._kek_prefix) or not re.fullmatch(_version, digits):
            raise KeyUnavailable(f"{wrapped.kek_id!r} is not a version of vault transit key"
                                 f" {self.key_path}")
        ciphertext, version = _parse_ciphertext(wrapped.ciphertext)
        if version != int(digits):
            raise KeyUnavailable(f"{wrapped.kek_id!r} disagrees with its ciphertext, which is"
                                 f" of version v{version}")
        return ciphertext, version

    def _wrapped(self, ciphertext: str) -> WrappedKey:
        blob = ciphertext.encode("utf-8")
        _, version = _parse_ciphertext(blob)
        return WrappedKey(kek_id=self._kek_id(version), ciphertext=blob)

    def _current_version(self) -> int:
        """The key's latest version, read at most once per ``cache_s``; refuses a key without
        derivation, under which Vault would ignore the region context."""
        now = time.monotonic()
        if self._latest is not None and now < self._latest[0]:
            return self._latest[1]
        data = _data(self._call("read", self._transit.read_key))
        if data.get("derived") is not True:
            raise KeyUnavailable(f"vault transit key {self.key_path} was not created with"
                                 f" derived=true, so Vault would not bind the region context")
        latest = data.get("latest_version")
        if isinstance(latest, bool) or not isinstance(latest, int) or latest < 1:
            raise KeyUnavailable(f"vault transit key {self.key_path}: no latest_version")
        self._latest = (now + self._cache_s, latest)
        return latest

    def _call(self, operation: str, method: Callable[..., Any], **params: Any) -> Any:
        try:
            return method(name=self._key_name, mount_point=self._mount, **params)
        except (vault_errors.VaultError, OSError) as exc:
            # Neither message holds the request body, but a requests exception keeps the
            # request (a data key, for encrypt): ``from None`` leaves it out of logged chains.
            reason = f"{type(exc).__name__}: {exc}"[:error_chars_max]
            raise KeyUnavailable(f"vault transit {operation} on {self.key_path} failed:"
                                 f" {reason}") from None


def _parse_ciphertext(blob: bytes) -> tuple[str, int]:
    """Vault's ``vault:vN:<base64>`` as text, with N."""
    found = None
    if len(blob) <= ciphertext_chars_max and blob.isascii():
        found = _ciphertext.fullmatch(blob.decode("ascii"))
    if found is None:
        raise KeyUnavailable("the wrapped key is not a Vault transit ciphertext")
    return found.group(0), int(found.group(1))


def _data(response: Any) -> dict[str, Any]:
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, dict):
        raise KeyUnavailable("Vault answered without a data object")
    return data


def _data_str(response: Any, field: str) -> str:
    value = _data(response).get(field)
    if not isinstance(value, str):
        raise KeyUnavailable(f"Vault answered without data.{field}")
    return value


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
