"""The Litestar application factory: GraphQL at /graphql, health at /healthz and /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text

from api.auth import KeyCache, Unauthenticated, authenticate, bearer_key
from api.graphql_http import graphql_controller, refuse_websocket
from api.settings import Env, Settings, request_body_bytes_max
from regions.keyring import provider_from_settings
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.sealing import Sealer
from regions.virtual_accounts import directory_key
from schema.build import build_schema
from schema.context import Context


async def graphql_context(request: Request[Any, Any, Any]) -> Context:
    state = request.app.state
    header = request.headers.get("authorization")
    if header is None and request.method == "GET" and "query" not in request.query_params:
        return Context(router=state.router, principal=None)
    who = await authenticate(state.router, state.settings.pepper, state.key_cache,
                             bearer_key(header))
    await state.policies.refresh(state.router)
    return Context(router=state.router, principal=who, sealer=state.sealer,
                   policies=state.policies, directory_key=state.directory_key)


def unauthenticated(_: Request[Any, Any, Any], exc: Unauthenticated) -> Response[Any]:
    return Response(
        {"errors": [{"message": str(exc), "extensions": {"code": Unauthenticated.code}}]},
        status_code=HTTP_401_UNAUTHORIZED, media_type=MediaType.JSON,
        headers={"WWW-Authenticate": 'Bearer realm="corridor"'})


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Ready when the control plane and every cluster answer."""
    router: Router = request.app.state.router
    checks: dict[str, str] = {}
    engines = {"control": router.control} | {
        f"cluster:{c.name}": router.engine_for(router.topology.regions_of(c.name)[0].code)
        for c in router.topology.clusters}
    for name, engine in engines.items():
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return Response({"ready": ready, "checks": checks},
                    status_code=200 if ready else HTTP_503_SERVICE_UNAVAILABLE)


def create_app(settings: Settings, router: Router | None = None) -> Litestar:
    """``router`` may be passed in (tests share one); otherwise the app owns and disposes it."""
    schema = build_schema(production=settings.production)
    sealer = Sealer(provider_from_settings(settings.key_provider, settings.keyring_path,
                                           [r.code for r in settings.topology.regions]))
    controller = graphql_controller(schema, graphql_context,
                                    ide=settings.env is Env.DEVELOPMENT)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = router is None
        app.state.router = router or Router(settings.topology, settings.urls)
        app.state.settings = settings
        app.state.key_cache = KeyCache()
        app.state.sealer = sealer
        app.state.policies = PolicyGate()
        app.state.directory_key = directory_key(settings.pepper)
        try:
            yield
        finally:
            if owned:
                await app.state.router.dispose()

    return Litestar(
        route_handlers=[controller, refuse_websocket, healthz, readyz],
        openapi_config=None,
        exception_handlers={Unauthenticated: unauthenticated},
        lifespan=[lifespan],
        request_max_body_size=request_body_bytes_max,
        debug=False,
    )
