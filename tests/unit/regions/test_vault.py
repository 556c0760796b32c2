"""The Vault transit key provider: a contract test against a fake of Vault's documented API.

This is not a real Vault. ``FakeVault`` serves the transit endpoints the provider uses, as
Vault's HTTP API documents them (``/v1/<mount>/encrypt/<name>``, ``decrypt``, ``rewrap``,
``keys/<name>/rotate`` and ``GET keys/<name>``): JSON field names, the ``{"data": ...}``
envelope, ``{"errors": [...]}`` with 400/403/404, ``X-Vault-Token`` and ``X-Vault-Namespace``.
It encrypts for real, AES-256-GCM per key version with the key derived from the request's
context by HKDF-SHA256 as Vault does for derived keys, and records every request, so the tests
check what the provider sends as much as what it gets back. The provider talks to it through a
real ``hvac.Client`` over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from payments.crypto import new_data_key
from regions.keyring import KeyUnavailable, WrappedKey, provider_from_settings
from regions.vault import VaultTransitKeys, transit_context

token = "hvs.test-token"
region = "eu-central"
mount = "transit"
key_name = "corridor-eu-central"
kek_v1 = "vault-transit:transit/corridor-eu-central:v1"
kek_v2 = "vault-transit:transit/corridor-eu-central:v2"
body_bytes_max = 1_000_000
join_timeout_s = 5.0
missing_context = ("missing 'context' for key derivation; the key was created using a derived"
                   " key, which means additional, per-request information must be included in"
                   " order to perform operations with the key")


class VaultFailure(Exception):
    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


@dataclass
class TransitKey:
    derived: bool = True
    versions: dict[int, bytes] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)
    min_decryption_version: int = 1

    def rotate(self) -> None:
        version = len(self.versions) + 1
        self.versions[version] = AESGCM.generate_key(bit_length=256)
        self.created[version] = int(time.time())

    def aead(self, version: int, context: bytes) -> AESGCM:
        """Vault's keysutil: a derived key is HKDF-SHA256(version key, salt none, info context);
        a key without derivation ignores the context."""
        key = self.versions[version]
        if self.derived:
            if not context:
                raise VaultFailure(400, missing_context)
            key = HKDF(algorithm=SHA256(), length=32, salt=None, info=context).derive(key)
        return AESGCM(key)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeVault:
    """Vault's transit engine at ``mount``, for one token (and namespace, when given)."""

    def __init__(self) -> None:
        self.token = token
        self.namespace: str | None = None
        self.delay_s = 0.0
        self.keys: dict[tuple[str, str], TransitKey] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_key(self, mount: str, name: str, *, derived: bool = True) -> TransitKey:
        key = TransitKey(derived=derived)
        key.rotate()
        self.keys[mount, name] = key
        return key

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(join_timeout_s)

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.requests.append(Request(method, path, headers, body))
            if headers.get("X-Vault-Token") != self.token:
                raise VaultFailure(403, "permission denied")
            if headers.get("X-Vault-Namespace") != self.namespace:
                # A token lives in its namespace: outside it Vault does not know it.
                raise VaultFailure(403, "permission denied")
            return self._route(method, path.removeprefix("/v1/"), body)

    def _route(self, method: str, path: str, body: dict[str, Any]
               ) -> tuple[int, dict[str, Any] | None]:
        for (mount, name), key in self.keys.items():
            if method == "GET" and path == f"{mount}/keys/{name}":
                return 200, _envelope(_key_info(name, key))
            if method == "POST" and path == f"{mount}/keys/{name}/rotate":
                key.rotate()
                return 204, None
            if method == "POST" and path == f"{mount}/encrypt/{name}":
                plaintext = _b64decode(body.get("plaintext"), "plaintext")
                return 200, _envelope(_encrypt(key, plaintext, _context(body)))
            if method == "POST" and path == f"{mount}/decrypt/{name}":
                plaintext = _decrypt(key, body.get("ciphertext"), _context(body))
                return 200, _envelope({"plaintext": _b64(plaintext)})
            if method == "POST" and path == f"{mount}/rewrap/{name}":
                context = _context(body)
                plaintext = _decrypt(key, body.get("ciphertext"), context)
                return 200, _envelope(_encrypt(key, plaintext, context))
        if method == "GET" and re.fullmatch(r".+/keys/[^/]+", path):
            return 404, {"errors": []}
        if method == "POST" and re.fullmatch(r".+/(decrypt|rewrap)/[^/]+", path):
            raise VaultFailure(400, "encryption key not found")
        raise VaultFailure(404, f'no handler for route "{path}". route entry not found.')

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                time.sleep(vault.delay_s)
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(size, body_bytes_max))
                try:
                    body = json.loads(raw) if raw else {}
                    status, doc = vault.answer(method, self.path, dict(self.headers), body)
                except VaultFailure as failure:
                    status, doc = failure.status, {"errors": failure.errors}
                except ValueError:
                    status, doc = 400, {"errors": ["failed to parse JSON input"]}
                out = b"" if doc is None else json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    if doc is not None:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out before a slow answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
            "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None,
            "auth": None}


def _key_info(name: str, key: TransitKey) -> dict[str, Any]:
    latest = max(key.versions)
    info = {"name": name, "type": "aes256-gcm96", "derived": key.derived,
            "keys": {str(v): t for v, t in key.created.items()}, "latest_version": latest,
            "min_available_version": 0, "min_decryption_version": key.min_decryption_version,
            "min_encryption_version": 0, "deletion_allowed": False, "exportable": False,
            "allow_plaintext_backup": False, "supports_encryption": True,
            "supports_decryption": True, "supports_derivation": True,
            "supports_signing": False, "imported_key": False, "auto_rotate_period": 0}
    return info | ({"kdf": "hkdf_sha256"} if key.derived else {})


def _encrypt(key: TransitKey, plaintext: bytes, context: bytes) -> dict[str, Any]:
    version = max(key.versions)
    nonce = os.urandom(12)
    sealed = key.aead(version, context).encrypt(nonce, plaintext, None)
    return {"ciphertext": f"vault:v{version}:{_b64(nonce + sealed)}", "key_version": version}


def _decrypt(key: TransitKey, ciphertext: Any, context: bytes) -> bytes:
    if not isinstance(ciphertext, str) or not ciphertext:
        raise VaultFailure(400, "missing ciphertext to decrypt")
    parts = ciphertext.split(":", 2)
    if len(parts) != 3 or parts[0] != "vault":
        raise VaultFailure(400, "invalid ciphertext: no prefix")
    if not re.fullmatch(r"v[0-9]+", parts[1]):
        raise VaultFailure(400, "invalid ciphertext: version number could not be decoded")
    version = int(parts[1][1:])
    if version < key.min_decryption_version:
        raise VaultFailure(400, "ciphertext or signature version is disallowed by policy"
                                " (too old)")
    if version not in key.versions:
        raise VaultFailure(400, "invalid key version")
    blob = _b64decode(parts[2], "ciphertext")
    try:
        return key.aead(version, context).decrypt(blob[:12], blob[12:], None)
    except (InvalidTag, ValueError):
        raise VaultFailure(400, "cipher: message authentication failed") from None


def _context(body: dict[str, Any]) -> bytes:
    return _b64decode(body["context"], "context") if body.get("context") else b""


def _b64decode(value: Any, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise VaultFailure(400, f"failed to base64-decode {name}") from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    fake = FakeVault()
    fake.add_key(mount, key_name)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def provider(vault: FakeVault, *, for_region: str = region, name: str = key_name,
             client_token: str = token, namespace: str | None = None,
             cache_s: float = 60.0) -> VaultTransitKeys:
    client = hvac.Client(url=vault.url, token=client_token, namespace=namespace, timeout=5)
    return VaultTransitKeys(for_region, mount, name, client, cache_s=cache_s)


@pytest.fixture
def keys(vault: FakeVault) -> VaultTransitKeys:
    return provider(vault)


def test_round_trip_sends_what_vault_documents(vault: FakeVault,
                                               keys: VaultTransitKeys) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    assert wrapped.kek_id == kek_v1
    assert wrapped.ciphertext.startswith(b"vault:v1:")
    assert data_key not in wrapped.ciphertext
    assert _b64(data_key).encode() not in wrapped.ciphertext
    assert keys.unwrap(region, wrapped) == data_key
    assert keys.current_kek_id(region) == kek_v1

    context = _b64(transit_context(region))
    [encrypt] = vault.sent("POST", "/v1/transit/encrypt/corridor-eu-central")
    assert encrypt.body == {"plaintext": _b64(data_key), "context": context}
    assert encrypt.headers["X-Vault-Token"] == token
    assert encrypt.headers["Content-Type"] == "application/json"
    assert "X-Vault-Namespace" not in encrypt.headers
    [decrypt] = vault.sent("POST", "/v1/transit/decrypt/corridor-eu-central")
    assert decrypt.body == {"ciphertext": wrapped.ciphertext.decode(), "context": context}
    [read] = vault.sent("GET", "/v1/transit/keys/corridor-eu-central")
    assert read.body == {}
    assert len(vault.requests) == 3


def test_namespace_header_is_sent(vault: FakeVault) -> None:
    vault.namespace = "corridor/eu"
    data_key = new_data_key()
    keys = provider(vault, namespace="corridor/eu")
    assert keys.unwrap(region, keys.wrap(region, data_key)) == data_key
    assert {r.headers.get("X-Vault-Namespace") for r in vault.requests} == {"corridor/eu"}
    with pytest.raises(KeyUnavailable, match="Forbidden: permission denied"):
        provider(vault).wrap(region, data_key)


def test_another_region_is_refused(keys: VaultTransitKeys) -> None:
    wrapped = keys.wrap(region, new_data_key())
    with pytest.raises(KeyUnavailable, match="holds the KEK of region 'eu-central'"):
        keys.wrap("us-east", new_data_key())
    for call in (keys.unwrap, keys.rewrap):
        with pytest.raises(KeyUnavailable):
            call("us-east", wrapped)
    with pytest.raises(KeyUnavailable):
        keys.rotate("us-east")
    with pytest.raises(KeyUnavailable):
        keys.current_kek_id("us-east")


def test_key_wrapped_for_one_region_does_not_unwrap_as_another(vault: FakeVault,
                                                                keys: VaultTransitKeys) -> None:
    """Two regions on one transit key: the context still keeps their wrapped keys apart."""
    other = provider(vault, for_region="us-east")
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    with pytest.raises(KeyUnavailable, match="message authentication failed"):
        other.unwrap("us-east", wrapped)
    [decrypt] = vault.sent("POST", "/v1/transit/decrypt/corridor-eu-central")
    assert decrypt.body["context"] == _b64(transit_context("us-east"))
    assert transit_context("us-east") != transit_context(region)
    assert other.unwrap("us-east", other.wrap("us-east", data_key)) == data_key


def test_tampered_or_malformed_ciphertext_is_unavailable(vault: FakeVault,
                                                         keys: VaultTransitKeys) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    body = wrapped.ciphertext[len(b"vault:v1:"):]
    raw = bytearray(base64.b64decode(body))
    raw[20] ^= 0x01
    tampered = b"vault:v1:" + base64.b64encode(bytes(raw))
    with pytest.raises(KeyUnavailable, match="message authentication failed") as failed:
        keys.unwrap(region, replace(wrapped, ciphertext=tampered))
    assert _b64(data_key) not in str(failed.value)
    assert failed.value.__cause__ is None
    decrypts = len(vault.sent("POST", "/v1/transit/decrypt/corridor-eu-central"))
    for blob in (b"", b"vault:v1:", b"v1:" + body, b"vault:v1:" + body + b"\n",
                 b"vault:v1:" + body + b"!", "vault:v1:é".encode(), b"vault:v1:" + b"A" * 600):
        with pytest.raises(KeyUnavailable, match="not a Vault transit ciphertext"):
            keys.unwrap(region, replace(wrapped, ciphertext=blob))
    assert len(vault.sent("POST", "/v1/transit/decrypt/corridor-eu-central")) == decrypts


def test_wrong_token_is_unavailable(vault: FakeVault) -> None:
    client = hvac.Client(url=vault.url, token=token)
    keys = VaultTransitKeys(region, mount, key_name, client)
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    stranger = provider(vault, client_token="hvs.wrong")
    for call in (lambda: stranger.wrap(region, data_key), lambda: stranger.unwrap(region, wrapped),
                 lambda: stranger.current_kek_id(region)):
        with pytest.raises(KeyUnavailable, match="Forbidden: permission denied") as failed:
            call()
        assert _b64(data_key) not in str(failed.value)
    # A token revoked while the process runs: the key's version is cached, decrypt fails.
    client.token = "hvs.revoked"
    with pytest.raises(KeyUnavailable, match="decrypt on transit/corridor-eu-central failed"):
        keys.unwrap(region, wrapped)
    assert vault.requests[-1].headers["X-Vault-Token"] == "hvs.revoked"


def test_rotate_keeps_old_versions_and_rewrap_moves_them(vault: FakeVault,
                                                         keys: VaultTransitKeys) -> None:
    data_key = new_data_key()
    old = keys.wrap(region, data_key)
    assert keys.current_kek_id(region) == kek_v1
    assert keys.rotate(region) == kek_v2
    assert vault.sent("POST", "/v1/transit/keys/corridor-eu-central/rotate")[0].body == {}
    assert keys.current_kek_id(region) == kek_v2
    assert keys.unwrap(region, old) == data_key
    assert keys.wrap(region, data_key).kek_id == kek_v2

    moved = keys.rewrap(region, old)
    assert moved.kek_id == kek_v2
    assert moved.ciphertext.startswith(b"vault:v2:")
    [rewrap] = vault.sent("POST", "/v1/transit/rewrap/corridor-eu-central")
    assert rewrap.body == {"ciphertext": old.ciphertext.decode(),
                           "context": _b64(transit_context(region))}
    assert keys.unwrap(region, moved) == data_key


def test_rewrap_of_current_version_is_unchanged(vault: FakeVault,
                                                keys: VaultTransitKeys) -> None:
    wrapped = keys.wrap(region, new_data_key())
    assert keys.rewrap(region, wrapped) is wrapped
    assert vault.sent("POST", "/v1/transit/rewrap/corridor-eu-central") == []


def test_versions_below_min_decryption_version_are_unavailable(
        vault: FakeVault, keys: VaultTransitKeys) -> None:
    old = keys.wrap(region, new_data_key())
    keys.rotate(region)
    vault.keys[mount, key_name].min_decryption_version = 2
    with pytest.raises(KeyUnavailable, match="disallowed by policy"):
        keys.unwrap(region, old)


def test_current_kek_id_is_cached_and_refreshed_by_rotate(vault: FakeVault) -> None:
    keys, elsewhere = provider(vault), provider(vault)
    assert keys.current_kek_id(region) == kek_v1
    assert elsewhere.rotate(region) == kek_v2
    assert keys.current_kek_id(region) == kek_v1
    assert keys.rotate(region) == "vault-transit:transit/corridor-eu-central:v3"
    assert keys.current_kek_id(region) == "vault-transit:transit/corridor-eu-central:v3"
    reads = vault.sent("GET", "/v1/transit/keys/corridor-eu-central")
    assert len(reads) == 3
    uncached = provider(vault, cache_s=0.0)
    elsewhere.rotate(region)
    assert uncached.current_kek_id(region) == "vault-transit:transit/corridor-eu-central:v4"
    elsewhere.rotate(region)
    assert uncached.current_kek_id(region) == "vault-transit:transit/corridor-eu-central:v5"


@pytest.mark.parametrize("kek_id", [
    "vault-transit:transit/corridor-eu-central:v2",
    "vault-transit:transit/corridor-eu-central:v01",
    "vault-transit:transit/corridor-eu-central:v",
    "vault-transit:transit/corridor-us-east:v1",
    "vault-transit:other/corridor-eu-central:v1",
    "local:eu-central:v1",
    "aws-kms:arn:aws:kms:eu-central-1:111122223333:key/x:v1",
])
def test_kek_id_must_name_this_key_and_the_ciphertexts_version(
        vault: FakeVault, keys: VaultTransitKeys, kek_id: str) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    keys.rotate(region)
    relabelled = replace(wrapped, kek_id=kek_id)
    for call in (keys.unwrap, keys.rewrap):
        with pytest.raises(KeyUnavailable):
            call(region, relabelled)
    assert vault.sent("POST", "/v1/transit/decrypt/corridor-eu-central") == []
    assert vault.sent("POST", "/v1/transit/rewrap/corridor-eu-central") == []


def test_a_key_without_derivation_is_refused(vault: FakeVault) -> None:
    """Vault ignores the context on a key without derivation: the region would not be bound."""
    vault.add_key(mount, "plain", derived=False)
    with pytest.raises(KeyUnavailable, match="derived=true"):
        provider(vault, name="plain").wrap(region, new_data_key())
    assert vault.sent("POST", "/v1/transit/encrypt/plain") == []


def test_unknown_key_is_unavailable(vault: FakeVault) -> None:
    with pytest.raises(KeyUnavailable, match="InvalidPath"):
        provider(vault, name="corridor-nowhere").wrap(region, new_data_key())


def test_unwrapped_key_must_be_a_data_key(vault: FakeVault, keys: VaultTransitKeys) -> None:
    client = hvac.Client(url=vault.url, token=token)
    short = client.secrets.transit.encrypt_data(
        key_name, plaintext=_b64(b"k" * 16), context=_b64(transit_context(region)))
    ciphertext = short["data"]["ciphertext"]
    with pytest.raises(KeyUnavailable, match="does not hold a 32-byte data key"):
        keys.unwrap(region, WrappedKey(kek_v1, ciphertext.encode()))
    with pytest.raises(ValueError, match="a data key is 32 bytes"):
        keys.wrap(region, b"k" * 16)


def test_vault_down_or_slow_is_unavailable(vault: FakeVault) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = VaultTransitKeys(region, mount, key_name,
                            hvac.Client(url=f"http://127.0.0.1:{port}", token=token, timeout=1))
    with pytest.raises(KeyUnavailable, match="read on transit/corridor-eu-central failed"):
        down.current_kek_id(region)
    # Far longer than the timeout: had the timeout not applied, the call would succeed.
    vault.delay_s = 2.0
    slow = VaultTransitKeys(region, mount, key_name,
                            hvac.Client(url=vault.url, token=token, timeout=0.1))
    with pytest.raises(KeyUnavailable, match="Timeout"):
        slow.current_kek_id(region)


@pytest.fixture
def vault_env(vault: FakeVault, monkeypatch: pytest.MonkeyPatch) -> FakeVault:
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    monkeypatch.setenv("VAULT_TOKEN", token)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    return vault


@pytest.mark.parametrize("spec", [
    "", "transit", "transit/", "/corridor-eu-central", "transit//corridor-eu-central",
    "transit/../corridor-eu-central", "../corridor-eu-central", "transit/corridor eu",
    "transit/corridor-eu-central/", "transit/.", "transit/-key", "transit/key\n",
])
def test_bad_specs_are_refused(vault_env: FakeVault, spec: str) -> None:
    with pytest.raises(ValueError, match=r"region eu-central: vault-transit key .* is not "
                                         r"<mount>/<key name>"):
        VaultTransitKeys.from_spec(region, spec)


def test_nested_mount_is_a_spec(vault_env: FakeVault) -> None:
    vault_env.add_key("team/transit", "corridor-eu-central")
    keys = VaultTransitKeys.from_spec(region, "team/transit/corridor-eu-central")
    wrapped = keys.wrap(region, new_data_key())
    assert wrapped.kek_id == "vault-transit:team/transit/corridor-eu-central:v1"
    assert vault_env.sent("POST", "/v1/team/transit/encrypt/corridor-eu-central")


@pytest.mark.parametrize("missing", ["VAULT_ADDR", "VAULT_TOKEN"])
def test_missing_vault_environment_is_refused(vault_env: FakeVault,
                                              monkeypatch: pytest.MonkeyPatch,
                                              missing: str) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(ValueError, match=f"region eu-central: .* needs {missing} set") as failed:
        VaultTransitKeys.from_spec(region, "transit/corridor-eu-central")
    assert token not in str(failed.value)


def test_vault_addr_must_be_a_url(vault_env: FakeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "127.0.0.1:8200")
    with pytest.raises(ValueError, match="is not an http"):
        VaultTransitKeys.from_spec(region, "transit/corridor-eu-central")


def test_from_spec_uses_namespace_and_timeout(vault_env: FakeVault,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    vault_env.namespace = "corridor/eu"
    monkeypatch.setenv("VAULT_NAMESPACE", "corridor/eu")
    data_key = new_data_key()
    keys = VaultTransitKeys.from_spec(region, "transit/corridor-eu-central", timeout_s=0.1)
    assert keys.unwrap(region, keys.wrap(region, data_key)) == data_key
    vault_env.delay_s = 0.5
    with pytest.raises(KeyUnavailable, match="Timeout"):
        keys.rotate(region)
    with pytest.raises(ValueError, match="timeout"):
        VaultTransitKeys.from_spec(region, "transit/corridor-eu-central", timeout_s=0)


def test_through_provider_from_settings(vault_env: FakeVault, tmp_path: Path) -> None:
    keys = provider_from_settings("local", tmp_path / "k.json", ["eu-central", "us-east"],
                                  {"eu-central": "vault-transit:transit/corridor-eu-central"})
    for code, kek_id in (("eu-central", kek_v1), ("us-east", "local:us-east:v1")):
        data_key = new_data_key()
        wrapped = keys.wrap(code, data_key)
        assert wrapped.kek_id == kek_id
        assert keys.current_kek_id(code) == kek_id
        assert keys.unwrap(code, wrapped) == data_key
    assert vault_env.sent("POST", "/v1/transit/encrypt/corridor-eu-central")
