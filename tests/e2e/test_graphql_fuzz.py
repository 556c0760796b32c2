"""Fuzzing the GraphQL API with schemathesis (issue 13).

Every query and mutation field of ``schema.graphql`` is called with generated documents (valid
ones, and ones schemathesis makes invalid on purpose; a valid one's arguments inline or, half
the time, in variables) against the real app in-process over ASGI, by each role the access
table admits for it, as a funded tenant with one of everything. Arguments are drawn mostly from
that tenant's real ids and plausible values (``tests/fuzz_helpers.py``), so calls reach the
resolvers. Every answer must be a well-formed GraphQL response: no 5xx, no masked internal
error (each one is a bug), no exception, module or SQL text, and a partner never sees another
tenant's objects. Without a valid key every field is a 401. Afterwards the ledgers balance and
the idempotency keys are sane.

The budget is fixed and the runs are derandomized: ``examples_per_field`` examples for every
field, the same ones on every run. A deeper run by hand sets ``CORRIDOR_TEST_FUZZ_EXAMPLES``
(a few hundred per field finds what 40 does not) and draws from a fresh seed each time; a
failure prints the seed that reproduces it, and goes into ``found_by_fuzzing``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import graphql
import httpx
import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from schemathesis import Case as SchemathesisCase
from schemathesis.checks import CheckContext
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.graphql.schemas import GraphQLSchema
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
)
from sqlalchemy import text

from api.app import create_app
from api.settings import Env, rate_limit_burst_max, rate_limit_per_s_max
from payments.principal import Role
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from schema import access
from schema.errors import internal_error_code
from schema.pagination import encode_cursor
from tests.conftest import settings_for_tests
from tests.fuzz_helpers import (
    World,
    assert_invariants,
    build_world,
    close_open_cases,
    fuzz_schema,
    graphql_url,
    lifted,
    schema_path,
)
from tests.fx_helpers import load_rates

deeper = os.environ.get("CORRIDOR_TEST_FUZZ_EXAMPLES")
examples_per_field = int(deeper or "40")
unauthenticated_examples = 60
fuzz_settings = settings(
    derandomize=deeper is None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much])

sdl = graphql.build_schema(schema_path.read_text())
fields = [(root.name, name) for root in (sdl.query_type, sdl.mutation_type) if root is not None
          for name in root.fields]
schema_type_names = frozenset(sdl.type_map)
partner_roles = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_READONLY, Role.AUDITOR})
Case = SchemathesisCase[APIOperation[Any, Any, Any, Any]]
modes = st.sampled_from([GenerationMode.POSITIVE] * 3 + [GenerationMode.NEGATIVE])
"""Mostly valid documents, which reach the resolvers; a quarter made invalid on purpose."""


# --- the app, the world, the schema ----------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_client(topo: Topology, db_urls: DatabaseUrls,
                      router: Router) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with its rate limits at their maximum: the fuzzer is one fast caller, and a
    429 would tell nothing about the field it called."""
    settings_ = replace(settings_for_tests(Env.TEST, topo, db_urls),
                        rate_limit_per_s=rate_limit_per_s_max,
                        rate_limit_burst=rate_limit_burst_max,
                        unauthenticated_rate_limit_per_s=rate_limit_per_s_max,
                        unauthenticated_rate_limit_burst=rate_limit_burst_max)
    async with AsyncTestClient(app=create_app(settings_, router=router)) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(router: Router, topo: Topology, fuzz_client: AsyncTestClient[Any],
                client: AsyncTestClient[Any]) -> AsyncIterator[World]:
    await load_rates(router)
    built = await build_world(router, topo, fuzz_client)
    yield built
    await close_open_cases(router, fuzz_client, built)

    # The fuzzer may approve the stranger officer's change, and policy versions are global:
    # every jurisdiction goes back to its defaults, in the store and in both apps' caches.
    async def body(conn: Any) -> None:
        await conn.execute(text("DELETE FROM policy_versions"))
        await conn.execute(text("DELETE FROM policy_changes"))

    await router.run_control(body)
    for app_client in (client, fuzz_client):
        await app_client.app.state.policies.refresh(router, force=True)


@pytest.fixture(scope="module")
def fuzz_api(world: World, topo: Topology) -> GraphQLSchema:
    return fuzz_schema(world, topo)


_strategies: dict[tuple[int, str, str, GenerationMode], st.SearchStrategy[Case]] = {}


def cases(api: GraphQLSchema, root: str, name: str,
          mode: GenerationMode) -> st.SearchStrategy[Case]:
    """Built once per field and mode: building costs more than drawing."""
    key = (id(api), root, name, mode)
    if key not in _strategies:
        _strategies[key] = api[root][name].as_strategy(generation_mode=mode)
    return _strategies[key]


async def send(client: AsyncTestClient[Any], case: Case, authorization: str | None,
               as_variables: bool) -> httpx.Response:
    """The request schemathesis built for ``case``, through the in-process app; a valid
    document's argument literals moved into variables when ``as_variables``. (Not an invalid
    one's: a variable may coerce what the literal may not, e.g. ``1e20`` for an ``ID``.)"""
    sent = case.as_transport_kwargs()
    headers = dict(sent["headers"])
    if authorization is not None:
        headers["Authorization"] = authorization
    body = sent["json"]
    if as_variables and case.meta is not None and case.meta.generation.mode.is_positive:
        query, variables = lifted(body["query"])
        body = {"query": query, "variables": variables}
    return await client.request(sent["method"], sent["url"], headers=headers,
                                params=sent["params"], json=body)


# --- checks on every answer ------------------------------------------------------------------

Check = Callable[[CheckContext, Response, Case], bool | None]
leaks = re.compile("|".join([
    r"Traceback", r'File "[^"]*", line \d+', r"<class '", r"<object ",
    r"\b(psycopg|sqlalchemy|asyncpg|litestar|strawberry)\b",
    r"\b(SELECT|INSERT INTO|DELETE FROM|UPDATE \w+ SET|RETURNING)\b", r"\[SQL:",
    r"duplicate key value|violates \S+ constraint|syntax error at or near|transaction is aborted",
    r"object has no attribute|NoneType|not subscriptable|unhashable type|positional argument",
    r"unexpected keyword argument|invalid literal for|could not convert|decimal\.",
    r"Internal Server Error",
]))
exception_names = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with the key it is under."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


def _shape_problem(body: Any) -> str | None:
    """What makes ``body`` no GraphQL response: a JSON object with ``data`` and/or ``errors``,
    ``data`` an object or null, ``errors`` a non-empty list of objects each with a
    ``message`` and an ``extensions.code``."""
    if not isinstance(body, dict) or not body.keys() <= {"data", "errors", "extensions"}:
        return "not an object of data, errors and extensions"
    if "data" not in body and "errors" not in body:
        return "neither data nor errors"
    if body.get("data") is not None and not isinstance(body["data"], dict):
        return "data is not an object"
    errors = body.get("errors", [{"message": "", "extensions": {"code": "NONE"}}])
    if not isinstance(errors, list) or not errors:
        return "errors is not a non-empty list"
    for error in errors:
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return f"an error without a message: {error}"
        code = (error.get("extensions") or {}).get("code")
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z][A-Z_]*", code):
            return f"an error without an extensions.code: {error}"
    return None


def not_a_5xx(ctx: CheckContext, response: Response, case: Case) -> None:
    assert response.status_code < 500, f"HTTP {response.status_code}"


def a_graphql_response(ctx: CheckContext, response: Response, case: Case) -> None:
    problem = _shape_problem(response.json())
    assert problem is None, problem


def no_internal_error(ctx: CheckContext, response: Response, case: Case) -> None:
    """No masked internal error (each one is a bug, logged with its traceback above), and no
    exception, module or SQL text in any error or error result, unless the caller sent it."""
    body = response.json()
    if _shape_problem(body) is not None:
        return  # a_graphql_response reports it
    for error in body.get("errors") or []:
        assert error["extensions"]["code"] != internal_error_code, error
    sent = str(case.body)
    told = [s for _, s in _strings(body.get("errors"))]
    told += [s for k, s in _strings(body.get("data")) if k == "message"]
    for message in told:
        leaked = [m.group() for m in leaks.finditer(message) if m.group() not in sent]
        assert not leaked, (leaked, message)
        unknown = {n for n in exception_names.findall(message)
                   if n not in schema_type_names and n not in sent}
        assert not unknown, (unknown, message)


def schemathesis_graphql_checks(ctx: CheckContext, response: Response, case: Case) -> None:
    """Schemathesis's own: no null in a non-null field; a document made invalid on purpose
    is refused. Run on well-formed answers only (it fails on an error without a message)."""
    if _shape_problem(response.json()) is None:
        response_schema_conformance(ctx, response, case)
        negative_data_rejection(ctx, response, case)


def answered_200(ctx: CheckContext, response: Response, case: Case) -> None:
    """With a valid key every answer is HTTP 200, refusals included (GraphQL over HTTP with
    ``application/json``)."""
    assert response.status_code == 200, response.status_code


def refused_401(ctx: CheckContext, response: Response, case: Case) -> None:
    """Without a valid key: 401, a challenge, and one UNAUTHENTICATED error, nothing else."""
    assert response.status_code == 401, response.status_code
    assert response.headers.get("www-authenticate") == ['Bearer realm="corridor"'], (
        response.headers)
    body = response.json()
    assert body.keys() == {"errors"}, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}, error


common_checks: list[Check] = [not_a_5xx, a_graphql_response, no_internal_error,
                              schemathesis_graphql_checks]


def assert_isolated(response: httpx.Response, world: World) -> None:
    """A partner's answer names none of the stranger's objects (outside the message of an
    error result, which may repeat the id the caller sent)."""
    seen = {s for k, s in _strings(response.json().get("data")) if k != "message"}
    assert not seen & set(world.stranger_ids), seen & set(world.stranger_ids)


# --- the fuzzing -----------------------------------------------------------------------------

@pytest.mark.parametrize(("root", "name"), fields, ids=[f"{r}.{n}" for r, n in fields])
@settings(fuzz_settings, max_examples=examples_per_field)
@given(data=st.data())
async def test_every_field_answers_well_whatever_it_is_sent(
        fuzz_client: AsyncTestClient[Any], fuzz_api: GraphQLSchema, world: World, root: str,
        name: str, data: st.DataObject) -> None:
    role = data.draw(st.sampled_from(sorted(access.matrix[name])), label="role")
    mode = data.draw(modes, label="mode")
    case = data.draw(cases(fuzz_api, root, name, mode), label="case")
    response = await send(fuzz_client, case, f"Bearer {world.keys[role]}",
                          data.draw(st.booleans(), label="as variables"))
    case.validate_response(response, checks=[*common_checks, answered_200])
    if role in partner_roles:
        assert_isolated(response, world)


def bad_authorizations(world: World) -> st.SearchStrategy[str | None]:
    """No header, other schemes, keys that no longer work, and made-up keys."""
    admin = world.keys[Role.PARTNER_ADMIN]
    printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    return st.one_of(
        st.none(),
        st.sampled_from(["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", f"Token {admin}",
                         f"Bearer {admin}x", f"Bearer {admin[:-1]}", admin,
                         *(f"Bearer {k}" for k in world.refused_keys)]),
        st.text(printable, min_size=1, max_size=60).map(lambda t: f"Bearer cor_test_{t}"),
        st.text(printable, max_size=60))


@settings(fuzz_settings, max_examples=unauthenticated_examples)
@given(data=st.data())
async def test_without_a_valid_key_every_field_is_refused(
        fuzz_client: AsyncTestClient[Any], fuzz_api: GraphQLSchema, world: World,
        data: st.DataObject) -> None:
    root, name = data.draw(st.sampled_from(fields), label="field")
    case = data.draw(cases(fuzz_api, root, name, data.draw(modes, label="mode")), label="case")
    authorization = data.draw(bad_authorizations(world), label="authorization")
    response = await send(fuzz_client, case, authorization,
                          data.draw(st.booleans(), label="as variables"))
    case.validate_response(response, checks=[*common_checks, refused_401])


past_bigint = encode_cursor("ent", "9" * 19)
found_by_fuzzing = [
    pytest.param("Query", "accounts", Role.PARTNER_READONLY,
                 f'{{ accounts(first: 1) {{ edges {{ node {{ entries(after: "{past_bigint}") '
                 "{ edges { cursor } } } } } }", id="statement-cursor-past-bigint"),
]
"""Failures deeper runs found (``CORRIDOR_TEST_FUZZ_EXAMPLES``), replayed on every run."""


@pytest.mark.parametrize(("root", "name", "role", "document"), found_by_fuzzing)
async def test_what_the_fuzzing_found_stays_fixed(
        fuzz_client: AsyncTestClient[Any], fuzz_api: GraphQLSchema, world: World, root: str,
        name: str, role: Role, document: str) -> None:
    case = fuzz_api[root][name].Case(body=document)
    response = await send(fuzz_client, case, f"Bearer {world.keys[role]}", as_variables=False)
    case.validate_response(response, checks=[*common_checks, answered_200])


async def test_ledgers_and_keys_are_intact_after_the_fuzzing(
        router: Router, topo: Topology, world: World) -> None:
    """Runs after the fuzzing above (tests run in file order), on the state it left."""
    await assert_invariants(router, topo, world)


# --- the checks themselves: each refuses the bad answer it is for ------------------------------

oracle_api = schemathesis.graphql.from_path(schema_path)
viewer = oracle_api["Query"]["viewer"].Case(body="{ viewer { role } }")
internal = {"message": "Unexpected error.", "extensions": {"code": internal_error_code}}
bad_answers = [
    pytest.param(500, {"data": None, "errors": [internal]}, id="http-500"),
    pytest.param(200, {"data": None, "errors": [internal]}, id="masked-internal-error"),
    pytest.param(200, [{"data": None}], id="not-an-object"),
    pytest.param(200, {"data": {"viewer": {"role": "SRE"}}, "errors": []}, id="empty-errors"),
    pytest.param(200, {"result": 1}, id="neither-data-nor-errors"),
    pytest.param(200, {"errors": [{"message": "no code"}]}, id="error-without-code"),
    pytest.param(200, {"errors": [{"extensions": {"code": "X"}}]}, id="error-without-message"),
    pytest.param(200, {"errors": [{"message": "Traceback (most recent call last):",
                                   "extensions": {"code": "BAD_USER_INPUT"}}]}, id="traceback"),
    pytest.param(200, {"errors": [{"message": "KeyError: 'tenant'",
                                   "extensions": {"code": "BAD_USER_INPUT"}}]},
                 id="exception-name"),
    pytest.param(200, {"errors": [{"message": 'duplicate key value violates unique constraint '
                                              '"accounts_pkey"', "extensions": {"code": "X"}}]},
                 id="sql-error"),
    pytest.param(200, {"data": {"viewer": {"role": "SRE", "message": "invalid literal for int() "
                                                                      "with base 10: 'x'"}}},
                 id="exception-text-in-an-error-result"),
    pytest.param(200, {"data": {"viewer": None}, "errors": [{
        "message": "Cannot return null for non-nullable field Query.viewer.", "path": ["viewer"],
        "extensions": {"code": "X"}}]}, id="null-in-non-null-field"),
    pytest.param(400, {"data": {"viewer": {"role": "SRE"}}}, id="data-but-not-200"),
]


def _answer(status: int, body: Any, headers: dict[str, list[str]] | None = None) -> Response:
    request = requests.Request("POST", graphql_url, json={"query": str(viewer.body)}).prepare()
    return Response(status, {"content-type": ["application/json"], **(headers or {})},
                    json.dumps(body).encode(), request, 0.0, True)


@pytest.mark.parametrize(("status", "body"), bad_answers)
def test_the_checks_refuse_a_bad_answer(status: int, body: Any) -> None:
    with pytest.raises(FailureGroup):
        viewer.validate_response(_answer(status, body), checks=[*common_checks, answered_200])


def test_the_checks_pass_good_answers_refusals_and_echoes() -> None:
    refused = {"data": None, "errors": [{
        "message": "Cannot query field 'x' on type 'Query'. Did you mean 'ValidationError'?",
        "locations": [{"line": 1, "column": 3}],
        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
    for body in ({"data": {"viewer": {"role": "SRE"}}}, refused):
        viewer.validate_response(_answer(200, body), checks=[*common_checks, answered_200])
    echo = oracle_api["Query"]["fxRates"].Case(body='{ fxRates(base: "psycopg KeyError") '
                                                    "{ base } }")
    echoed = {"data": None, "errors": [{"message": "unknown currency 'psycopg KeyError'",
                                        "extensions": {"code": "BAD_USER_INPUT"}}]}
    echo.validate_response(_answer(200, echoed), checks=[*common_checks, answered_200])


def test_the_401_check_wants_a_challenge_and_nothing_but_the_error() -> None:
    unauthenticated = {"errors": [{"message": "the API key is not valid",
                                   "extensions": {"code": "UNAUTHENTICATED"}}]}
    challenge = {"www-authenticate": ['Bearer realm="corridor"']}
    viewer.validate_response(_answer(401, unauthenticated, challenge),
                             checks=[*common_checks, refused_401])
    for status, body, headers in ((200, {"data": {"viewer": {"role": "SRE"}}}, challenge),
                                  (401, unauthenticated, {}),
                                  (401, {**unauthenticated, "data": None}, challenge)):
        with pytest.raises(FailureGroup):
            viewer.validate_response(_answer(status, body, headers),
                                     checks=[*common_checks, refused_401])


def test_isolation_is_broken_by_a_strangers_id_outside_messages() -> None:
    theirs = "acc_eu-central_01M8XRG95Q7256B5C9ATGHPYJ5"
    world = World("eu-central", "ten_x", {}, [], [], "ten_y", [theirs], [])
    said = httpx.Response(200, json={"data": {"account": {"message": f"{theirs} not found"}}})
    assert_isolated(said, world)
    shown = httpx.Response(200, json={"data": {"account": {"id": theirs}}})
    with pytest.raises(AssertionError):
        assert_isolated(shown, world)
