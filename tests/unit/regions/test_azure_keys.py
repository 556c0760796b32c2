"""The Azure Key Vault key provider: a contract test against a fake of Key Vault's documented API.

This is not Azure. ``FakeKeyVault`` serves the Key Vault REST endpoints the provider uses, as
Microsoft documents them: ``GET /keys/{name}`` and ``/keys/{name}/{version}`` (a key bundle with
a JSON Web Key: ``kid``, ``kty``, ``key_ops``, ``n``, ``e``), ``POST
/keys/{name}/{version}/wrapkey`` and ``/unwrapkey`` (``alg``, base64url ``value``) and ``POST
/keys/{name}/rotate``, each with the ``api-version`` query parameter, and errors shaped
``{"error": {"code": ..., "message": ...}}`` with 400, 401, 403 and 404. It authenticates as
Key Vault does: a request without a bearer token gets 401 with the ``WWW-Authenticate``
challenge naming the tenant and the resource, and an identity without access gets 403. Each key
version is a real RSA key, and wrapping is real RSA-OAEP-256, so what the SDK wraps with the
public key in this process, the fake unwraps with the private key.

The provider talks to it through the real ``KeyClient`` and ``CryptographyClient`` over HTTPS,
with the SDK's own challenge authentication: the fake serves a certificate for
``*.vault.azure.net`` made in the test by a test CA (trusted through ``REQUESTS_CA_BUNDLE``),
and the test resolves the fake vault's host name to it on 127.0.0.1 (any other name fails to
resolve, so nothing leaves the machine). A fake credential hands out the bearer token.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from payments.crypto import new_data_key
from regions import azure_keys
from regions.azure_keys import AzureKeyVaultKeys, client_options, parse_spec
from regions.keyring import KeyUnavailable, WrappedKey

region = "eu-central"
key_name = "corridor-kek"
token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-token"
stranger_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.stranger"
tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
vault_resource = "https://vault.azure.net"
hsm_resource = "https://managedhsm.azure.net"
tls_names = ("*.vault.azure.net", "*.managedhsm.azure.net")
body_bytes_max = 1_000_000
join_timeout_s = 5.0
oaep_256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class KeyVaultFailure(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.doc = {"error": {"code": code, "message": message}}
        self.headers = headers or {}


@dataclass
class KeyVersion:
    version: str
    private: rsa.RSAPrivateKey
    kty: str = "RSA-HSM"
    key_ops: list[str] = field(default_factory=lambda: ["wrapKey", "unwrapKey"])
    enabled: bool = True
    expires: int | None = None
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


class FakeKeyVault:
    """One vault (or Managed HSM) at ``host``; ``tokens`` may use its keys, ``forbidden``
    tokens authenticate but have no access, any other token is not accepted."""

    def __init__(self, host: str, tls: Tls, resource: str = vault_resource) -> None:
        self.host = host
        self.resource = resource
        self.tokens = {token}
        self.forbidden = {stranger_token}
        self.versions_readable = True
        self.delay_s = 0.0
        self.keys: dict[str, list[KeyVersion]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def add_key(self, name: str, kty: str = "RSA-HSM") -> None:
        self.keys[name] = []
        self.rotate(name, kty)

    def rotate(self, name: str, kty: str = "RSA-HSM") -> KeyVersion:
        version = KeyVersion(uuid.uuid4().hex, rsa.generate_private_key(65537, 2048), kty)
        self.keys[name].append(version)
        return version

    def latest(self, name: str = key_name) -> KeyVersion:
        return self.keys[name][-1]

    def kek_id(self, version: KeyVersion, name: str = key_name) -> str:
        return f"azure-keyvault:{self.host}/keys/{name}/{version.version}"

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(join_timeout_s)

    def answer(self, request: Request) -> dict[str, Any]:
        with self._lock:
            self.requests.append(request)
            self._authenticate(request.headers.get("Authorization", ""))
            if request.query.get("api-version") is None:
                raise KeyVaultFailure(400, "BadParameter",
                                      "The api-version query parameter is required")
            return self._route(request.method, request.path, request.body)

    def _authenticate(self, authorization: str) -> None:
        bearer = authorization.removeprefix("Bearer ")
        if bearer in self.forbidden:
            raise KeyVaultFailure(403, "Forbidden", "Caller is not authorized to perform action"
                                  " on resource. (ForbiddenByRbac)")
        if bearer not in self.tokens or not authorization.startswith("Bearer "):
            challenge = (f'Bearer authorization="https://login.microsoftonline.com/{tenant}", '
                         f'resource="{self.resource}"')
            raise KeyVaultFailure(401, "Unauthorized", "AKV10000: Request is missing a Bearer"
                                  " or PoP token.", {"WWW-Authenticate": challenge})

    def _route(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "GET" and (found := re.fullmatch(r"/keys/([^/]+)/?", path)):
            return self._bundle(found[1], self._key(found[1])[-1])
        if method == "GET" and (found := re.fullmatch(r"/keys/([^/]+)/([^/]+)", path)):
            if not self.versions_readable:
                raise KeyVaultFailure(403, "Forbidden", "The user does not have keys get"
                                      " permission on key vault.")
            return self._bundle(found[1], self._version(found[1], found[2]))
        if method == "POST" and (found := re.fullmatch(r"/keys/([^/]+)/rotate", path)):
            self._key(found[1])
            return self._bundle(found[1], self.rotate(found[1]))
        found = re.fullmatch(r"/keys/([^/]+)/([^/]+)/(wrapkey|unwrapkey)", path)
        if method == "POST" and found:
            version = self._version(found[1], found[2])
            value = _crypt(version, found[3], body)
            return {"kid": self._kid(found[1], version), "value": _b64url(value)}
        raise KeyVaultFailure(404, "NotFound", f"No route for {method} {path}")

    def _key(self, name: str) -> list[KeyVersion]:
        if name not in self.keys:
            raise KeyVaultFailure(404, "KeyNotFound", f"A key with (name/id) {name} was not"
                                  " found in this key vault.")
        return self.keys[name]

    def _version(self, name: str, version: str) -> KeyVersion:
        for candidate in self._key(name):
            if candidate.version == version:
                return candidate
        raise KeyVaultFailure(404, "KeyNotFound", f"A key with (name/id) {name}/{version} was"
                              " not found in this key vault.")

    def _kid(self, name: str, version: KeyVersion) -> str:
        return f"https://{self.host}/keys/{name}/{version.version}"

    def _bundle(self, name: str, version: KeyVersion) -> dict[str, Any]:
        jwk: dict[str, Any] = {"kid": self._kid(name, version), "kty": version.kty,
                               "key_ops": version.key_ops}
        if version.kty.startswith("RSA"):
            numbers = version.private.public_key().public_numbers()
            jwk |= {"n": _b64url(_int_bytes(numbers.n)), "e": _b64url(_int_bytes(numbers.e))}
        attributes: dict[str, Any] = {
            "enabled": version.enabled, "created": version.created, "updated": version.created,
            "recoveryLevel": "Recoverable", "recoverableDays": 90, "exportable": False}
        if version.expires is not None:
            attributes["exp"] = version.expires
        return {"key": jwk, "attributes": attributes, "tags": {"corridor-purpose": "kek"}}

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
                url = urlsplit(self.path)
                headers: dict[str, str] = {}
                try:
                    body = json.loads(raw) if raw else {}
                    request = Request(method, url.path, parse_qs(url.query),
                                      dict(self.headers), body)
                    status, doc = 200, vault.answer(request)
                except KeyVaultFailure as failure:
                    status, doc, headers = failure.status, failure.doc, failure.headers
                except ValueError:
                    status, doc = 400, {"error": {"code": "BadParameter",
                                                  "message": "The request body is not JSON"}}
                out = json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client timed out before a slow answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _crypt(version: KeyVersion, operation: str, body: dict[str, Any]) -> bytes:
    """Key Vault's wrapkey and unwrapkey for an RSA version, refusals included."""
    if body.get("alg") != "RSA-OAEP-256":
        raise KeyVaultFailure(400, "BadParameter", f"Invalid algorithm {body.get('alg')!r}")
    op = {"wrapkey": "wrapKey", "unwrapkey": "unwrapKey"}[operation]
    if not version.enabled:
        raise KeyVaultFailure(403, "Forbidden", f"Operation {op} is not allowed on a disabled"
                              " key.")
    if op not in version.key_ops:
        raise KeyVaultFailure(403, "Forbidden", f"Operation {op} is not permitted on this key.")
    value = _b64url_decode(body.get("value"))
    if op == "wrapKey":
        return version.private.public_key().encrypt(value, oaep_256)
    try:
        return version.private.decrypt(value, oaep_256)
    except ValueError:
        raise KeyVaultFailure(400, "BadParameter", "The parameter is incorrect.") from None


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64url_decode(value: Any) -> bytes:
    if not isinstance(value, str):
        raise KeyVaultFailure(400, "BadParameter", "value is required")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise KeyVaultFailure(400, "BadParameter", "value is not base64url") from None


class FakeCredential:
    """A ``TokenCredential`` handing out one bearer token, remembering what it was asked."""

    def __init__(self, bearer: str = token) -> None:
        self.bearer = bearer
        self.asked: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        self.asked.append((scopes, tenant_id))
        return AccessToken(self.bearer, int(time.time()) + 3600)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A test CA, and a certificate it signed for every Key Vault and Managed HSM host."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corridor test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, tls_names[0])]))
            .issuer_name(ca_name).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(name) for name in tls_names]
                + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = Tls(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch, tls: Tls) -> dict[str, int]:
    """Host name -> port on 127.0.0.1: the test's DNS. Any other name does not resolve."""
    routes: dict[str, int] = {}
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in routes:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not served in this test")
        return resolve("127.0.0.1", routes[name], *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return routes


@pytest.fixture
def serve(tls: Tls, hosts: dict[str, int]) -> Iterator[Callable[..., FakeKeyVault]]:
    """Starts fake vaults, each at a fresh host name: the SDK caches a vault's challenge per
    host for the whole process, and each test starts from a first, unauthenticated request."""
    started: list[FakeKeyVault] = []

    def start(domain: str = "vault.azure.net", resource: str = vault_resource) -> FakeKeyVault:
        fake = FakeKeyVault(f"corridor-{secrets.token_hex(4)}.{domain}", tls, resource)
        fake.add_key(key_name)
        hosts[fake.host] = fake.port
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def vault(serve: Callable[..., FakeKeyVault]) -> FakeKeyVault:
    return serve()


def provider(vault: FakeKeyVault, credential: FakeCredential | None = None, *,
             for_region: str = region, name: str = key_name, cache_s: float = 60.0,
             **options: Any) -> AzureKeyVaultKeys:
    """The provider on real SDK clients, with ``options`` over the production ones."""
    source = credential or FakeCredential()
    chosen = client_options() | options
    keys = KeyClient(vault.url, source, **chosen)

    def crypto_for(key_id: str) -> CryptographyClient:
        return CryptographyClient(key_id, source, **chosen)

    return AzureKeyVaultKeys(for_region, f"{vault.url}/keys/{name}", keys, crypto_for,
                             cache_s=cache_s)



@pytest.fixture
def keys(vault: FakeKeyVault) -> AzureKeyVaultKeys:
    return provider(vault)


def test_round_trip_through_the_sdk(vault: FakeKeyVault, keys: AzureKeyVaultKeys) -> None:
    data_key = new_data_key()
    v1 = vault.latest()
    wrapped = keys.wrap(region, data_key)
    assert wrapped.kek_id == f"azure-keyvault:{vault.host}/keys/corridor-kek/{v1.version}"
    assert len(wrapped.ciphertext) == 256
    assert data_key not in wrapped.ciphertext
    # Real RSA-OAEP-256 under the version's public key: the version's private key opens it.
    assert v1.private.decrypt(wrapped.ciphertext, oaep_256) == data_key
    assert keys.unwrap(region, wrapped) == data_key
    assert keys.current_kek_id(region) == wrapped.kek_id

    # The SDK read the version's public key and wrapped here; only Key Vault unwrapped.
    assert vault.sent("POST", f"/keys/corridor-kek/{v1.version}/wrapkey") == []
    assert len(vault.sent("GET", f"/keys/corridor-kek/{v1.version}")) == 1
    [unwrap] = vault.sent("POST", f"/keys/corridor-kek/{v1.version}/unwrapkey")
    assert unwrap.body == {"alg": "RSA-OAEP-256", "value": _b64url(wrapped.ciphertext)}


def test_requests_carry_the_bearer_token_and_api_version(vault: FakeKeyVault) -> None:
    credential = FakeCredential()
    keys = provider(vault, credential)
    keys.unwrap(region, keys.wrap(region, new_data_key()))
    first, *rest = vault.requests
    assert "Authorization" not in first.headers  # elicits the challenge
    assert rest
    assert {r.headers["Authorization"] for r in rest} == {f"Bearer {token}"}
    assert {tuple(r.query["api-version"]) for r in vault.requests} == {("7.5",)}
    assert {r.headers["Host"] for r in vault.requests} == {vault.host}
    assert credential.asked[0] == (("https://vault.azure.net/.default",), tenant)


def test_another_region_is_refused(vault: FakeKeyVault, keys: AzureKeyVaultKeys) -> None:
    wrapped = keys.wrap(region, new_data_key())
    sent = len(vault.requests)
    with pytest.raises(KeyUnavailable, match="is the key of region 'eu-central', not of"):
        keys.wrap("us-east", new_data_key())
    for call in (keys.unwrap, keys.rewrap):
        with pytest.raises(KeyUnavailable):
            call("us-east", wrapped)
    with pytest.raises(KeyUnavailable):
        keys.rotate("us-east")
    with pytest.raises(KeyUnavailable):
        keys.current_kek_id("us-east")
    assert len(vault.requests) == sent


def test_the_region_binding_is_the_key(vault: FakeKeyVault, keys: AzureKeyVaultKeys) -> None:
    """RSA wrapping has no associated data: another region's key is what keeps them apart."""
    vault.add_key("corridor-kek-us-east")
    us_east = provider(vault, for_region="us-east", name="corridor-kek-us-east")
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    with pytest.raises(KeyUnavailable, match="is not a version of"):
        us_east.unwrap("us-east", wrapped)
    relabelled = replace(wrapped, kek_id=us_east.current_kek_id("us-east"))
    with pytest.raises(KeyUnavailable, match="HTTP 400 BadParameter") as failed:
        us_east.unwrap("us-east", relabelled)
    assert data_key.hex() not in str(failed.value)
    assert us_east.unwrap("us-east", us_east.wrap("us-east", data_key)) == data_key


def test_tampered_or_malformed_ciphertext_is_unavailable(vault: FakeKeyVault,
                                                         keys: AzureKeyVaultKeys) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    tampered = bytearray(wrapped.ciphertext)
    tampered[100] ^= 0x01
    with pytest.raises(KeyUnavailable, match="HTTP 400 BadParameter") as failed:
        keys.unwrap(region, replace(wrapped, ciphertext=bytes(tampered)))
    assert failed.value.__cause__ is None
    assert data_key.hex() not in str(failed.value)
    unwraps = len(vault.requests)
    for blob in (b"", wrapped.ciphertext[:-1], wrapped.ciphertext + b"\0", b"x" * 1000):
        with pytest.raises(KeyUnavailable, match="not an RSA-wrapped key"):
            keys.unwrap(region, replace(wrapped, ciphertext=blob))
    assert len(vault.requests) == unwraps


def test_an_identity_without_access_is_unavailable(vault: FakeKeyVault) -> None:
    owner = provider(vault)
    data_key = new_data_key()
    wrapped = owner.wrap(region, data_key)
    stranger = provider(vault, FakeCredential(stranger_token))
    for call in (lambda: stranger.wrap(region, data_key),
                 lambda: stranger.unwrap(region, wrapped),
                 lambda: stranger.current_kek_id(region)):
        with pytest.raises(KeyUnavailable, match="HTTP 403 Forbidden: Caller is not") as failed:
            call()
        assert data_key.hex() not in str(failed.value)
        assert failed.value.__cause__ is None


def test_a_token_no_longer_accepted_is_unavailable(vault: FakeKeyVault,
                                                   keys: AzureKeyVaultKeys) -> None:
    """Key Vault answers 401 with its challenge; the SDK asks again once, then gives up."""
    wrapped = keys.wrap(region, new_data_key())
    vault.tokens = set()
    with pytest.raises(KeyUnavailable, match="HTTP 401 Unauthorized"):
        keys.unwrap(region, wrapped)


def test_rotate_keeps_old_versions_and_rewrap_moves_them(vault: FakeKeyVault,
                                                         keys: AzureKeyVaultKeys) -> None:
    data_key = new_data_key()
    old = keys.wrap(region, data_key)
    new_kek_id = keys.rotate(region)
    v2 = vault.latest()
    assert new_kek_id == vault.kek_id(v2) != old.kek_id
    [rotate] = vault.sent("POST", "/keys/corridor-kek/rotate")
    assert rotate.query["api-version"] == ["7.5"]
    assert keys.current_kek_id(region) == new_kek_id
    assert keys.unwrap(region, old) == data_key
    assert keys.wrap(region, data_key).kek_id == new_kek_id

    moved = keys.rewrap(region, old)
    assert moved.kek_id == new_kek_id
    assert v2.private.decrypt(moved.ciphertext, oaep_256) == data_key
    assert keys.unwrap(region, moved) == data_key


def test_rewrap_of_the_current_version_is_unchanged(vault: FakeKeyVault,
                                                    keys: AzureKeyVaultKeys) -> None:
    wrapped = keys.wrap(region, new_data_key())
    assert keys.rewrap(region, wrapped) is wrapped
    assert not [r for r in vault.requests if r.path.endswith("/unwrapkey")]


def test_current_kek_id_is_cached_and_refreshed_by_rotate(vault: FakeKeyVault) -> None:
    keys, elsewhere = provider(vault), provider(vault)
    first = keys.current_kek_id(region)
    second = elsewhere.rotate(region)
    assert keys.current_kek_id(region) == first
    third = keys.rotate(region)
    assert keys.current_kek_id(region) == third == vault.kek_id(vault.latest())
    assert len({first, second, third}) == 3
    reads = vault.sent("GET", "/keys/corridor-kek/")
    assert len([r for r in reads if "Authorization" in r.headers]) == 1  # and the challenge
    uncached = provider(vault, cache_s=0.0)
    elsewhere.rotate(region)
    assert uncached.current_kek_id(region) == vault.kek_id(vault.latest())
    elsewhere.rotate(region)
    assert uncached.current_kek_id(region) == vault.kek_id(vault.latest())


def test_a_disabled_or_expired_current_version_does_not_wrap(vault: FakeKeyVault) -> None:
    """The SDK wraps with the public key here, where Key Vault could not refuse it."""
    data_key = new_data_key()
    wrapped = provider(vault).wrap(region, data_key)
    vault.latest().expires = int(time.time()) - 60
    with pytest.raises(KeyUnavailable, match="disabled, not yet valid or expired"):
        provider(vault).wrap(region, data_key)
    assert provider(vault).unwrap(region, wrapped) == data_key  # Key Vault unwraps expired
    vault.latest().expires = None
    vault.latest().enabled = False
    with pytest.raises(KeyUnavailable, match="disabled, not yet valid or expired"):
        provider(vault).wrap(region, data_key)


def test_a_key_that_is_not_rsa_is_refused(vault: FakeKeyVault) -> None:
    vault.keys["symmetric"] = []
    vault.rotate("symmetric", kty="oct-HSM")
    with pytest.raises(KeyUnavailable, match="is a oct-HSM key"):
        provider(vault, name="symmetric").wrap(region, new_data_key())


def test_key_vault_wraps_when_the_version_cannot_be_read(vault: FakeKeyVault,
                                                         keys: AzureKeyVaultKeys) -> None:
    """Without keys/get on the version, the SDK sends the data key to wrapkey instead."""
    vault.versions_readable = False
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    version = vault.latest().version
    [wrap] = vault.sent("POST", f"/keys/corridor-kek/{version}/wrapkey")
    assert wrap.body == {"alg": "RSA-OAEP-256", "value": _b64url(data_key)}
    assert keys.unwrap(region, wrapped) == data_key


@pytest.mark.parametrize("kek_id", [
    "azure-keyvault:{other}/keys/corridor-kek/{version}",
    "azure-keyvault:{host}/keys/corridor-kek-us-east/{version}",
    "azure-keyvault:{host}/keys/corridor-kek/",
    "azure-keyvault:{host}/keys/corridor-kek/{version}/",
    "azure-keyvault:{host}/keys/corridor-kek/{version}x",
    "azure-keyvault:{host}/keys/corridor-kek/{upper}",
    "azure-keyvault:{host}/keys/corridor-kek/../corridor-kek-us-east/{version}",
    "azure-keyvault:{host}/keys/corridor-kek/{version}?api-version=7.5",
    "azure-keyvault:{host}/keys/corridor-kek",
    "vault-transit:transit/corridor-kek:v1",
    "local:eu-central:v1",
])
def test_kek_id_must_name_this_vault_and_key(vault: FakeKeyVault, keys: AzureKeyVaultKeys,
                                             kek_id: str) -> None:
    wrapped = keys.wrap(region, new_data_key())
    version = vault.latest().version
    relabelled = replace(wrapped, kek_id=kek_id.format(
        host=vault.host, other="corridor-other.vault.azure.net", version=version,
        upper=version.upper()))
    for call in (keys.unwrap, keys.rewrap):
        with pytest.raises(KeyUnavailable, match="is not a version of"):
            call(region, relabelled)
    assert not [r for r in vault.requests if r.path.endswith("/unwrapkey")]


@pytest.mark.parametrize("spec", [
    "",
    "corridor-eu.vault.azure.net/keys/corridor-kek",
    "http://corridor-eu.vault.azure.net/keys/corridor-kek",
    "https://corridor-eu.vault.azure.net:8443/keys/corridor-kek",
    "https://user@corridor-eu.vault.azure.net/keys/corridor-kek",
    "https://corridor-eu.vault.azure.net.example.com/keys/corridor-kek",
    "https://corridor-eu.example.com/keys/corridor-kek",
    "https://vault.azure.net/keys/corridor-kek",
    "https://a.vault.azure.net/keys/corridor-kek",
    "https://corridor--eu.vault.azure.net/keys/corridor-kek",
    "https://1corridor.vault.azure.net/keys/corridor-kek",
    "https://corridor-eu-.vault.azure.net/keys/corridor-kek",
    "https://corridor-eu.vault.azure.net",
    "https://corridor-eu.vault.azure.net/",
    "https://corridor-eu.vault.azure.net/keys/",
    "https://corridor-eu.vault.azure.net/keys/corridor-kek/",
    "https://corridor-eu.vault.azure.net/keys/corridor-kek/78deebed173b48e48f55abf87ed4cf71",
    "https://corridor-eu.vault.azure.net/secrets/corridor-kek",
    "https://corridor-eu.vault.azure.net/keys/corridor_kek",
    "https://corridor-eu.vault.azure.net/keys/corridor-kek?api-version=7.5",
    "https://corridor-eu.vault.azure.net/keys/corridor-kek#x",
    "https://corridor-eu.vault.azure.net/keys/corridor kek",
    "https://corridor-eu.vault.azure.net/keys/corridor-kek\n",
])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"region eu-central: azure-keyvault key .* expected "
                                         r"https://<vault>\.vault\.azure\.net/keys/<key name>"):
        AzureKeyVaultKeys.from_spec(region, spec, credential=FakeCredential())


@pytest.mark.parametrize(("spec", "host"), [
    ("https://corridor-eu.vault.azure.net/keys/corridor-kek", "corridor-eu.vault.azure.net"),
    ("https://Corridor-EU.Vault.Azure.Net/keys/corridor-kek", "corridor-eu.vault.azure.net"),
    ("https://corridor-cn.vault.azure.cn/keys/corridor-kek", "corridor-cn.vault.azure.cn"),
    ("https://corridor-gov.vault.usgovcloudapi.net/keys/corridor-kek",
     "corridor-gov.vault.usgovcloudapi.net"),
    ("https://corridor-hsm.managedhsm.azure.net/keys/corridor-kek",
     "corridor-hsm.managedhsm.azure.net"),
])
def test_good_specs(spec: str, host: str) -> None:
    assert parse_spec(region, spec) == (host, "corridor-kek")


def test_wrong_length_data_keys_are_refused(vault: FakeKeyVault,
                                            keys: AzureKeyVaultKeys) -> None:
    for short in (b"", b"k" * 16, b"k" * 33):
        with pytest.raises(ValueError, match="a data key is 32 bytes"):
            keys.wrap(region, short)
    assert vault.requests == []
    v1 = vault.latest()
    not_a_data_key = WrappedKey(vault.kek_id(v1),
                                v1.private.public_key().encrypt(b"k" * 16, oaep_256))
    with pytest.raises(KeyUnavailable, match="does not hold a 32-byte data key"):
        keys.unwrap(region, not_a_data_key)


def test_unknown_key_is_unavailable(vault: FakeKeyVault) -> None:
    with pytest.raises(KeyUnavailable, match="HTTP 404 KeyNotFound"):
        provider(vault, name="corridor-nowhere").wrap(region, new_data_key())


def test_a_challenge_for_another_resource_gets_no_token(vault: FakeKeyVault) -> None:
    """A host answering for another resource (say, another cloud's) is given no token."""
    vault.resource = "https://vault.example.net"
    credential = FakeCredential()
    with pytest.raises(KeyUnavailable, match="does not match the requested domain"):
        provider(vault, credential).current_kek_id(region)
    assert credential.asked == []
    assert all("Authorization" not in r.headers for r in vault.requests)


def test_key_vault_down_or_slow_is_unavailable(vault: FakeKeyVault,
                                               hosts: dict[str, int]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    down = provider(vault, retry_total=0, connection_timeout=1)
    hosts[vault.host] = closed_port
    with pytest.raises(KeyUnavailable, match="ServiceRequestError"):
        down.current_kek_id(region)
    hosts[vault.host] = vault.port
    # Far longer than the timeout: had the timeout not applied, the call would succeed.
    vault.delay_s = 2.0
    slow = provider(vault, retry_total=0, read_timeout=0.1)
    with pytest.raises(KeyUnavailable, match="Read timed out"):
        slow.current_kek_id(region)


def test_from_spec_uses_default_azure_credential(vault: FakeKeyVault,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    credential = FakeCredential()
    monkeypatch.setattr(azure_keys, "DefaultAzureCredential", lambda: credential)
    keys = AzureKeyVaultKeys.from_spec(region, f"{vault.url}/keys/{key_name}")
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    assert wrapped.kek_id == vault.kek_id(vault.latest())
    assert keys.unwrap(region, wrapped) == data_key
    assert credential.asked
    assert {tuple(r.query["api-version"]) for r in vault.requests} == {("7.5",)}


def test_from_spec_with_a_credential_and_a_managed_hsm(
        serve: Callable[..., FakeKeyVault]) -> None:
    hsm = serve("managedhsm.azure.net", hsm_resource)
    credential = FakeCredential()
    keys = AzureKeyVaultKeys.from_spec(region, f"{hsm.url}/keys/{key_name}",
                                       credential=credential)
    data_key = new_data_key()
    wrapped = keys.wrap(region, data_key)
    assert wrapped.kek_id.startswith(f"azure-keyvault:{hsm.host}/keys/corridor-kek/")
    assert keys.unwrap(region, wrapped) == data_key
    assert credential.asked[0] == (("https://managedhsm.azure.net/.default",), tenant)
