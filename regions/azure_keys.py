"""Azure Key Vault (or Managed HSM) as a region's key-encryption key.

Configured per region with the key's versionless id, as Terraform outputs it (``kek_key_id``):
``https://<vault>.vault.azure.net/keys/<key name>``; sovereign clouds (``.vault.azure.cn``,
``.vault.usgovcloudapi.net``) and Managed HSM (``.managedhsm.azure.net`` and its sovereign
domains) work the same way. One ``AzureKeyVaultKeys`` serves one Corridor region with one RSA or
RSA-HSM key. Credentials come from azure-identity's ``DefaultAzureCredential``: environment
variables, AKS workload identity, managed identity (and, on an operator's machine, the Azure
CLI); never from Corridor's configuration. For a sovereign cloud set ``AZURE_AUTHORITY_HOST``.

Permissions on the key. Serving processes need to read the key and to wrap and unwrap with it:
RBAC data actions ``keys/read``, ``keys/wrap/action`` and ``keys/unwrap/action`` (the role "Key
Vault Crypto User" on the key), or with access policies ``get``, ``wrapKey`` and ``unwrapKey``.
``rotate`` (``corridor keys rotate``) also needs ``keys/rotate/action`` (access policy
``rotate``; the role "Key Vault Crypto Officer"); the key's rotation policy can rotate it
instead, and then the operator only rewraps.

Versions and kek_ids. Key Vault keeps every version of a key, and a version once made never
changes. ``wrap`` wraps under the key's current version and names it in the kek_id,
``azure-keyvault:<vault host>/keys/<key name>/<version>`` (the version is Key Vault's 32 hex
characters); ``unwrap`` asks that same version, so keys wrapped before any number of
rotations, by ``rotate`` or by the rotation policy, still unwrap. Key Vault lets an expired
version unwrap but not wrap; do not disable or delete a version while rows still name it
(``corridor keys rotate`` rewraps them first). The current version is read with ``get_key``,
cached for ``kek_cache_s`` seconds and refreshed at once by ``rotate``: within that time a
process that has not seen another's rotation still wraps under the previous version, which stays
valid, and the next rewrap moves those rows.

The region binding, and why there is no associated data. Key Vault's RSA key wrapping
(RSA-OAEP-256) wraps exactly the 32-byte data key and takes no associated data, so unlike the
KMS and Vault providers nothing cryptographic ties a wrapped key to its region. The binding is
the key itself: each region has its own key, never shared with another region, so another
region's provider holds no key that opens it; and a provider refuses a region other than its
own and any kek_id that does not name its vault and key before it sends anything.

Where the data key goes. Wrapping is a public-key operation: the SDK fetches the version's
public key once and wraps in this process when the key allows ``wrapKey``, otherwise it asks Key
Vault to. Unwrapping always happens in Key Vault (or the HSM); the private key never leaves it.
Key Vault has no rewrap operation, so ``rewrap`` unwraps under the old version and wraps under
the current one here: the data key passes through Corridor's process memory for the length of
that call, as it does for every ``unwrap``.

Limits. Every client makes at most ``retry_count_max`` retries (on connection errors, 408, 429
and 5xx), gives up on connecting after ``connect_timeout_s`` and on reading after
``read_timeout_s``, and spends at most ``operation_timeout_s`` on one call with its retries.
The API version is pinned (``api_version``) so an SDK upgrade does not change what is sent.

Any Key Vault, identity or network error becomes ``KeyUnavailable`` naming the operation and
Key Vault's error code and message, never a key or a request body.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient, KeyType, KeyVaultKey
from azure.keyvault.keys.crypto import (
    CryptographyClient,
    KeyWrapAlgorithm,
    UnwrapResult,
    WrapResult,
)

from payments.crypto import data_key_bytes
from regions.keyring import KeyUnavailable, WrappedKey

provider_prefix = "azure-keyvault:"
key_vault_domains = (
    "vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net",
    "managedhsm.azure.net", "managedhsm.azure.cn", "managedhsm.usgovcloudapi.net",
)
wrap_algorithm = KeyWrapAlgorithm.rsa_oaep_256
api_version = "7.5"
kek_cache_s = 5.0
connect_timeout_s = 5.0
read_timeout_s = 10.0
operation_timeout_s = 30
retry_count_max = 2
retry_backoff_s_max = 4
crypto_clients_max = 8
error_chars_max = 300
# RSA-OAEP output is as long as the modulus: Key Vault's RSA keys are 2048, 3072 or 4096 bits.
wrapped_key_bytes = (256, 384, 512)

# Key Vault and Managed HSM names: 3 to 24 letters, digits and single hyphens, starting with a
# letter and ending with a letter or digit. Key names: 1 to 127 letters, digits and hyphens.
_vault_name = re.compile(r"[a-z](?:[a-z0-9]|-(?!-)){1,22}[a-z0-9]")
_key_name = re.compile(r"[0-9A-Za-z-]{1,127}")
_version = re.compile(r"[0-9a-f]{32}")


class KeyVaultKeys(Protocol):
    """The part of ``azure.keyvault.keys.KeyClient`` used here."""

    def get_key(self, name: str) -> KeyVaultKey: ...

    def rotate_key(self, name: str) -> KeyVaultKey: ...


class KeyVaultCrypto(Protocol):
    """The part of ``azure.keyvault.keys.crypto.CryptographyClient`` used here."""

    def wrap_key(self, algorithm: KeyWrapAlgorithm, key: bytes) -> WrapResult: ...

    def unwrap_key(self, algorithm: KeyWrapAlgorithm, encrypted_key: bytes) -> UnwrapResult: ...


CryptoFactory = Callable[[str], KeyVaultCrypto]
"""Makes the cryptography client of one key version, given its full id."""


def client_options() -> dict[str, Any]:
    """Keyword arguments for every Key Vault client: the pinned API version and the limits."""
    return {"api_version": api_version, "connection_timeout": connect_timeout_s,
            "read_timeout": read_timeout_s, "retry_total": retry_count_max,
            "retry_backoff_max": retry_backoff_s_max, "timeout": operation_timeout_s}


def parse_spec(region: str, spec: str) -> tuple[str, str]:
    """``https://<vault host>/keys/<key name>`` as (vault host in lower case, key name)."""
    host, key_name, problem = _spec_parts(spec)
    if problem is not None:
        raise ValueError(f"region {region}: azure-keyvault key {spec!r} {problem}; expected "
                         "https://<vault>.vault.azure.net/keys/<key name>")
    return host, key_name


def _spec_parts(spec: str) -> tuple[str, str, str | None]:
    if not spec.isascii() or any(c.isspace() for c in spec):
        return "", "", "is not a plain URL"
    url = urlsplit(spec)
    host = url.netloc.lower()
    vault, _, domain = host.partition(".")
    if url.scheme != "https":
        return "", "", "is not an https URL"
    if url.query or url.fragment or "?" in spec or "#" in spec:
        return "", "", "has a query or fragment"
    if domain not in key_vault_domains:
        return "", "", f"is not on a Key Vault domain ({', '.join(key_vault_domains)})"
    if not _vault_name.fullmatch(vault):
        return "", "", f"names vault {vault!r}, which is not a Key Vault name"
    kind, _, rest = url.path.removeprefix("/").partition("/")
    key_name, more, _ = rest.partition("/")
    if kind != "keys" or not key_name:
        return "", "", "does not name a key (/keys/<key name>)"
    if more:
        return "", "", "goes on after the key name; give the versionless key id"
    if not _key_name.fullmatch(key_name):
        return "", "", f"names key {key_name!r}, which is not a Key Vault key name"
    return host, key_name, None


class AzureKeyVaultKeys:
    """The ``KeyProvider`` of one Corridor region backed by one Key Vault RSA key."""

    def __init__(self, region: str, spec: str, keys: KeyVaultKeys, crypto_for: CryptoFactory,
                 *, cache_s: float = kek_cache_s) -> None:
        self._host, self._name = parse_spec(region, spec)
        self._region = region
        self._keys = keys
        self._crypto_for = crypto_for
        self._cache_s = cache_s
        self._kek_prefix = f"{provider_prefix}{self._host}/keys/{self._name}/"
        self._current: tuple[float, str] | None = None
        self._crypto: dict[str, KeyVaultCrypto] = {}

    @classmethod
    def from_spec(cls, region: str, spec: str, *,
                  credential: TokenCredential | None = None) -> AzureKeyVaultKeys:
        """The provider of ``spec``, the key's versionless id, authenticated by
        ``DefaultAzureCredential`` unless a credential is given."""
        host, _ = parse_spec(region, spec)
        token_source = credential if credential is not None else DefaultAzureCredential()
        options = client_options()
        keys = KeyClient(f"https://{host}", token_source, **options)

        def crypto_for(key_id: str) -> KeyVaultCrypto:
            return CryptographyClient(key_id, token_source, **options)

        return cls(region, spec, keys, crypto_for)

    @property
    def key_url(self) -> str:
        return f"https://{self._host}/keys/{self._name}"

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        self._check_region(region)
        if len(plaintext_key) != data_key_bytes:
            raise ValueError(f"a data key is {data_key_bytes} bytes, got {len(plaintext_key)}")
        version = self._current_version()
        with _key_vault_errors(f"wrap a data key of region {region!r} under {self.key_url}"):
            result = self._crypto_of(version).wrap_key(wrap_algorithm, plaintext_key)
        return WrappedKey(kek_id=self._kek_id(version), ciphertext=bytes(result.encrypted_key))

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        version = self._checked(region, wrapped)
        with _key_vault_errors(f"unwrap a data key of region {region!r} under "
                               f"{wrapped.kek_id!r}"):
            result = self._crypto_of(version).unwrap_key(wrap_algorithm, wrapped.ciphertext)
        if len(result.key) != data_key_bytes:
            raise KeyUnavailable(f"{wrapped.kek_id!r} does not hold a {data_key_bytes}-byte "
                                 "data key")
        return bytes(result.key)

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        """Unwrapped under its version and wrapped under the current one, in this process: Key
        Vault has no rewrap, so the data key passes through Corridor's memory for the call."""
        version = self._checked(region, wrapped)
        if version == self._current_version():
            return wrapped
        return self.wrap(region, self.unwrap(region, wrapped))

    def rotate(self, region: str) -> str:
        """A new current version of the key; the old ones still unwrap."""
        self._check_region(region)
        with _key_vault_errors(f"rotate {self.key_url}"):
            key = self._keys.rotate_key(self._name)
        version = self._usable_version(key)
        self._current = (time.monotonic() + self._cache_s, version)
        return self._kek_id(version)

    def current_kek_id(self, region: str) -> str:
        self._check_region(region)
        return self._kek_id(self._current_version())

    def _check_region(self, region: str) -> None:
        if region != self._region:
            raise KeyUnavailable(f"{self.key_url} is the key of region {self._region!r}, "
                                 f"not of {region!r}")

    def _kek_id(self, version: str) -> str:
        return f"{self._kek_prefix}{version}"

    def _checked(self, region: str, wrapped: WrappedKey) -> str:
        """The version a wrapped key names, once its kek_id names this vault and key and its
        ciphertext has the length of an RSA key's output."""
        self._check_region(region)
        version = wrapped.kek_id.removeprefix(self._kek_prefix)
        if not wrapped.kek_id.startswith(self._kek_prefix) or not _version.fullmatch(version):
            raise KeyUnavailable(f"{wrapped.kek_id!r} is not a version of {self.key_url}, the "
                                 f"key of region {region!r}")
        if len(wrapped.ciphertext) not in wrapped_key_bytes:
            raise KeyUnavailable(f"the wrapped key of {wrapped.kek_id!r} is "
                                 f"{len(wrapped.ciphertext)} bytes, not an RSA-wrapped key")
        return version

    def _current_version(self) -> str:
        """The key's current version, read at most once per ``cache_s``."""
        now = time.monotonic()
        if self._current is not None and now < self._current[0]:
            return self._current[1]
        with _key_vault_errors(f"read {self.key_url}"):
            key = self._keys.get_key(self._name)
        version = self._usable_version(key)
        self._current = (now + self._cache_s, version)
        return version

    def _usable_version(self, key: KeyVaultKey) -> str:
        """The version of what Key Vault answered, once it is an RSA version of this key that
        may wrap now. The SDK wraps with the public key in this process, where Key Vault's own
        refusal of a disabled or expired version would not apply, so it is checked here."""
        url = urlsplit(key.id)
        version = url.path.removeprefix(f"/keys/{self._name}/")
        if (url.scheme, url.netloc.lower()) != ("https", self._host) or \
                not _version.fullmatch(version):
            raise KeyUnavailable(f"Key Vault answered with key id {key.id!r}, not a version of "
                                 f"{self.key_url}")
        key_type = key.key_type
        if key_type not in (KeyType.rsa, KeyType.rsa_hsm):
            shown = key_type.value if isinstance(key_type, Enum) else key_type
            raise KeyUnavailable(f"{self.key_url} is a {shown} key; RSA-OAEP-256 wrapping "
                                 "needs an RSA or RSA-HSM key")
        props = key.properties
        now = datetime.now(UTC)
        if props.enabled is False or (props.not_before is not None and now < props.not_before) \
                or (props.expires_on is not None and now >= props.expires_on):
            raise KeyUnavailable(f"the current version of {self.key_url}, {version}, is "
                                 "disabled, not yet valid or expired: rotate the key")
        return version

    def _crypto_of(self, version: str) -> KeyVaultCrypto:
        """The cryptography client of one version, kept for the next call: it holds the
        version's public key once fetched."""
        client = self._crypto.get(version)
        if client is None:
            if len(self._crypto) >= crypto_clients_max:
                del self._crypto[next(iter(self._crypto))]
            client = self._crypto[version] = self._crypto_for(f"{self.key_url}/{version}")
        return client


@contextlib.contextmanager
def _key_vault_errors(doing: str) -> Iterator[None]:
    """Key Vault, identity and network failures as ``KeyUnavailable``. The SDK's exceptions
    keep the request, whose body holds the data key on wrap: ``from None`` leaves them out of
    logged chains. A ValueError is the SDK refusing an authentication challenge that names
    another resource than the vault's, or a malformed URL."""
    try:
        yield
    except HttpResponseError as exc:
        code, message = (exc.error.code, exc.error.message) if exc.error else ("", exc.reason)
        reason = f"HTTP {exc.status_code} {code}: {message}"[:error_chars_max]
        raise KeyUnavailable(f"Key Vault could not {doing}: {reason}") from None
    except (AzureError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:error_chars_max]
        raise KeyUnavailable(f"Key Vault could not {doing}: {reason}") from None
