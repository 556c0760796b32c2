"""Webhook delivery against a real HTTP server on 127.0.0.1, and the SSRF guard in front of it.

The server is a few lines on ``asyncio.start_server`` in the test's own event loop, so each test
sets exactly what the partner answers (status, body, delay, TLS certificate). Names under the
reserved ``.test`` domain are answered by a fake resolver, which also counts the lookups: the
delivery must connect to the address it checked, not ask DNS again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from workers import webhook_delivery as wd
from workers.webhook_delivery import UnsafeDestination, deliver, is_forbidden_ip, resolve_safe

partner_host = "hooks.partner.test"
event = b'{"id":"evt_1","type":"payout.completed","createdAt":"2026-01-01T00:00:00Z","data":{}}'
signed = {"Corridor-Signature": "t=1,v1=00"}


@dataclass(frozen=True)
class Received:
    request_line: str
    headers: dict[str, str]
    body: bytes


Respond = Callable[[Received], Awaitable[bytes]]


def http_response(status: int, body: bytes = b"", **headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def answer(status: int, body: bytes = b"", **headers: str) -> Respond:
    async def respond(_: Received) -> bytes:
        return http_response(status, body, **headers)
    return respond


@asynccontextmanager
async def serve(respond: Respond, tls: ssl.SSLContext | None = None,
                ) -> AsyncIterator[tuple[int, list[Received]]]:
    """(port, requests received) of a one-answer-per-connection HTTP server on 127.0.0.1."""
    received: list[Received] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in head[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received.append(Received(head[0], headers, body))
            writer.write(await respond(received[-1]))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client hung up: timed out, or had read enough
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await server.wait_closed()


def fake_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names under ``.test`` resolve to 127.0.0.1; returns the names asked, in order."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> Any:
        if not str(host).endswith(".test"):
            return await real(host, port, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


# the address check

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255", "0.1.2.3",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00::1", "fd00:ec2::254", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
    "2002:a00:1::", "2001:db8::1",
])
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [
    "93.184.215.14", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1",
    "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "[::1]",
                                  "::ffff:127.0.0.1", "localhost"])
async def test_resolve_safe_refuses_private_hosts(host: str) -> None:
    with pytest.raises(UnsafeDestination):
        await resolve_safe(host, 443, allow_private=False)


async def test_one_private_address_among_public_ones_refuses_the_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in ("8.8.8.8", "10.0.0.1")]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    with pytest.raises(UnsafeDestination, match=r"10\.0\.0\.1"):
        await resolve_safe("mixed.example", 443, allow_private=False)


async def test_allow_private_opens_localhost_but_never_the_metadata_service() -> None:
    assert await resolve_safe("127.0.0.1", 80, allow_private=True) == ["127.0.0.1"]
    for host in ("169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"):
        with pytest.raises(UnsafeDestination):
            await resolve_safe(host, 80, allow_private=True)


# deliveries

async def test_a_delivery_posts_the_event_and_reports_success() -> None:
    async with serve(answer(200, b"thanks")) as (port, received):
        result = await deliver(f"http://127.0.0.1:{port}/hooks", event, signed,
                               allow_private=True)
    assert (result.ok, result.status_code, result.error, result.body_excerpt) == (
        True, 200, None, "thanks")
    assert 0 <= result.duration_ms < 5000
    [request] = received
    assert request.request_line == "POST /hooks HTTP/1.1"
    assert request.body == event
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Corridor-Webhooks/1"
    assert request.headers["corridor-signature"] == "t=1,v1=00"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/", "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/", "http://0.0.0.0:{port}/",
])
async def test_private_destinations_are_refused_without_a_request(url: str) -> None:
    async with serve(answer(200)) as (port, received):
        result = await deliver(url.format(port=port), event, signed, allow_private=False)
    assert not result.ok
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("unsafe destination: ")
    assert received == []


async def test_the_checked_address_is_used_with_the_partners_host_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dns = fake_dns(monkeypatch)
    async with serve(answer(204)) as (port, received):
        result = await deliver(f"http://{partner_host}:{port}/h", event, signed,
                               allow_private=True)
    assert result.ok
    assert result.status_code == 204
    assert dns == [partner_host], "resolved once, then connected to that address"
    assert received[0].headers["host"] == f"{partner_host}:{port}"


async def test_a_redirect_is_not_followed() -> None:
    async with serve(answer(302, Location="http://169.254.169.254/")) as (port, received):
        result = await deliver(f"http://127.0.0.1:{port}/", event, signed, allow_private=True)
    assert (result.ok, result.status_code, result.error) == (False, 302, "redirect not followed")
    assert len(received) == 1


async def test_a_server_error_is_a_failed_delivery() -> None:
    async with serve(answer(500, b"boom")) as (port, _):
        result = await deliver(f"http://127.0.0.1:{port}/", event, signed, allow_private=True)
    assert (result.ok, result.status_code, result.body_excerpt) == (False, 500, "boom")
    assert result.error == "status 500"


async def test_a_huge_response_is_cut_at_the_cap() -> None:
    huge = b"\xff" + b"a" * (8 * 1024 * 1024)
    async with serve(answer(200, huge)) as (port, _):
        result = await deliver(f"http://127.0.0.1:{port}/", event, signed, allow_private=True)
    assert result.ok
    assert len(result.body_excerpt.encode()) <= wd.response_bytes_max + 2  # U+FFFD for \xff
    assert result.body_excerpt == "\ufffd" + "a" * (wd.response_bytes_max - 1)


async def test_a_server_slower_than_the_read_timeout_fails_on_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(_: Received) -> bytes:
        await asyncio.sleep(30)
        return http_response(200)

    monkeypatch.setattr(wd, "read_timeout_s", 0.2)
    async with serve(slow) as (port, _):  # it would answer 200 after 30 s
        result = await deliver(f"http://127.0.0.1:{port}/", event, signed, allow_private=True)
    assert not result.ok
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("timeout")


async def test_a_closed_port_is_a_failed_delivery() -> None:
    async with serve(answer(200)) as (port, _):
        pass
    result = await deliver(f"http://127.0.0.1:{port}/", event, signed, allow_private=True)
    assert not result.ok
    assert result.status_code is None
    assert result.error


async def test_an_unresolvable_host_is_a_failed_delivery() -> None:
    result = await deliver("http://no-such-host.invalid/", event, signed, allow_private=False)
    assert not result.ok
    assert result.error is not None


# TLS to the checked address, verified against the partner's host name

def certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def tls_server(cert_file: Path, key_file: Path, sni: list[str | None]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.sni_callback = lambda _sock, name, _ctx: sni.append(name)  # type: ignore[assignment,func-returns-value]
    return ctx


@pytest.mark.parametrize(("cert_name", "trusted", "ok"), [
    (partner_host, True, True),
    ("someone-else.test", True, False),   # the certificate names another host
    (partner_host, False, False),         # no trusted authority signed it
])
async def test_tls_goes_to_the_checked_address_with_the_partners_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cert_name: str, trusted: bool, ok: bool) -> None:
    dns = fake_dns(monkeypatch)
    cert_file, key_file = certificate(tmp_path, cert_name)
    if trusted:
        monkeypatch.setattr(certifi, "where", lambda: str(cert_file))
    sni: list[str | None] = []
    async with serve(answer(200, b"ok"), tls_server(cert_file, key_file, sni)) as (port, rcvd):
        result = await deliver(f"https://{partner_host}:{port}/h", event, signed,
                               allow_private=True)
    assert sni == [partner_host]
    assert dns == [partner_host]
    assert result.ok is ok
    if ok:
        assert rcvd[0].headers["host"] == f"{partner_host}:{port}"
    else:
        assert rcvd == []
        assert result.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in result.error
