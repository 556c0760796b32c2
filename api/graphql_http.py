"""The GraphQL HTTP endpoint: Strawberry's Litestar controller, tightened for Corridor to the
GraphQL-over-HTTP specification (docs/graphql-over-http.md; the graphql-http audit checks it).

- The answer's media type follows the ``Accept`` header: ``application/graphql-response+json``
  when the client names it at least as high as ``application/json``, else ``application/json``
  (also without an ``Accept`` header, or with only wildcards); 406 when it accepts neither.
- With ``application/graphql-response+json``, a request that fails before execution (parse,
  validation, variable coercion, no operation to run) is a 400 without a ``data`` entry. With
  ``application/json`` it stays a 200 with ``data: null``, as legacy clients expect.
- A mutation sent with GET is 405 Method Not Allowed.
- A request the endpoint cannot take at all (a body that is not a JSON object, a missing query,
  an unsupported content type, a body over the size limit) is a 4xx whose body is a GraphQL
  response too: ``errors`` only, with ``extensions.code`` (``BAD_REQUEST``,
  ``METHOD_NOT_ALLOWED``, ``NOT_ACCEPTABLE``, ``PAYLOAD_TOO_LARGE``). Every error carries a
  code, parse and validation errors included.
- WebSockets are refused (1008): the schema has no subscriptions, and a socket would be a
  second way in that runs mutations outside the HTTP rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from cross_web import HTTPException, LitestarRequestAdapter
from litestar import Controller, MediaType, Request, Response, WebSocket, get, post, websocket
from litestar.background_tasks import BackgroundTasks
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST, WS_1008_POLICY_VIOLATION
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.litestar import make_graphql_controller
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from schema.build import operation_unresolved_code
from schema.errors import internal_error_code

parse_error_code = "GRAPHQL_PARSE_FAILED"
validation_error_code = "GRAPHQL_VALIDATION_FAILED"
# Codes of the errors raised before execution: GraphQL over HTTP calls them request errors.
request_error_codes = frozenset({parse_error_code, validation_error_code,
                                 operation_unresolved_code})
graphql_response_json = "application/graphql-response+json"
negotiation_state_key = "corridor.graphql"
methods_allowed = "GET, POST"
# extensions.code of a request refused before GraphQL saw it, by HTTP status.
refusal_codes = {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE",
                 413: "PAYLOAD_TOO_LARGE"}


def error_code(error: dict[str, Any]) -> str:
    """The code of an error GraphQL itself raised (one of ours carries its own)."""
    if "path" in error:  # only execution sets a path: a field broke its type's contract
        return internal_error_code
    message = str(error.get("message", ""))
    return parse_error_code if message.startswith("Syntax Error") else validation_error_code


def accepted_ranges(accept: str) -> dict[str, float]:
    """``Accept`` as {media range: quality}; a range with an unreadable quality is left out."""
    ranges: dict[str, float] = {}
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if media_range and 0.0 <= quality <= 1.0:
            ranges[media_range.lower()] = quality
    return ranges


def quality(ranges: dict[str, float], media_type: str) -> float:
    """The quality of the most specific range that covers ``media_type`` (RFC 9110 12.5.1)."""
    kind = media_type.split("/")[0]
    for media_range in (media_type, f"{kind}/*", "*/*"):
        if media_range in ranges:
            return ranges[media_range]
    return 0.0


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts none that we serve."""
    if not accept or not accept.strip():
        return MediaType.JSON
    ranges = accepted_ranges(accept)
    graphql_q, json_q = quality(ranges, graphql_response_json), quality(ranges, MediaType.JSON)
    if graphql_response_json in ranges and graphql_q > 0 and graphql_q >= json_q:
        return graphql_response_json
    if json_q > 0:
        return MediaType.JSON
    return graphql_response_json if graphql_q > 0 else None


def is_request_error(data: object, errors: list[dict[str, Any]]) -> bool:
    """Whether the request failed before execution: nothing ran, so there is no data."""
    return data is None and bool(errors) and all(
        "path" not in e and e["extensions"]["code"] in request_error_codes for e in errors)


@dataclass
class Negotiation:
    """What the endpoint decided about one request, kept in the request's scope state."""

    media_type: str | None
    request_error: bool = False


def negotiation(request: Request[Any, Any, Any]) -> Negotiation:
    found: Negotiation = request.scope["state"][negotiation_state_key]
    return found


@websocket("/graphql")
async def refuse_websocket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.close(code=WS_1008_POLICY_VIOLATION,
                       reason="Corridor serves GraphQL over HTTP POST and GET only")


def graphql_controller(
    schema: BaseSchema, context_getter: Callable[..., Any], *, ide: bool
) -> type[Controller]:
    base: Any = make_graphql_controller(
        schema, path="/graphql", context_getter=context_getter,
        graphql_ide="graphiql" if ide else None, allow_queries_via_get=True,
        subscription_protocols=())

    class GraphQLEndpoint(base):  # type: ignore[misc]
        websocket_endpoint = None  # refuse_websocket answers on this path instead

        # Strawberry's handlers take the context, root value and sub-response as Litestar
        # dependencies: three resolved in a task group of their own, one of them in a worker
        # thread, on every request (py-spy: 7% of createTransfer's API CPU). These take the
        # request only and build the same context inline.
        @post(status_code=HTTP_200_OK)
        async def handle_http_post(self, request: Request[Any, Any, Any]) -> Response[Any]:
            return await self.answer(request)

        @get()
        async def handle_http_get(self, request: Request[Any, Any, Any]) -> Response[Any]:
            return await self.answer(request)

        async def answer(self, request: Request[Any, Any, Any]) -> Response[Any]:
            sub_response: Response[Any] = Response({}, background=BackgroundTasks([]))
            context = await context_getter(request)
            context.request, context.response = request, sub_response
            self.temporal_response = sub_response  # read by get_sub_response before any await
            return await self.execute_request(request, context=context, root_value=None)

        async def execute_request(
            self, request: Request[Any, Any, Any], context: Any, root_value: Any
        ) -> Response[Any]:
            chosen = Negotiation(accepted_media_type(request))
            request.scope["state"][negotiation_state_key] = chosen
            try:
                response: Response[Any] = await self.run(request, context=context,
                                                         root_value=root_value)
            except HTTPException as exc:
                return self.refusal(exc.status_code, exc.reason, chosen.media_type)
            except LitestarHTTPException as exc:  # reading the body: 413 over the size limit
                return self.refusal(exc.status_code, exc.detail, chosen.media_type)
            if response.media_type == MediaType.HTML:  # the IDE page (development only)
                return response
            assert chosen.media_type is not None  # parse_http_body refused the request
            response.media_type = media_type_header(chosen.media_type)
            response.headers["vary"] = "Accept"
            if chosen.request_error:
                response.status_code = HTTP_400_BAD_REQUEST
            return response

        def refusal(self, status: int, reason: str, media_type: str | None) -> Response[Any]:
            code = refusal_codes.get(status) or HTTPStatus(status).name
            allow = ({"allow": methods_allowed} if status == HTTPStatus.METHOD_NOT_ALLOWED
                     else {})
            return error_response(status, reason, code, media_type, allow)

        def should_render_graphql_ide(self, request: LitestarRequestAdapter) -> bool:
            # Without the IDE, a GET without a query is the request error it is (400).
            return self.graphql_ide is not None and bool(
                super().should_render_graphql_ide(request))

        async def parse_http_body(
            self, request: LitestarRequestAdapter
        ) -> GraphQLRequestData | list[GraphQLRequestData]:
            # Reached only past the IDE page, which answers text/html on its own.
            if negotiation(request.request).media_type is None:
                raise HTTPException(406, "Accept application/graphql-response+json or "
                                         "application/json: Corridor answers in those only")
            parsed: GraphQLRequestData | list[GraphQLRequestData] = (
                await super().parse_http_body(request))
            return parsed

        def parse_json(self, data: str | bytes) -> object:
            parsed = super().parse_json(data)
            if not isinstance(parsed, dict | list):
                raise HTTPException(400, "Expected a JSON object of GraphQL request "
                                         "parameters (query, operationName, variables, "
                                         "extensions)")
            return parsed

        async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().execute_single(*args, **kwargs)
            except HTTPException as exc:
                if isinstance(exc.__cause__, InvalidOperationTypeError):
                    raise HTTPException(405, exc.reason) from exc
                raise

        def decode_json(self, data: str | bytes) -> object:
            try:
                return super().decode_json(data)
            except RecursionError as exc:  # a body nested deeper than the parser recurses
                raise HTTPException(400, "Unable to parse request body as JSON: it nests "
                                         "too deeply") from exc

        async def process_result(
            self, request: Request[Any, Any, Any], result: ExecutionResult
        ) -> GraphQLHTTPResponse:
            body: GraphQLHTTPResponse = await super().process_result(request, result)
            errors: list[dict[str, Any]] = []
            for error in body.get("errors") or []:
                assert isinstance(error, dict)
                error.setdefault("extensions", {}).setdefault("code", error_code(error))
                errors.append(error)
            chosen = negotiation(request)
            if (chosen.media_type == graphql_response_json
                    and is_request_error(body.get("data"), errors)):
                del body["data"]
                chosen.request_error = True
            return body

    return GraphQLEndpoint


def accepted_media_type(request: Request[Any, Any, Any]) -> str | None:
    """The media type to answer ``request`` in (None: none it accepts); every ``Accept`` line
    counts."""
    return response_media_type(", ".join(request.headers.getall("accept", [])))


def error_response(status: int, message: str, code: str, media_type: str | None,
                   headers: dict[str, str] | None = None) -> Response[Any]:
    """A request refused with one error, as a GraphQL response (``errors`` only, with its
    code), in ``media_type``, or application/json when the client accepts nothing we serve
    (GraphQL over HTTP allows that default)."""
    return Response({"errors": [{"message": message, "extensions": {"code": code}}]},
                    status_code=status, headers={"vary": "Accept", **(headers or {})},
                    media_type=media_type_header(media_type or MediaType.JSON))


def media_type_header(media_type: str) -> str:
    """``application/json`` is UTF-8 by definition; the GraphQL type says its charset."""
    return f"{media_type}; charset=utf-8" if media_type == graphql_response_json else media_type
