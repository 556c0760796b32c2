"""One webhook POST to a partner's URL, guarded against server-side request forgery.

The URL is the partner's, so it may point anywhere: at our own network, at the cloud metadata
service, or at a name that resolves to a public address when checked and a private one when
used (DNS rebinding). So the host is resolved once, every address it resolves to is checked,
and the connection goes to the checked address, with the ``Host`` header and TLS SNI (and so
certificate verification) still naming the partner's host. Redirects are not followed, since a
redirect could lead anywhere, and only a bounded excerpt of the response is read.

``deliver`` never raises for the partner's failures: they come back as a ``DeliveryResult``
for the retry schedule in ``payments.webhooks``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

import httpx
from opentelemetry.trace import SpanKind

from regions import telemetry

user_agent = "Corridor-Webhooks/1"
response_bytes_max = 16 * 1024
resolve_timeout_s = 3.0
connect_timeout_s = 3.0
read_timeout_s = 10.0
write_timeout_s = 10.0
# The read timeout is per read; this bounds a server that trickles its answer byte by byte.
delivery_timeout_s = 30.0

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_forbidden_networks = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "::/128", "::1/128", "fc00::/7", "fe80::/10",
))
# Metadata services hand out cloud credentials; no development endpoint lives there either.
_metadata_addresses = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254",
))
_nat64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeDestination(Exception):
    """The URL's host is, or resolves to, an address a webhook must not reach."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status_code: int | None
    ok: bool
    error: str | None
    body_excerpt: str
    duration_ms: int


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64): the one finally reached."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _nat64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def is_forbidden_ip(ip: IPAddress) -> bool:
    """Anything but a globally routable unicast address is forbidden.

    The explicit networks repeat what ``is_global`` says today, so that a change to the
    standard library's tables cannot open our own network by accident.
    """
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return is_forbidden_ip(inner)
    return (not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback
            or ip.is_link_local or ip.is_unspecified or ip.is_private
            or any(ip in net for net in _forbidden_networks))


def _is_metadata(ip: IPAddress) -> bool:
    inner = _embedded_ipv4(ip)
    return (ip if inner is None else inner) in _metadata_addresses


def _check(host: str, ip: IPAddress, allow_private: bool) -> None:
    if _is_metadata(ip) or (not allow_private and is_forbidden_ip(ip)):
        named = str(ip) if host.strip("[]") == str(ip) else f"{host} ({ip})"
        raise UnsafeDestination(f"{named} is not an address webhooks may reach")


async def resolve_safe(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, each checked; UnsafeDestination if any one is forbidden.

    One bad address refuses the host, since the connection could use any of them.
    ``allow_private`` is for development deployments with receivers on localhost; it is never
    for partner-facing environments, sandbox included, and never opens the metadata service.
    """
    try:
        literal = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        literal = None
    if literal is not None:
        _check(host, literal, allow_private)
        return [str(literal)]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(resolve_timeout_s):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        _check(host, ip, allow_private)
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise OSError(f"{host} resolved to no address")
    return addresses


async def _post(url: httpx.URL, body: bytes, headers: Mapping[str, str],
                allow_private: bool) -> tuple[int, bytes]:
    """(status, response excerpt) of one POST to the checked address of ``url``'s host."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    address = (await resolve_safe(host, port, allow_private=allow_private))[0]
    target = url.copy_with(host=address)
    # Ours last, so a caller's header cannot replace them; identity, because a compressed
    # answer could inflate far past the excerpt's bound in one decoded chunk.
    sent = {**headers, "Host": url.netloc.decode("ascii"), "Content-Type": "application/json",
            "User-Agent": user_agent, "Accept-Encoding": "identity"}
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s,
                            write=write_timeout_s, pool=connect_timeout_s)
    # A client per delivery: a pooled connection is keyed by address, and must not be reused
    # for another host (with another SNI) on the same address. No proxies from the
    # environment either: a proxy would resolve the name again, after our check.
    client = httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False)
    async with client, client.stream("POST", target, content=body, headers=sent,
                                     extensions=extensions) as response:
        excerpt = bytearray()
        async for chunk in response.aiter_raw():
            excerpt += chunk[: response_bytes_max - len(excerpt)]
            if len(excerpt) >= response_bytes_max:
                break
        return response.status_code, bytes(excerpt)


def _outcome(status: int) -> tuple[bool, str | None]:
    if 200 <= status < 300:
        return True, None
    if 300 <= status < 400:
        return False, "redirect not followed"
    return False, f"status {status}"


async def deliver(url: str, body: bytes, headers: Mapping[str, str], *,
                  allow_private: bool) -> DeliveryResult:
    """POST ``body`` to ``url``; ok only for a 2xx. Never raises for the destination's faults."""
    started = time.monotonic()

    def failed(error: str) -> DeliveryResult:
        return DeliveryResult(None, False, error, "", _elapsed_ms(started))

    try:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            return failed(f"invalid url: {url!r} is not an absolute http(s) URL")
        with telemetry.span("webhook POST", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST",
                "server.address": parsed.host}) as span:
            carried = telemetry.current_context()  # the receiver may join the trace
            sent = {**headers, "traceparent": carried} if carried else headers
            async with asyncio.timeout(delivery_timeout_s):
                status, excerpt = await _post(parsed, body, sent, allow_private)
            span.set_attribute("http.response.status_code", status)
    except UnsafeDestination as exc:
        return failed(f"unsafe destination: {exc}")
    except httpx.InvalidURL as exc:
        return failed(f"invalid url: {exc}")
    except (httpx.TimeoutException, TimeoutError) as exc:
        return failed(f"timeout: {str(exc) or type(exc).__name__}")
    except httpx.HTTPError as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    except OSError as exc:  # name resolution (socket.gaierror) and other socket failures
        return failed(f"connection: {exc}")
    ok, error = _outcome(status)
    text = excerpt.decode("utf-8", errors="replace")
    return DeliveryResult(status, ok, error, text, _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
