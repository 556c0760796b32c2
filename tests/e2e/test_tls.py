"""`corridor serve --tls-cert --tls-key` in its own process: HTTPS, TLS 1.3 and nothing older."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from regions.router import DatabaseUrls
from regions.topology import Topology
from tests.conftest import corridor_env
from tests.serve import free_port, startup_s_max

request_timeout_s = 10
cli_timeout_s = 60
handshake_attempts = 8
host = "127.0.0.1"


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _self_signed(directory: Path, name: str) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"corridor test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pair = Pair(cert=directory / f"{name}-cert.pem", key=directory / f"{name}-key.pem")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pair


def _client(pair: Pair, *, maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
            ) -> ssl.SSLContext:
    """A verifying client that trusts only the test certificate."""
    context = ssl.create_default_context(cafile=str(pair.cert))
    context.maximum_version = maximum
    return context


def _get(port: int, context: ssl.SSLContext, path: str) -> tuple[int, str | None]:
    """The status and negotiated TLS version of one HTTPS request."""
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=request_timeout_s)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
        assert conn.sock is not None
        version = conn.sock.version()
    finally:
        conn.close()
    return status, version


@pytest.fixture(scope="module")
def server_env(topo: Topology, db_urls: DatabaseUrls) -> dict[str, str]:
    return corridor_env(topo, db_urls)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return _self_signed(tmp_path_factory.mktemp("tls"), "server")


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def tls_port(request: pytest.FixtureRequest, server_env: dict[str, str], pair: Pair,
             ) -> Iterator[int]:
    """A TLS server's port; with two workers uvicorn spawns processes that build the context."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                             "--workers", str(request.param), "--tls-cert", str(pair.cert),
                             "--tls-key", str(pair.key)],
                            env=server_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_s_max
        while True:
            try:
                if _get(port, _client(pair), "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_tls13_client_gets_healthz_over_https(tls_port: int, pair: Pair) -> None:
    context = _client(pair)
    assert context.minimum_version < ssl.TLSVersion.TLSv1_3  # the server, not the client, limits
    assert _get(tls_port, context, "/healthz") == (200, "TLSv1.3")


def test_tls12_client_is_refused_at_the_handshake(tls_port: int, pair: Pair) -> None:
    # asyncio closes the connection without flushing OpenSSL's protocol_version alert, so the
    # client sees an EOF; the server answering TLS 1.3 just after shows it refused, not died.
    # Several attempts, so that with two workers both are likely to take one.
    for _ in range(handshake_attempts):
        with pytest.raises(ssl.SSLError):
            _get(tls_port, _client(pair, maximum=ssl.TLSVersion.TLSv1_2), "/healthz")
    assert _get(tls_port, _client(pair), "/healthz") == (200, "TLSv1.3")


def test_plain_http_to_the_tls_port_gets_no_200(tls_port: int) -> None:
    conn = http.client.HTTPConnection(host, tls_port, timeout=request_timeout_s)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().status != 200
    except (OSError, http.client.HTTPException):
        pass  # the server drops a connection that does not start a TLS handshake
    finally:
        conn.close()


def _serve_fails(env: dict[str, str], *tls_args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", str(free_port()),
                          *tls_args], env=env, capture_output=True, text=True,
                         timeout=cli_timeout_s)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr


@pytest.mark.parametrize(("given", "missing"), [("--tls-cert", "--tls-key"),
                                                ("--tls-key", "--tls-cert")])
def test_one_tls_flag_without_the_other_is_refused(server_env: dict[str, str], pair: Pair,
                                                   given: str, missing: str) -> None:
    path = pair.cert if given == "--tls-cert" else pair.key
    stderr = _serve_fails(server_env, given, str(path))
    assert f"{given} needs {missing}" in stderr


def test_a_key_that_is_not_the_certificates_fails_at_startup(
        server_env: dict[str, str], pair: Pair, tmp_path: Path) -> None:
    other = _self_signed(tmp_path, "other")
    stderr = _serve_fails(server_env, "--tls-cert", str(pair.cert), "--tls-key", str(other.key))
    assert f"--tls-key {other.key} is not the private key of --tls-cert {pair.cert}" in stderr


def test_unreadable_or_unusable_files_fail_at_startup(server_env: dict[str, str], pair: Pair,
                                                      tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    stderr = _serve_fails(server_env, "--tls-cert", str(missing), "--tls-key", str(pair.key))
    assert f"cannot read --tls-cert {missing}: No such file or directory" in stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    stderr = _serve_fails(server_env, "--tls-cert", str(junk), "--tls-key", str(pair.key))
    assert "must be a PEM certificate and its PEM private key" in stderr


def test_an_encrypted_key_is_refused_rather_than_prompted_for(
        server_env: dict[str, str], pair: Pair, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase")))
    stderr = _serve_fails(server_env, "--tls-cert", str(pair.cert), "--tls-key", str(encrypted))
    assert f"--tls-key {encrypted} is encrypted" in stderr
