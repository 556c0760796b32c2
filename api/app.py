"""The Litestar application factory: GraphQL at /graphql, health at /healthz and /readyz.

Every GraphQL request is counted against a rate limit (``api/limits.py``): the key's bucket once
the key is known, else the client address's. Health checks are not counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import MutableScopeHeaders
from litestar.status_codes import (
    HTTP_401_UNAUTHORIZED,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import text

from api import graphql_http
from api.auth import FailedAuthTrail, KeyCache, Unauthenticated, authenticate, bearer_key
from api.graphql_http import accepted_media_type, graphql_controller, refuse_websocket
from api.limits import Limiter, Rate, RateLimited, Verdict, address_of
from api.settings import Env, Settings, request_body_bytes_max
from payments.principal import Principal
from regions import events, telemetry
from regions.coalescer import TransferCoalescer
from regions.keyring import provider_from_settings
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.sealing import Sealer
from regions.txn import Unavailable
from regions.virtual_accounts import directory_key
from schema.build import build_schema
from schema.context import Context
from schema.errors import internal_error_code, unavailable_code, unavailable_messages

verdict_state_key = "corridor.rate_limit"
readiness_timeout_s = 2.0
broker_check_s = 5.0
retry_after_s = 1

_log = logging.getLogger(__name__)


async def graphql_context(request: Request[Any, Any, Any]) -> Context:
    state = request.app.state
    header = request.headers.get("authorization")
    if header is None and request.method == "GET" and "query" not in request.query_params:
        admit(request, state.limiter.addresses.take(client_address(request)))  # the IDE page
        return Context(router=state.router, principal=None)
    who = await caller(request, header)
    await state.policies.refresh(state.router)
    return Context(router=state.router, principal=who, sealer=state.sealer,
                   policies=state.policies, directory_key=state.directory_key,
                   pepper=state.settings.pepper, coalescer=state.coalescer)


async def caller(request: Request[Any, Any, Any], header: str | None) -> Principal:
    """The key's principal, counted against the key; without a valid key, against the address."""
    limiter: Limiter = request.app.state.limiter
    address = client_address(request)
    try:
        who = await principal_of_key(request, address, bearer_key(header))
    except Unauthenticated:
        admit(request, limiter.addresses.take(address))
        await request.app.state.failed_auth.record(request.app.state.router, address, header)
        raise
    admit(request, limiter.keys.take(who.key_id))
    return who


def stamp_origin(app: ASGIApp) -> ASGIApp:
    """Middleware: the client address, for the audit rows of whatever the request does
    (``regions.events.origin``). Set here, around the whole request, because dependencies
    may run in tasks of their own whose context changes do not flow back."""
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        token = events.origin.set(client[0] if client else None)
        try:
            await app(scope, receive, send)
        finally:
            events.origin.reset(token)

    return middleware


def client_address(request: Request[Any, Any, Any]) -> str:
    return address_of(request.client.host if request.client else None)


async def principal_of_key(request: Request[Any, Any, Any], address: str, key: str) -> Principal:
    """Authenticates ``key``, but looks up no new key for an address whose bucket is empty."""
    state = request.app.state
    throttled = state.limiter.addresses.peek(address)
    if not throttled.allowed and not state.key_cache.knows(state.settings.pepper, key):
        admit(request, throttled)
    who: Principal = await authenticate(state.router, state.settings.pepper, state.key_cache,
                                        key)
    return who


def admit(request: Request[Any, Any, Any], verdict: Verdict) -> None:
    """Remember the verdict for the answer's headers; refuse the request when it is over."""
    request.scope["state"][verdict_state_key] = verdict
    if not verdict.allowed:
        raise RateLimited(verdict)


async def rate_limit_headers(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: whatever answers a counted request (a result, a 401, a 400 from
    the GraphQL view, a 429) says where the caller stands. Async, because Litestar runs a
    synchronous hook in a worker thread, twice a request."""
    verdict = scope.get("state", {}).get(verdict_state_key)
    if message["type"] != "http.response.start" or verdict is None:
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in verdict.headers().items():
        headers[name] = value


def error_response(request: Request[Any, Any, Any], status: int, message: str, code: str,
                   headers: dict[str, str] | None = None) -> Response[Any]:
    """A request refused outside the GraphQL executor, answered like the endpoint's own
    refusals, in the media type the client asked for (docs/graphql-over-http.md)."""
    return graphql_http.error_response(status, message, code, accepted_media_type(request),
                                       headers)


def unauthenticated(request: Request[Any, Any, Any], exc: Unauthenticated) -> Response[Any]:
    return error_response(request, HTTP_401_UNAUTHORIZED, str(exc), Unauthenticated.code,
                          {"WWW-Authenticate": 'Bearer realm="corridor"'})


def unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Any]:
    """HTTP 503: the request stopped before GraphQL ran (authenticating the key, refreshing
    the policies) because a database could not be reached. Nothing ran; send it again."""
    _log.warning("%s before the operation ran: %s", type(exc).__name__, exc.__cause__)
    return error_response(request, HTTP_503_SERVICE_UNAVAILABLE,
                          unavailable_messages[type(exc)], unavailable_code,
                          {"Retry-After": str(retry_after_s)})


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """HTTP 500 for a failure outside GraphQL's own error handling, logged with its
    traceback; its text never reaches the caller."""
    _log.error("unexpected error outside the GraphQL executor", exc_info=exc)
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "Unexpected error.",
                          internal_error_code)


def rate_limited(request: Request[Any, Any, Any], exc: RateLimited) -> Response[Any]:
    """HTTP 429; ``rate_limit_headers`` adds Retry-After and the RateLimit headers."""
    return error_response(request, HTTP_429_TOO_MANY_REQUESTS, str(exc), RateLimited.code)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Ready when the control plane and every cluster answer. The body also gives each region's
    status (its cluster's) and the broker's; the broker does not decide readiness, because the
    API writes events to the outbox and never waits for RabbitMQ."""
    router: Router = request.app.state.router
    checks: dict[str, str] = {}
    engines = {"control": router.control} | {
        f"cluster:{c.name}": router.engine_for(router.topology.regions_of(c.name)[0].code)
        for c in router.topology.clusters}
    for name, engine in engines.items():
        try:
            async with asyncio.timeout(readiness_timeout_s), engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
            checks[name] = f"error: {type(exc).__name__}"
    regions = {r.code: checks[f"cluster:{r.cluster}"] for r in router.topology.regions}
    ready = all(v == "ok" for v in checks.values())
    broker = await request.app.state.broker_check.status(request.app.state.settings.amqp_url)
    return Response({"ready": ready, "checks": checks, "regions": regions, "broker": broker},
                    status_code=200 if ready else HTTP_503_SERVICE_UNAVAILABLE)


class BrokerCheck:
    """Whether RabbitMQ accepts a connection, asked at most every ``broker_check_s``."""

    def __init__(self) -> None:
        self._at = float("-inf")
        self._status = "unknown"

    async def status(self, url: str) -> str:
        if time.monotonic() - self._at >= broker_check_s:
            self._at = time.monotonic()
            self._status = await asyncio.to_thread(_broker_status, url)
        return self._status


def _broker_status(url: str) -> str:
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = params.stack_timeout = readiness_timeout_s
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, by kind only
        return f"error: {type(exc).__name__}"


def create_app(settings: Settings, router: Router | None = None) -> Litestar:
    """``router`` may be passed in (tests share one); otherwise the app owns and disposes it."""
    telemetry.setup("corridor-api", settings.env.value)
    if settings.production:
        telemetry.json_logs()
    schema = build_schema(production=settings.production,
                          time_limit_s=settings.request_time_limit_s)
    sealer = Sealer(provider_from_settings(settings.key_provider, settings.keyring_path,
                                           [r.code for r in settings.topology.regions],
                                           settings.key_providers))
    controller = graphql_controller(schema, graphql_context,
                                    ide=settings.env is Env.DEVELOPMENT)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = router is None
        app.state.router = router or Router(settings.topology, settings.urls,
                                            settings.db_pool_size, settings.db_pool_overflow)
        app.state.settings = settings
        app.state.key_cache = KeyCache()
        app.state.failed_auth = FailedAuthTrail()
        app.state.broker_check = BrokerCheck()
        app.state.limiter = Limiter.of(
            Rate(settings.rate_limit_per_s, settings.rate_limit_burst),
            Rate(settings.unauthenticated_rate_limit_per_s,
                 settings.unauthenticated_rate_limit_burst))
        app.state.sealer = sealer
        app.state.policies = PolicyGate()
        app.state.directory_key = directory_key(settings.pepper)
        app.state.coalescer = (TransferCoalescer(
            app.state.router, lambda: app.state.policies, group_max=settings.coalesce_group_max,
            window_s=settings.coalesce_window_s) if settings.coalesce_transfers else None)
        try:
            yield
        finally:
            if app.state.coalescer is not None:
                await app.state.coalescer.close()
            if owned:
                await app.state.router.dispose()

    return Litestar(
        route_handlers=[controller, refuse_websocket, healthz, readyz],
        openapi_config=None,
        exception_handlers={Unauthenticated: unauthenticated, RateLimited: rate_limited,
                            Unavailable: unavailable,
                            HTTP_500_INTERNAL_SERVER_ERROR: internal_error},
        before_send=[rate_limit_headers],
        middleware=[stamp_origin],
        lifespan=[lifespan],
        request_max_body_size=request_body_bytes_max,
        debug=False,
    )
