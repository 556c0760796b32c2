"""The GraphQL HTTP endpoint: Strawberry's Litestar controller, tightened for Corridor.

- WebSockets are refused (1008): the schema has no subscriptions, and a socket would be a
  second way in that runs mutations outside the HTTP rules.
- A mutation sent with GET is 405 Method Not Allowed, as GraphQL over HTTP requires.
- Every top-level error carries ``extensions.code``, parse and validation errors included.
- A JSON body nested too deeply to parse is a 400, like any other unparsable body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cross_web import HTTPException
from litestar import Controller, Request, WebSocket, websocket
from litestar.status_codes import WS_1008_POLICY_VIOLATION
from strawberry.http import GraphQLHTTPResponse
from strawberry.litestar import make_graphql_controller
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

parse_error_code = "GRAPHQL_PARSE_FAILED"
validation_error_code = "GRAPHQL_VALIDATION_FAILED"


def error_code(message: str) -> str:
    return parse_error_code if message.startswith("Syntax Error") else validation_error_code


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
            for error in body.get("errors") or []:
                assert isinstance(error, dict)
                extensions = error.setdefault("extensions", {})
                extensions.setdefault("code", error_code(str(error.get("message", ""))))
            return body

    return GraphQLEndpoint
