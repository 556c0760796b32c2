"""The Alibaba Cloud KMS key provider: a contract test against a fake of KMS's documented API.

This is not Alibaba Cloud. ``FakeKms`` serves the RPC-style operations the provider uses, Encrypt,
Decrypt, ReEncrypt, DescribeKey and CreateKeyVersion of API version 2016-01-20, with the
parameter names, JSON answers and ``{"Code", "Message", "RequestId"}`` errors (400/403/404) that
Alibaba's API reference documents. The provider reaches it through the real SDK client
(alibabacloud-kms20160120 on tea-openapi) over HTTP on 127.0.0.1, pointed there by the config's
``endpoint`` and ``protocol="HTTP"``.

The SDK signs with Alibaba's V3 signature, ``Authorization: ACS3-HMAC-SHA256 Credential=<access
key id>,SignedHeaders=...,Signature=...`` over ``x-acs-*`` headers (action, version, date, nonce,
body hash), not with the older V2 query parameters (``AccessKeyId``, ``Signature``,
``SignatureMethod``). The fake checks that signature in full, as documented: canonical request,
SHA-256, HMAC-SHA256 with the access key secret; and the STS token header, and that no nonce is
used twice. It encrypts for real, AES-256-GCM per key version, with the encryption context as
associated data. Its ciphertext format, and the error code for a ciphertext that does not open,
are its own (KMS documents neither); the provider depends on neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from alibabacloud_kms20160120 import models as kms_models  # type: ignore[import-untyped]
from alibabacloud_kms20160120.client import Client  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils_models import Config  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from darabonba.runtime import RuntimeOptions  # type: ignore[import-untyped]

from payments.crypto import new_data_key
from regions import alicloud_keys
from regions.alicloud_keys import AlicloudKmsKeys, client_config, parse_spec
from regions.keyring import KeyUnavailable, WrappedKey

region = "ap-southeast"
region_id = "ap-southeast-1"
key_id = "key-sgp64f2d1c9e0ab7c3d5e8f1a2"
access_key_id = "LTAI5tCorridorTest"
access_key_secret = "corridor-test-secret"
api_version = "2016-01-20"
body_bytes_max = 1_000_000
join_timeout_s = 5.0
context = {"corridor:purpose": "corridor-data-key", "corridor:region": region}
context_json = json.dumps(context, separators=(",", ":"))
not_valid = "The specified parameter is not valid."


class KmsFailure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Credential:
    secret: str
    token: str | None = None
    actions: frozenset[str] | None = None  # what the RAM policy allows; None: everything


@dataclass
class FakeKey:
    key_id: str
    versions: dict[str, bytes] = field(default_factory=dict)
    primary: str = ""

    def add_version(self) -> str:
        version = f"{self.key_id}-{secrets.token_hex(5)}"
        self.versions[version] = AESGCM.generate_key(bit_length=256)
        self.primary = version
        return version

    def seal(self, plaintext: bytes, context: bytes) -> str:
        header = f"{self.key_id}\0{self.primary}\0".encode()
        nonce = os.urandom(12)
        sealed = AESGCM(self.versions[self.primary]).encrypt(nonce, plaintext, header + context)
        return base64.b64encode(header + nonce + sealed).decode()


@dataclass(frozen=True)
class Request:
    action: str
    params: dict[str, str]
    headers: dict[str, str]


class FakeKms:
    """KMS in one region: its keys, aliases and the RAM users allowed to call it."""

    def __init__(self) -> None:
        self.credentials = {access_key_id: Credential(access_key_secret)}
        self.keys: dict[str, FakeKey] = {}
        self.aliases: dict[str, str] = {}
        self.requests: list[Request] = []
        self.delay_s = 0.0
        self.reencrypt_answers_source_version = False
        self.refuse_new_versions = False
        self.malformed: dict[str, Any] = {}  # action -> a body (bytes: raw) answered with 200
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host!s}:{port}"

    def add_key(self, key_id: str) -> FakeKey:
        key = FakeKey(key_id)
        key.add_version()
        self.keys[key_id] = key
        return key

    def sent(self, action: str) -> list[Request]:
        return [r for r in self.requests if r.action == action]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(join_timeout_s)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        url = urlsplit(path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        with self._lock:
            action = headers.get("x-acs-action", "")
            self.requests.append(Request(action, params, headers))
            credential = self._authenticate("POST", url.path, params, headers, body)
            if headers.get("x-acs-version") != api_version:
                raise KmsFailure(400, "InvalidVersion", "Specified parameter Version is not valid.")
            if credential.actions is not None and action not in credential.actions:
                raise KmsFailure(403, "Forbidden.RAM", "User not authorized to operate on the"
                                 " specified resource, or this API doesn't support RAM.")
            if action in self.malformed:
                return self.malformed[action]
            return self._route(action, params) | {"RequestId": str(uuid.uuid4()).upper()}

    def _authenticate(self, method: str, path: str, params: dict[str, str],
                      headers: dict[str, str], body: bytes) -> Credential:
        """Alibaba's V3 signature: HMAC-SHA256 over the canonical request."""
        scheme, _, fields = headers.get("authorization", "").partition(" ")
        parts = dict(p.split("=", 1) for p in fields.split(",") if "=" in p)
        signed = parts.get("SignedHeaders", "").split(";")
        needed = {"host", "x-acs-action", "x-acs-version", "x-acs-date",
                  "x-acs-signature-nonce", "x-acs-content-sha256"}
        if scheme != "ACS3-HMAC-SHA256" or not needed <= set(signed) or "Signature" not in parts:
            raise KmsFailure(400, "IncompleteSignature", "The request signature does not"
                             " conform to Aliyun standards.")
        credential = self.credentials.get(parts.get("Credential", ""))
        if credential is None:
            raise KmsFailure(404, "InvalidAccessKeyId.NotFound", "Specified access key is not"
                             " found.")
        payload = hashlib.sha256(body).hexdigest()
        canonical = "\n".join([
            method, path or "/",
            "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in sorted(params.items())),
            "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed),
            ";".join(signed), payload])
        to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(credential.secret.encode(), to_sign.encode(), "sha256").hexdigest()
        if headers.get("x-acs-content-sha256") != payload or not hmac.compare_digest(
                expected, parts["Signature"]):
            raise KmsFailure(400, "SignatureDoesNotMatch", "Specified signature is not matched"
                             " with our calculation.")
        if headers.get("x-acs-security-token") != credential.token:
            raise KmsFailure(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken"
                             " mismatch with the AccessKey.")
        nonce = headers["x-acs-signature-nonce"]
        if nonce in self._nonces:
            raise KmsFailure(400, "SignatureNonceUsed", "Specified signature nonce was used"
                             " already.")
        self._nonces.add(nonce)
        return credential

    def _route(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        if action == "Encrypt":
            key = self._key(params.get("KeyId"))
            plaintext = _b64decode(params.get("Plaintext"))
            blob = key.seal(plaintext, _context(params.get("EncryptionContext")))
            return {"KeyId": key.key_id, "KeyVersionId": key.primary, "CiphertextBlob": blob}
        if action == "Decrypt":
            key, version, plaintext = self._open(params.get("CiphertextBlob"),
                                                 params.get("EncryptionContext"))
            return {"KeyId": key.key_id, "KeyVersionId": version,
                    "Plaintext": base64.b64encode(plaintext).decode()}
        if action == "ReEncrypt":
            _, source, plaintext = self._open(params.get("CiphertextBlob"),
                                              params.get("SourceEncryptionContext"))
            key = self._key(params.get("DestinationKeyId"))
            blob = key.seal(plaintext, _context(params.get("DestinationEncryptionContext")))
            version = source if self.reencrypt_answers_source_version else key.primary
            return {"KeyId": key.key_id, "KeyVersionId": version, "CiphertextBlob": blob}
        if action == "DescribeKey":
            return {"KeyMetadata": _metadata(self._key(params.get("KeyId")))}
        if action == "CreateKeyVersion":
            key = self._key(params.get("KeyId"))
            if self.refuse_new_versions:
                raise KmsFailure(400, "Rejected.UnsupportedOperation", "This action is not"
                                 " supported.")
            version = key.add_version()
            return {"KeyVersion": {"KeyId": key.key_id, "KeyVersionId": version,
                                   "CreationDate": _now()}}
        raise KmsFailure(400, "InvalidAction.NotFound", "Specified api is not found, please"
                         " check your url and method.")

    def _key(self, key_id: str | None) -> FakeKey:
        if key_id and key_id.startswith("alias/"):
            if key_id not in self.aliases:
                raise KmsFailure(404, "Forbidden.AliasNotFound", "The specified Alias is not"
                                 " found.")
            key_id = self.aliases[key_id]
        if key_id not in self.keys:
            raise KmsFailure(404, "Forbidden.KeyNotFound", "The specified Key is not found.")
        return self.keys[key_id]

    def _open(self, blob: str | None, encryption_context: str | None
              ) -> tuple[FakeKey, str, bytes]:
        raw = _b64decode(blob)
        parts = raw.split(b"\0", 2)
        if len(parts) != 3 or len(parts[2]) < 28:
            raise KmsFailure(400, "InvalidParameter", not_valid)
        key = self._key(parts[0].decode(errors="replace"))
        version = parts[1].decode(errors="replace")
        if version not in key.versions:
            raise KmsFailure(400, "InvalidParameter", not_valid)
        header = raw[: len(parts[0]) + len(parts[1]) + 2]
        try:
            plaintext = AESGCM(key.versions[version]).decrypt(
                parts[2][:12], parts[2][12:], header + _context(encryption_context))
        except InvalidTag:
            raise KmsFailure(400, "InvalidParameter", not_valid) from None
        return key, version, plaintext

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        kms = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                time.sleep(kms.delay_s)
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(size, body_bytes_max))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, doc = 200, kms.answer(self.path, headers, body)
                except KmsFailure as failure:
                    status, doc = failure.status, {
                        "RequestId": str(uuid.uuid4()).upper(), "HostId": "kms.aliyuncs.com",
                        "Code": failure.code, "Message": failure.message}
                out = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out before a slow answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _metadata(key: FakeKey) -> dict[str, Any]:
    return {"KeyId": key.key_id, "Arn": f"acs:kms:{region_id}:1234567890123456:key/{key.key_id}",
            "KeyState": "Enabled", "KeySpec": "Aliyun_AES_256", "KeyUsage": "ENCRYPT/DECRYPT",
            "Origin": "Aliyun_KMS", "ProtectionLevel": "SOFTWARE", "Creator": "1234567890123456",
            "CreationDate": _now(), "Description": "", "DeleteDate": "",
            "MaterialExpireTime": "", "AutomaticRotation": "Enabled",
            "RotationInterval": "31536000s", "LastRotationDate": _now(),
            "NextRotationDate": _now(), "PrimaryKeyVersion": key.primary,
            "DeletionProtection": "Disabled"}


def _context(value: str | None) -> bytes:
    """The encryption context as associated data: a JSON object of strings, key order free."""
    if not value:
        return b""
    try:
        parsed = json.loads(value)
    except ValueError:
        raise KmsFailure(400, "InvalidParameter", not_valid) from None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise KmsFailure(400, "InvalidParameter", not_valid)
    return json.dumps(parsed, sort_keys=True).encode()


def _b64decode(value: str | None) -> bytes:
    try:
        return base64.b64decode(value or "", validate=True)
    except ValueError:
        raise KmsFailure(400, "InvalidParameter", not_valid) from None


def _rfc3986(value: str) -> str:
    return quote(value, safe="~")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads the proxy variables on every call; the fake is local."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kms() -> Iterator[FakeKms]:
    fake = FakeKms()
    fake.add_key(key_id)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def sdk_client(kms: FakeKms, *, access_key: str = access_key_id, secret: str = access_key_secret,
               token: str | None = None) -> Client:
    return Client(Config(access_key_id=access_key, access_key_secret=secret, security_token=token,
                         region_id=region_id, endpoint=kms.endpoint, protocol="HTTP"))


def provider(kms: FakeKms, *, for_region: str = region, key: str = key_id,
             client: Client | None = None, **options: Any) -> AlicloudKmsKeys:
    return AlicloudKmsKeys(for_region, region_id, key, client or sdk_client(kms), **options)


@pytest.fixture
def keys(kms: FakeKms) -> AlicloudKmsKeys:
    return provider(kms)


def kek(version: str, key: str = key_id) -> str:
    return f"alicloud-kms:{region_id}/{key}#{version}"


def test_round_trip_sends_what_kms_documents(kms: FakeKms, keys: AlicloudKmsKeys) -> None:
    data_key = new_data_key()
    v1 = kms.keys[key_id].primary
    wrapped = keys.wrap(region, data_key)
    assert wrapped.kek_id == kek(v1)
    assert data_key not in wrapped.ciphertext
    assert _b64(data_key).encode() not in wrapped.ciphertext
    assert keys.unwrap(region, wrapped) == data_key
    assert [r.action for r in kms.requests] == ["Encrypt", "Decrypt"]

    [encrypt] = kms.sent("Encrypt")
    assert encrypt.params == {"KeyId": key_id, "Plaintext": _b64(data_key),
                              "EncryptionContext": context_json}
    assert encrypt.headers["x-acs-version"] == api_version
    assert encrypt.headers["authorization"].startswith(
        f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders=")
    assert "x-acs-security-token" not in encrypt.headers
    [decrypt] = kms.sent("Decrypt")
    assert decrypt.params == {"CiphertextBlob": wrapped.ciphertext.decode(),
                              "EncryptionContext": context_json}
    assert keys.current_kek_id(region) == kek(v1)
    [describe] = kms.sent("DescribeKey")
    assert describe.params == {"KeyId": key_id}


def test_sts_credentials_send_the_security_token(kms: FakeKms) -> None:
    kms.credentials["STS.Corridor"] = Credential("sts-secret", token="sts-token")
    keys = provider(kms, client=sdk_client(kms, access_key="STS.Corridor", secret="sts-secret",
                                           token="sts-token"))
    data_key = new_data_key()
    assert keys.unwrap(region, keys.wrap(region, data_key)) == data_key
    assert {r.headers["x-acs-security-token"] for r in kms.requests} == {"sts-token"}


def test_another_region_is_refused(keys: AlicloudKmsKeys) -> None:
    wrapped = keys.wrap(region, new_data_key())
    with pytest.raises(KeyUnavailable, match="holds the KEK of region 'ap-southeast'"):
        keys.wrap("eu-central", new_data_key())
    for call in (keys.unwrap, keys.rewrap):
        with pytest.raises(KeyUnavailable):
            call("eu-central", wrapped)
    for other in (keys.rotate, keys.current_kek_id):
        with pytest.raises(KeyUnavailable):
            other("eu-central")


def test_encryption_context_binds_the_region(kms: FakeKms, keys: AlicloudKmsKeys) -> None:
    """Two regions misconfigured with one KMS key still cannot read each other's keys."""
    other = provider(kms, for_region="cn-east")
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    with pytest.raises(KeyUnavailable, match=r"InvalidParameter \(HTTP 400, request "):
        other.unwrap("cn-east", wrapped)
    assert json.loads(kms.sent("Decrypt")[-1].params["EncryptionContext"]) == {
        "corridor:purpose": "corridor-data-key", "corridor:region": "cn-east"}
    assert other.unwrap("cn-east", other.wrap("cn-east", data_key)) == data_key


def test_tampered_or_malformed_ciphertext_is_unavailable(kms: FakeKms,
                                                         keys: AlicloudKmsKeys) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    raw = bytearray(base64.b64decode(wrapped.ciphertext))
    raw[-3] ^= 0x01
    tampered = base64.b64encode(bytes(raw))
    with pytest.raises(KeyUnavailable, match="InvalidParameter") as failed:
        keys.unwrap(region, replace(wrapped, ciphertext=tampered))
    assert _b64(data_key) not in str(failed.value)
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__
    decrypts = len(kms.sent("Decrypt"))
    for blob in (b"", b"not base64!", wrapped.ciphertext[:-1], "é".encode(),
                 b"A" * (alicloud_keys.ciphertext_chars_max + 4)):
        with pytest.raises(KeyUnavailable, match="is not a KMS ciphertext"):
            keys.unwrap(region, replace(wrapped, ciphertext=blob))
    assert len(kms.sent("Decrypt")) == decrypts


@pytest.mark.parametrize(("client_key_id", "secret", "answer"), [
    (access_key_id, "wrong-secret", r"SignatureDoesNotMatch \(HTTP 400"),
    ("LTAI5tNobody", access_key_secret, r"InvalidAccessKeyId.NotFound \(HTTP 404"),
    ("LTAI5tReadOnly", "read-only-secret", r"Forbidden.RAM \(HTTP 403"),
])
def test_bad_credentials_are_unavailable(kms: FakeKms, keys: AlicloudKmsKeys,
                                         client_key_id: str, secret: str, answer: str) -> None:
    kms.credentials["LTAI5tReadOnly"] = Credential("read-only-secret",
                                                   actions=frozenset({"DescribeKey"}))
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    stranger = provider(kms, client=sdk_client(kms, access_key=client_key_id, secret=secret))
    for call in (lambda: stranger.wrap(region, data_key),
                 lambda: stranger.unwrap(region, wrapped),
                 lambda: stranger.rewrap(region, replace(wrapped, kek_id=kek("v0")))):
        with pytest.raises(KeyUnavailable, match=answer) as failed:
            call()
        assert _b64(data_key) not in str(failed.value)
        assert secret not in str(failed.value)


def test_rotate_keeps_old_versions_and_rewrap_moves_them(kms: FakeKms,
                                                         keys: AlicloudKmsKeys) -> None:
    data_key = new_data_key()
    v1 = kms.keys[key_id].primary
    old = keys.wrap(region, data_key)
    assert keys.current_kek_id(region) == kek(v1)

    v2_kek = keys.rotate(region)
    v2 = kms.keys[key_id].primary
    assert v2 != v1
    assert v2_kek == kek(v2)
    assert kms.sent("CreateKeyVersion")[0].params == {"KeyId": key_id}
    assert keys.current_kek_id(region) == kek(v2)
    assert keys.unwrap(region, old) == data_key
    assert keys.wrap(region, data_key).kek_id == kek(v2)

    moved = keys.rewrap(region, old)
    assert moved.kek_id == kek(v2)
    assert moved.ciphertext != old.ciphertext
    [reencrypt] = kms.sent("ReEncrypt")
    assert reencrypt.params == {
        "CiphertextBlob": old.ciphertext.decode(), "DestinationKeyId": key_id,
        "SourceEncryptionContext": context_json, "DestinationEncryptionContext": context_json}
    assert keys.unwrap(region, moved) == data_key
    assert keys.unwrap(region, old) == data_key


def test_rewrap_of_a_current_key_is_unchanged(kms: FakeKms, keys: AlicloudKmsKeys) -> None:
    wrapped = keys.wrap(region, new_data_key())
    assert keys.rewrap(region, wrapped) is wrapped
    assert kms.sent("ReEncrypt") == []


def test_rewrap_refuses_an_answer_naming_the_source_version(kms: FakeKms,
                                                           keys: AlicloudKmsKeys) -> None:
    """Were ReEncrypt to answer the version it decrypted with, the new ciphertext's version
    would be unknown: the wrapped key is left as it was, and still unwraps."""
    data_key = new_data_key()
    old = keys.wrap(region, data_key)
    keys.rotate(region)
    kms.reencrypt_answers_source_version = True
    with pytest.raises(KeyUnavailable, match="left as it was"):
        keys.rewrap(region, old)
    assert keys.unwrap(region, old) == data_key


def test_a_process_with_a_stale_primary_rewraps_correctly(kms: FakeKms) -> None:
    """A row wrapped under a version newer than this process has read is merely moved again."""
    stale, elsewhere = provider(kms, cache_s=60.0), provider(kms)
    assert stale.current_kek_id(region) == kek(kms.keys[key_id].primary)
    elsewhere.rotate(region)
    v2 = kms.keys[key_id].primary
    data_key = new_data_key()
    fresh = elsewhere.wrap(region, data_key)
    assert stale.current_kek_id(region) != fresh.kek_id
    moved = stale.rewrap(region, fresh)
    assert moved.kek_id == kek(v2)
    assert stale.unwrap(region, moved) == data_key


def test_current_kek_id_is_cached_and_refreshed_by_rotate(kms: FakeKms) -> None:
    keys, elsewhere = provider(kms, cache_s=60.0), provider(kms)
    v1 = kms.keys[key_id].primary
    assert keys.current_kek_id(region) == kek(v1)
    elsewhere.rotate(region)
    assert keys.current_kek_id(region) == kek(v1)
    v3_kek = keys.rotate(region)
    assert keys.current_kek_id(region) == v3_kek == kek(kms.keys[key_id].primary)
    uncached = provider(kms, cache_s=0.0)
    elsewhere.rotate(region)
    assert uncached.current_kek_id(region) == kek(kms.keys[key_id].primary)


def test_rotation_refused_by_kms_is_unavailable(kms: FakeKms, keys: AlicloudKmsKeys) -> None:
    before = keys.current_kek_id(region)
    kms.refuse_new_versions = True
    with pytest.raises(KeyUnavailable, match=r"Rejected.UnsupportedOperation \(HTTP 400"):
        keys.rotate(region)
    assert keys.current_kek_id(region) == before


def test_rotation_not_made_primary_in_time_is_reported(
        kms: FakeKms, keys: AlicloudKmsKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alicloud_keys, "rotation_wait_s_max", 0.0)
    key = kms.keys[key_id]
    real_add = key.add_version

    def add_but_keep_primary() -> str:
        primary = key.primary
        version = real_add()
        key.primary = primary
        return version

    monkeypatch.setattr(key, "add_version", add_but_keep_primary)
    with pytest.raises(KeyUnavailable, match="did not make it primary"):
        keys.rotate(region)


@pytest.mark.parametrize("kek_id", [
    f"alicloud-kms:{region_id}/key-sgp6other00000000000000000#v1",
    f"alicloud-kms:cn-shanghai/{key_id}#v1",
    f"alicloud-kms:{region_id}/{key_id}",
    f"alicloud-kms:{region_id}/{key_id}#",
    f"alicloud-kms:{region_id}/{key_id}#v1#v2",
    f"alicloud-kms:{region_id}/{key_id}#{'v' * 129}",
    f"alicloud-kms:{region_id}/alias/corridor-ap-southeast#v1",
    "aws-kms:arn:aws:kms:eu-central-1:111122223333:key/x#r0",
    "local:ap-southeast:v1",
])
def test_kek_id_of_another_key_or_provider_is_refused(kms: FakeKms, keys: AlicloudKmsKeys,
                                                      kek_id: str) -> None:
    wrapped = keys.wrap(region, new_data_key())
    for call in (keys.unwrap, keys.rewrap):
        with pytest.raises(KeyUnavailable, match="is not a version of the KMS key"):
            call(region, replace(wrapped, kek_id=kek_id))
    assert kms.sent("Decrypt") == kms.sent("ReEncrypt") == []


def test_kek_id_disagreeing_with_the_ciphertext_is_refused(kms: FakeKms,
                                                           keys: AlicloudKmsKeys) -> None:
    old = keys.wrap(region, new_data_key())
    keys.rotate(region)
    relabelled = replace(old, kek_id=keys.current_kek_id(region))
    with pytest.raises(KeyUnavailable, match="disagrees with its ciphertext"):
        keys.unwrap(region, relabelled)


def test_ciphertext_of_another_key_is_refused(kms: FakeKms, keys: AlicloudKmsKeys) -> None:
    """A ciphertext of another key the same credentials can use, under this key's label."""
    kms.add_key("key-sgp6other00000000000000000")
    other = provider(kms, key="key-sgp6other00000000000000000")
    foreign = other.wrap(region, new_data_key())
    relabelled = WrappedKey(keys.current_kek_id(region), foreign.ciphertext)
    with pytest.raises(KeyUnavailable, match="answered Decrypt for key 'key-sgp6other"):
        keys.unwrap(region, relabelled)


def test_alias_resolves_to_the_key_id_once(kms: FakeKms) -> None:
    kms.aliases["alias/corridor-ap-southeast"] = key_id
    keys = provider(kms, key="alias/corridor-ap-southeast")
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    assert wrapped.kek_id == kek(kms.keys[key_id].primary)
    assert keys.unwrap(region, wrapped) == data_key
    assert keys.rotate(region) == kek(kms.keys[key_id].primary)
    first, *later = [r.params["KeyId"] for r in kms.sent("DescribeKey")]
    assert (first, set(later)) == ("alias/corridor-ap-southeast", {key_id})
    assert {r.params["KeyId"] for r in kms.sent("Encrypt")} == {key_id}


@pytest.mark.parametrize(("key", "code"), [
    ("key-sgp6nowhere000000000000000", "Forbidden.KeyNotFound"),
    ("alias/nowhere", "Forbidden.AliasNotFound"),
])
def test_unknown_key_is_unavailable(kms: FakeKms, key: str, code: str) -> None:
    with pytest.raises(KeyUnavailable, match=rf"{code} \(HTTP 404"):
        provider(kms, key=key).wrap(region, new_data_key())


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_wrong_length_data_key_is_refused(kms: FakeKms, keys: AlicloudKmsKeys,
                                          length: int) -> None:
    with pytest.raises(ValueError, match="a data key is 32 bytes"):
        keys.wrap(region, bytes(length))
    assert kms.requests == []


def test_unwrapped_key_must_be_a_data_key(kms: FakeKms, keys: AlicloudKmsKeys) -> None:
    """Something else encrypted under this key and context is still not a data key."""
    answer = sdk_client(kms).encrypt_with_options(kms_models.EncryptRequest(
        key_id=key_id, plaintext=_b64(b"k" * 16), encryption_context=context), RuntimeOptions())
    wrapped = WrappedKey(keys.current_kek_id(region), answer.body.ciphertext_blob.encode())
    with pytest.raises(KeyUnavailable, match="does not hold a 32-byte data key"):
        keys.unwrap(region, wrapped)


@pytest.mark.parametrize(("body", "problem"), [
    ({"KeyId": key_id, "CiphertextBlob": "QUJD"}, "without a well-formed KeyVersionId"),
    ({"KeyId": key_id, "KeyVersionId": "v#1", "CiphertextBlob": "QUJD"},
     "without a well-formed KeyVersionId"),
    ({"KeyId": key_id, "KeyVersionId": "v1", "CiphertextBlob": "not base64"},
     "without a well-formed CiphertextBlob"),
    ({"KeyId": "key-sgp6other00000000000000000", "KeyVersionId": "v1", "CiphertextBlob": "QUJD"},
     "answered Encrypt for key 'key-sgp6other"),
    ([], "without a well-formed KeyId"),
    (b"<html>502 Bad Gateway</html>", "unreadable answer"),
])
def test_malformed_encrypt_answers_are_unavailable(kms: FakeKms, keys: AlicloudKmsKeys,
                                                   body: Any, problem: str) -> None:
    kms.malformed["Encrypt"] = body
    with pytest.raises(KeyUnavailable, match=problem):
        keys.wrap(region, new_data_key())


@pytest.mark.parametrize(("body", "problem"), [
    ({"KeyMetadata": "Enabled"}, "without a well-formed KeyId"),
    ({"KeyMetadata": {"KeyId": key_id}}, "without a well-formed PrimaryKeyVersion"),
    ({"KeyMetadata": {"KeyId": "key-sgp6other00000000000000000", "PrimaryKeyVersion": "v1"}},
     "described key 'key-sgp6other"),
    ({"RequestId": "R"}, "without a well-formed KeyId"),
])
def test_malformed_describe_answers_are_unavailable(kms: FakeKms, keys: AlicloudKmsKeys,
                                                    body: Any, problem: str) -> None:
    kms.malformed["DescribeKey"] = body
    with pytest.raises(KeyUnavailable, match=problem):
        keys.current_kek_id(region)


def test_kms_down_or_slow_is_unavailable(kms: FakeKms) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = AlicloudKmsKeys(region, region_id, key_id, Client(Config(
        access_key_id=access_key_id, access_key_secret=access_key_secret, region_id=region_id,
        endpoint=f"127.0.0.1:{port}", protocol="HTTP")), connect_timeout_ms=500)
    data_key = new_data_key()
    with pytest.raises(KeyUnavailable, match="network error") as failed:
        down.wrap(region, data_key)
    # The SDK's own exception quotes the request URL, data key included: it is not chained.
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__
    assert _b64(data_key) not in str(failed.value)
    assert quote(_b64(data_key), safe="") not in str(failed.value)

    # Far longer than the timeout: had the timeout not applied, the call would succeed.
    kms.delay_s = 2.0
    slow = provider(kms, read_timeout_ms=100)
    with pytest.raises(KeyUnavailable, match="timed out"):
        slow.wrap(region, data_key)


@pytest.fixture
def alibaba_env(monkeypatch: pytest.MonkeyPatch) -> Mapping[str, str]:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", access_key_secret)
    for name in ("ALIBABA_CLOUD_SECURITY_TOKEN", "CORRIDOR_ALICLOUD_KMS_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    return os.environ


@pytest.mark.parametrize(("spec", "problem"), [
    ("", "names no key after the region id"),
    ("key-shh6xxxxxxxx", "names no key after the region id"),
    ("Cn-Shanghai/key-shh6xxxxxxxx", "does not start with an Alibaba Cloud region id"),
    ("acs:kms:cn-shanghai:123:key/key-shh6xxxxxxxx", "does not start with an Alibaba Cloud"),
    ("cn-shanghai", "names no key after the region id"),
    ("cn-shanghai/", "names no key after the region id"),
    ("/key-shh6xxxxxxxx", "does not start with an Alibaba Cloud region id"),
    ("cn-shanghai/key-shh6#1", "names no key id or alias"),
    ("cn-shanghai/key shh6", "names no key id or alias"),
    ("cn-shanghai/-key", "names no key id or alias"),
    ("cn-shanghai/alias/", "names no key id or alias"),
    ("cn-shanghai/alias/corridor cn", "names no key id or alias"),
    ("cn-shanghai/key-shh6xxxxxxxx/", "names no key id or alias"),
    (f"cn-shanghai/key-{'x' * 130}", "names no key id or alias"),
])
def test_bad_specs_are_refused(alibaba_env: Mapping[str, str], spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as failed:
        AlicloudKmsKeys.from_spec("cn-east", spec)
    assert str(failed.value).startswith("region cn-east: alicloud-kms key ")


def test_good_specs_are_parsed() -> None:
    assert parse_spec("cn-east", "cn-shanghai/key-shh6xxxxxxxx") == (
        "cn-shanghai", "key-shh6xxxxxxxx")
    assert parse_spec(region, "ap-southeast-1/alias/corridor-ap-southeast") == (
        "ap-southeast-1", "alias/corridor-ap-southeast")
    assert parse_spec("cn-east", "cn-shanghai-finance-1/1234abcd-12ab-34cd-56ef-12345678abcd")[0] \
        == "cn-shanghai-finance-1"


@pytest.mark.parametrize("missing", ["ALIBABA_CLOUD_ACCESS_KEY_ID",
                                     "ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
def test_missing_credentials_are_refused(alibaba_env: Mapping[str, str],
                                         monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(ValueError, match=f"region cn-east: .* needs {missing} set") as failed:
        AlicloudKmsKeys.from_spec("cn-east", "cn-shanghai/key-shh6xxxxxxxx")
    assert access_key_secret not in str(failed.value)


def test_both_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="needs ALIBABA_CLOUD_ACCESS_KEY_ID and"
                                         " ALIBABA_CLOUD_ACCESS_KEY_SECRET set"):
        client_config("cn-east", "cn-shanghai", {"ALIBABA_CLOUD_SECURITY_TOKEN": "t"})


@pytest.mark.parametrize(("network", "endpoint"), [
    (None, "kms.cn-shanghai.aliyuncs.com"),
    ("public", "kms.cn-shanghai.aliyuncs.com"),
    ("vpc", "kms-vpc.cn-shanghai.aliyuncs.com"),
])
def test_client_config_from_the_environment(network: str | None, endpoint: str) -> None:
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": access_key_id,
               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": access_key_secret,
               "ALIBABA_CLOUD_SECURITY_TOKEN": "sts-token"}
    if network is not None:
        environ["CORRIDOR_ALICLOUD_KMS_NETWORK"] = network
    config = client_config("cn-east", "cn-shanghai", environ)
    assert (config.endpoint, config.protocol, config.region_id) == (
        endpoint, "HTTPS", "cn-shanghai")
    assert (config.access_key_id, config.access_key_secret, config.security_token) == (
        access_key_id, access_key_secret, "sts-token")


def test_unknown_network_is_refused(alibaba_env: Mapping[str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRIDOR_ALICLOUD_KMS_NETWORK", "intranet")
    with pytest.raises(ValueError, match="CORRIDOR_ALICLOUD_KMS_NETWORK is 'intranet'"):
        AlicloudKmsKeys.from_spec("cn-east", "cn-shanghai/key-shh6xxxxxxxx")


def test_from_spec_credentials_sign_what_kms_checks(kms: FakeKms,
                                                    alibaba_env: Mapping[str, str]) -> None:
    """The configuration ``from_spec`` builds, pointed at the fake over HTTP."""
    assert isinstance(AlicloudKmsKeys.from_spec(region, f"{region_id}/{key_id}"), AlicloudKmsKeys)
    config = client_config(region, region_id, alibaba_env)
    config.endpoint, config.protocol = kms.endpoint, "HTTP"
    keys = AlicloudKmsKeys(region, region_id, key_id, Client(config))
    data_key = new_data_key()
    assert keys.unwrap(region, keys.wrap(region, data_key)) == data_key
