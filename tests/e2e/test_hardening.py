"""Transport and schema hardening over HTTP: limits, GET, introspection, the IDE, body size,
health checks, error masking, and idempotency."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from graphql import (
    Lexer,
    Source,
    TokenKind,
    build_client_schema,
    build_schema,
    get_introspection_query,
)
from graphql.utilities import find_breaking_changes, find_dangerous_changes
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

import regions.coalescer
import regions.commands
import regions.ledger_queries
from api.app import create_app
from api.settings import Env, request_body_bytes_max
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from regions.txn import RetriesExhausted
from schema.build import query_aliases_max, query_depth_max, query_tokens_max
from tests.conftest import settings_for_tests
from tests.e2e.conftest import MakePartner, Partner, gql

ROOT = Path(__file__).resolve().parents[2]

TRANSFER = """
mutation($input: CreateTransferInput!) {
  createTransfer(input: $input) {
    __typename
    ... on Transfer { id amount { amount currency } reference }
    ... on Error { code message }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

BATCH = """
mutation($input: CreateTransferBatchInput!) {
  createTransferBatch(input: $input) {
    __typename
    ... on TransferBatch { id succeeded failed items { index transfer { id } error { code } } }
    ... on Error { code message }
  }
}"""

CREATE_ACCOUNT = """
mutation($input: CreateAccountInput!) {
  createAccount(input: $input) {
    __typename
    ... on Account { id currency label }
    ... on Error { code message }
    ... on IdempotencyConflict { idempotencyKey }
  }
}"""

ACCOUNTS = "{ accounts(first: 100) { edges { node { id balance { posted { amount } } } } } }"
TRANSFERS = "{ transfers(first: 100) { edges { node { id } } } }"
INTERNAL = "INTERNAL_SERVER_ERROR"


def ok(out: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in out, out
    data: dict[str, Any] = out["data"]
    return data


def auth(p: Partner) -> dict[str, str]:
    return {"Authorization": f"Bearer {p.key}"}


async def ledger(p: Partner) -> tuple[dict[str, str], list[str]]:
    """The tenant's accounts with posted balances, and its transfers."""
    accounts = ok(await p.gql(ACCOUNTS))["accounts"]["edges"]
    transfers = ok(await p.gql(TRANSFERS))["transfers"]["edges"]
    return ({e["node"]["id"]: e["node"]["balance"]["posted"]["amount"] for e in accounts},
            [e["node"]["id"] for e in transfers])


def transfer_input(p: Partner, key: str, amount: str = "10.00", **over: Any) -> dict[str, Any]:
    return {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": amount,
            "currency": "EUR", "idempotencyKey": key, **over}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def prod_client(topo: Topology, db_urls: DatabaseUrls,
                      router: Router) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = settings_for_tests(Env.PRODUCTION, topo, db_urls)
    async with AsyncTestClient(app=create_app(settings, router=router)) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dev_client(topo: Topology, db_urls: DatabaseUrls,
                     router: Router) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = settings_for_tests(Env.DEVELOPMENT, topo, db_urls)
    async with AsyncTestClient(app=create_app(settings, router=router)) as c:
        yield c


# --- document limits --------------------------------------------------------------------------


def nested(levels: int) -> str:
    """A selection ``levels`` fields deep (field names need not exist: depth is checked first)."""
    body = "leaf"
    for i in range(levels - 1):
        body = f"f{i} {{ {body} }}"
    return f"{{ {body} }}"


async def test_deepest_real_query_is_accepted(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = ok(await p.gql("""{ accounts { edges { node { entries { edges { node {
        amount { amount currency } } } } } } } }"""))
    [edge] = out["accounts"]["edges"]
    assert edge["node"]["entries"]["edges"][0]["node"]["amount"]["amount"] == "100.00"


@pytest.mark.parametrize("levels", [query_depth_max + 2, query_depth_max + 10, 100])
async def test_query_depth_over_limit_is_rejected(make_partner: MakePartner, levels: int) -> None:
    p = await make_partner("EU")
    out = await p.gql(nested(levels))
    assert out.get("data") is None, out
    messages = [e["message"] for e in out["errors"]]
    assert f"exceeds maximum operation depth of {query_depth_max}" in " ".join(messages), out
    assert all(e["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" for e in out["errors"])


async def test_query_depth_through_fragments_is_rejected(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    levels = query_depth_max + 3
    fragments = "\n".join(f"fragment F{i} on T {{ f{i} {{ ...F{i + 1} }} }}"
                          for i in range(levels))
    doc = f"{{ ...F0 }}\n{fragments}\nfragment F{levels} on T {{ leaf }}"
    out = await p.gql(doc)
    assert out.get("data") is None, out
    assert any("maximum operation depth" in e["message"] for e in out["errors"]), out


def aliased_viewers(count: int) -> str:
    return "{ " + " ".join(f"v{i}: viewer {{ role }}" for i in range(count)) + " }"


async def test_aliases_up_to_the_limit_are_accepted(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    out = ok(await p.gql(aliased_viewers(query_aliases_max)))
    assert len(out) == query_aliases_max
    assert all(v == {"role": "partner_admin"} for v in out.values())


@pytest.mark.parametrize("count", [query_aliases_max + 1, 100])
async def test_aliases_over_the_limit_are_rejected(make_partner: MakePartner, count: int) -> None:
    p = await make_partner("EU")
    out = await p.gql(aliased_viewers(count))
    assert out.get("data") is None, out
    assert out["errors"][0]["message"] == (
        f"{count} aliases found. Allowed: {query_aliases_max}"), out
    assert out["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_aliased_mutations_over_the_limit_are_not_executed(
        make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await ledger(p)
    count = query_aliases_max + 1
    doc = "mutation { " + " ".join(
        f'm{i}: createAccount(input: {{currency: "EUR", idempotencyKey: "alias-{i}"}}) '
        "{ __typename }" for i in range(count)) + " }"
    out = await p.gql(doc)
    assert out.get("data") is None, out
    assert "aliases" in out["errors"][0]["message"], out
    assert await ledger(p) == before


def lexical_tokens(doc: str) -> int:
    lexer = Lexer(Source(doc))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def document_with_tokens(tokens: int) -> str:
    """A valid document of exactly ``tokens`` lexical tokens: one operation ``Q0`` that spreads
    many small fragments (a document may define only a few operations).

    (Repeating one field instead would trip graphql-core's own overlapping-fields budget.)
    """
    operation, fragment = 4, 12  # query Q0 { }; ...Fn + fragment Fn on Query { viewer { role } }
    count, extra = divmod(tokens - operation, fragment)
    spreads = " ".join(f"...F{i}" for i in range(count))
    fragments = [f"fragment F{i} on Query {{ viewer {{ role }} }}" for i in range(count)]
    fragments[0] = "fragment F0 on Query { viewer { role " + "role " * extra + "} }"
    doc = "\n".join([f"query Q0 {{ {spreads} }}", *fragments])
    assert lexical_tokens(doc) == tokens
    return doc


async def test_tokens_up_to_the_limit_are_accepted(make_partner: MakePartner) -> None:
    """graphql-core counts the end-of-document token too, so 1,999 lexical tokens fit."""
    p = await make_partner("EU")
    doc = document_with_tokens(query_tokens_max - 1)
    resp = await p.client.post("/graphql", headers=auth(p),
                               json={"query": doc, "operationName": "Q0"})
    assert resp.status_code == 200, resp.text
    assert ok(resp.json()) == {"viewer": {"role": "partner_admin"}}


@pytest.mark.parametrize("tokens", [query_tokens_max + 1, 50_000])
async def test_tokens_over_the_limit_are_rejected(make_partner: MakePartner,
                                                  tokens: int) -> None:
    p = await make_partner("EU")
    resp = await p.client.post("/graphql", headers=auth(p), json={
        "query": document_with_tokens(tokens), "operationName": "Q0"})
    out = resp.json()
    assert out.get("data") is None, out
    assert f"more than {query_tokens_max} tokens" in out["errors"][0]["message"], out


async def test_deep_nesting_is_refused_without_crashing(make_partner: MakePartner) -> None:
    """Nesting near the token limit must be a clean GraphQL error, not a RecursionError/500."""
    p = await make_partner("EU")
    levels = query_tokens_max // 2 - 5
    doc = "{ " + "a { " * (levels - 1) + "b" + " }" * (levels - 1) + " }"
    resp = await p.client.post("/graphql", headers=auth(p), json={"query": doc})
    assert resp.status_code == 200, resp.text[:300]
    out = resp.json()
    assert out.get("data") is None, out
    assert out["errors"], out
    assert "Recursion" not in resp.text


async def test_comments_count_against_the_token_limit(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    out = await p.gql("{ viewer { role } }\n" + "# padding\n" * (query_tokens_max + 1))
    assert out.get("data") is None, out
    assert f"more than {query_tokens_max} tokens" in out["errors"][0]["message"], out


async def test_token_limit_stops_a_mutation(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await ledger(p)
    padding = " ".join(["__typename"] * query_tokens_max)
    doc = TRANSFER.replace("__typename", padding, 1)
    out = await p.gql(doc, {"input": transfer_input(p, "tokens")})
    assert out.get("data") is None, out
    assert "tokens" in out["errors"][0]["message"], out
    assert await ledger(p) == before


# --- GET --------------------------------------------------------------------------------------


async def test_get_query_with_key(make_partner: MakePartner,
                                  client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    resp = await client.get("/graphql", headers=auth(p), params={
        "query": "query($id: ID!) { viewer { tenant { id } } account(id: $id) { __typename "
                 "... on Account { balance { posted { amount } } } } }",
        "variables": json.dumps({"id": p.accounts[0]})})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["viewer"]["tenant"]["id"] == p.tenant_id
    assert data["account"]["balance"]["posted"]["amount"] == "100.00"


GET_MUTATION = 'mutation { createAccount(input: {currency: "EUR", idempotencyKey: "via-get"}) ' \
               "{ __typename ... on Account { id } } }"


async def test_mutation_via_get_is_not_executed(make_partner: MakePartner,
                                                client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await ledger(p)
    resp = await client.get("/graphql", headers=auth(p), params={"query": GET_MUTATION})
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert "Account" not in resp.text
    # A document whose selected operation is a mutation is refused too.
    resp = await client.get("/graphql", headers=auth(p), params={
        "query": "query Q { viewer { role } } " + GET_MUTATION.replace("mutation", "mutation M"),
        "operationName": "M"})
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    transfer = (
        f'mutation {{ createTransfer(input: {{fromAccountId: "{p.accounts[0]}", '
        f'toAccountId: "{p.accounts[1]}", amount: "5.00", currency: "EUR", '
        'idempotencyKey: "get-trf"}) { __typename } }')
    resp = await client.get("/graphql", headers=auth(p), params={"query": transfer})
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert await ledger(p) == before
    # The keys were never recorded: POSTing the same mutation now creates the account.
    out = ok(await p.gql(GET_MUTATION))
    assert out["createAccount"]["__typename"] == "Account"
    assert len((await ledger(p))[0]) == len(before[0]) + 1


async def test_mutation_via_get_is_405(make_partner: MakePartner,
                                       client: AsyncTestClient[Any]) -> None:
    """GraphQL-over-HTTP: a mutation over GET MUST get 405 Method Not Allowed."""
    p = await make_partner("EU")
    resp = await client.get("/graphql", headers=auth(p), params={"query": GET_MUTATION})
    assert resp.status_code == 405, (resp.status_code, resp.text)


async def test_get_selecting_the_query_of_a_mixed_document_runs(
        make_partner: MakePartner, client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU")
    resp = await client.get("/graphql", headers=auth(p), params={
        "query": "query Q { viewer { role } } " + GET_MUTATION.replace("mutation", "mutation M"),
        "operationName": "Q"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {"viewer": {"role": "partner_admin"}}
    assert ok(await p.gql('{ accounts { edges { node { id } } } }'))["accounts"]["edges"] == []


# --- WebSocket upgrade (a GET) -----------------------------------------------------------------


async def websocket_session(client: AsyncTestClient[Any], headers: dict[str, str],
                            messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open /graphql as a graphql-transport-ws WebSocket straight on the ASGI app (in this
    event loop, so the shared database pool stays on it) and return what the app sent."""
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
        "path": "/graphql", "raw_path": b"/graphql", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"sec-websocket-protocol", b"graphql-transport-ws"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "subprotocols": ["graphql-transport-ws"], "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    for m in messages:
        await inbox.put({"type": "websocket.receive", "text": json.dumps(m)})
    sent: list[dict[str, Any]] = []
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        done = message["type"] == "websocket.close" or (
            message["type"] == "websocket.send"
            and json.loads(message["text"]).get("type") in ("next", "error", "complete"))
        if done:
            finished.set()

    task = asyncio.ensure_future(client.app(scope, receive, send))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), timeout=10)
    await inbox.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, timeout=10)
    return sent


WS_MUTATION = [
    {"type": "connection_init"},
    {"type": "subscribe", "id": "1", "payload": {"query": (
        'mutation { createAccount(input: {currency: "EUR", idempotencyKey: "via-ws"}) '
        "{ __typename ... on Account { id } } }")}},
]


async def test_websocket_does_not_execute_mutations(make_partner: MakePartner,
                                                    client: AsyncTestClient[Any]) -> None:
    """The contract's transports are POST and GET (queries only); a WebSocket upgrade is a
    GET, and must not become a way to run mutations."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await ledger(p)
    sent = await websocket_session(client, auth(p), WS_MUTATION)
    assert await ledger(p) == before, sent


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-key"),
    pytest.param({"Authorization": "Bearer nonsense"}, id="bad-key"),
])
async def test_websocket_without_a_valid_key_is_refused_cleanly(
        client: AsyncTestClient[Any], headers: dict[str, str]) -> None:
    sent = await websocket_session(client, headers, WS_MUTATION)
    assert not any(m["type"] == "websocket.accept" for m in sent), sent
    closes = [m for m in sent if m["type"] == "websocket.close"]
    assert closes, sent
    # Refused as unauthenticated, not as a crash of the server (1011 / Litestar's 4500).
    assert closes[0]["code"] not in (1011, 4500), closes
    assert "Internal Server Error" not in (closes[0].get("reason") or ""), closes


# --- introspection and the IDE ----------------------------------------------------------------


async def test_introspection_in_test_env(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    out = ok(await p.gql("{ __schema { queryType { name } mutationType { name } } "
                         '__type(name: "Money") { fields { name } } }'))
    assert out["__schema"] == {"queryType": {"name": "Query"},
                               "mutationType": {"name": "Mutation"}}
    assert sorted(f["name"] for f in out["__type"]["fields"]) == ["amount", "currency"]


async def test_served_schema_matches_schema_graphql(make_partner: MakePartner) -> None:
    """The full introspection query runs within the limits, and its result is the contract."""
    p = await make_partner("EU")
    served = build_client_schema(ok(await p.gql(get_introspection_query(descriptions=True))))
    exported = build_schema((ROOT / "schema.graphql").read_text(encoding="utf-8"))
    assert find_breaking_changes(exported, served) == []
    assert find_dangerous_changes(exported, served) == []
    assert find_breaking_changes(served, exported) == []
    assert set(served.type_map) == set(exported.type_map)


@pytest.mark.parametrize("query", [
    pytest.param("{ __schema { queryType { name } } }", id="schema"),
    pytest.param('{ __type(name: "Account") { name } }', id="type"),
    pytest.param("FULL", id="full-introspection-query"),
])
async def test_introspection_disabled_in_production(
        make_partner: MakePartner, prod_client: AsyncTestClient[Any], query: str) -> None:
    p = await make_partner("EU")
    doc = get_introspection_query() if query == "FULL" else query
    out = await gql(prod_client, p.key, doc)
    assert out.get("data") is None, out
    assert "introspection" in out["errors"][0]["message"].lower(), out
    assert '"kind"' not in json.dumps(out), out
    assert '"fields"' not in json.dumps(out), out


async def test_production_still_serves_queries(make_partner: MakePartner,
                                               prod_client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    out = ok(await gql(prod_client, p.key, "{ __typename viewer { tenant { id } role } }"))
    assert out == {"__typename": "Query",
                   "viewer": {"tenant": {"id": p.tenant_id}, "role": "partner_admin"}}


async def test_graphiql_served_only_in_development(dev_client: AsyncTestClient[Any],
                                                   client: AsyncTestClient[Any]) -> None:
    resp = await dev_client.get("/graphql", headers={"Accept": "text/html"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "graphiql" in resp.text.lower()
    in_test_env = await client.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in in_test_env.text.lower()


async def test_graphiql_not_served_in_production(prod_client: AsyncTestClient[Any],
                                                 make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    for headers in ({"Accept": "text/html"}, {"Accept": "text/html", **auth(p)}):
        resp = await prod_client.get("/graphql", headers=headers)
        assert resp.status_code != 200, (resp.status_code, resp.text[:200])
        assert not resp.headers.get("content-type", "").startswith("text/html")
        assert "graphiql" not in resp.text.lower()


async def test_ide_page_grants_no_data_access(dev_client: AsyncTestClient[Any]) -> None:
    """The key-less GET that serves the IDE must not run operations."""
    resp = await dev_client.get("/graphql", params={"query": "{ viewer { role } }"},
                            headers={"Accept": "text/html"})
    assert "partner_admin" not in resp.text
    assert resp.status_code in (200, 401), resp.status_code
    if resp.status_code == 200:
        assert resp.headers["content-type"].startswith("text/html")


# --- request body size ------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid JSON request of exactly ``size`` bytes (padded with trailing whitespace)."""
    core = json.dumps({"query": "{ viewer { role } }"}).encode()
    assert len(core) <= size
    return core + b" " * (size - len(core))


async def test_body_over_the_limit_is_413(make_partner: MakePartner,
                                          client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU")
    resp = await client.post("/graphql", content=padded_body(request_body_bytes_max + 1),
                             headers={**auth(p), "Content-Type": "application/json"})
    assert resp.status_code == 413, (resp.status_code, resp.text[:200])
    assert "partner_admin" not in resp.text


async def test_body_at_the_limit_is_served(make_partner: MakePartner,
                                           client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU")
    resp = await client.post("/graphql", content=padded_body(request_body_bytes_max),
                             headers={**auth(p), "Content-Type": "application/json"})
    assert resp.status_code == 200, (resp.status_code, resp.text[:200])
    assert resp.json()["data"] == {"viewer": {"role": "partner_admin"}}


async def asgi_post_chunked(client: AsyncTestClient[Any], headers: dict[str, str],
                            body: bytes, chunk: int = 64 * 1024) -> tuple[int, bytes]:
    """POST straight to the ASGI app with no Content-Length, the body in chunks.

    (The test client's transport cannot stream a request body, so this drives the app itself.)
    """
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())],
    }
    parts = [body[i:i + chunk] for i in range(0, len(body), chunk)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if parts:
            piece = parts.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(parts)}
        await asyncio.sleep(3600)  # nothing more to send; the app should not ask
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(client.app(scope, receive, send), timeout=30)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_chunked_body_within_the_limit_is_served(make_partner: MakePartner,
                                                       client: AsyncTestClient[Any]) -> None:
    """The control for the next test: the chunked path itself works."""
    p = await make_partner("EU")
    status, body = await asgi_post_chunked(
        client, {**auth(p), "Content-Type": "application/json"}, padded_body(200_000))
    assert status == 200, body[:200]
    assert json.loads(body)["data"] == {"viewer": {"role": "partner_admin"}}


async def test_chunked_body_over_the_limit_is_413(make_partner: MakePartner,
                                                  client: AsyncTestClient[Any]) -> None:
    """Without a Content-Length the limit still holds while the body streams in."""
    p = await make_partner("EU")
    status, body = await asgi_post_chunked(
        client, {**auth(p), "Content-Type": "application/json"},
        padded_body(request_body_bytes_max + 1024))
    assert status == 413, (status, body[:200])


async def test_oversized_mutation_is_not_executed(make_partner: MakePartner,
                                                  client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await ledger(p)
    body = json.dumps({"query": TRANSFER, "variables": {"input": transfer_input(
        p, "big", reference="r" * 10)}}).encode()
    body += b" " * (request_body_bytes_max + 1 - len(body))
    resp = await client.post("/graphql", content=body,
                             headers={**auth(p), "Content-Type": "application/json"})
    assert resp.status_code == 413, resp.status_code
    assert await ledger(p) == before


# --- health -----------------------------------------------------------------------------------


async def test_healthz(client: AsyncTestClient[Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_readyz(client: AsyncTestClient[Any], topo: Topology) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ready"] is True
    expected = {"control"} | {f"cluster:{c.name}" for c in topo.clusters}
    assert set(body["checks"]) == expected
    assert all(v == "ok" for v in body["checks"].values()), body


async def test_readyz_reports_an_unreachable_cluster(topo: Topology,
                                                     db_urls: DatabaseUrls) -> None:
    broken = dict(db_urls.clusters)
    name = topo.clusters[-1].name
    broken[name] = make_url(broken[name]).set(host="127.0.0.1", port=1).render_as_string(
        hide_password=False)
    router = Router(topo, DatabaseUrls(control=db_urls.control, clusters=broken), pool_size=1)
    settings = settings_for_tests(Env.TEST, topo, db_urls)
    try:
        async with AsyncTestClient(app=create_app(settings, router=router)) as c:
            resp = await c.get("/readyz")
            health = await c.get("/healthz")
    finally:
        await router.dispose()
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["ready"] is False
    assert body["checks"]["control"] == "ok"
    assert body["checks"][f"cluster:{name}"].startswith("error"), body
    assert "127.0.0.1" not in resp.text  # names the failure, not the connection string
    assert health.status_code == 200  # liveness does not depend on the databases


# --- masking of unexpected errors -------------------------------------------------------------


def assert_masked(resp: Any, *secrets: str) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    for secret in (*secrets, "RuntimeError", "Traceback", "ledger_queries"):
        assert secret not in resp.text, resp.text
    body: dict[str, Any] = resp.json()
    assert body["errors"][0]["extensions"] == {"code": INTERNAL}, body
    assert body["errors"][0]["message"], body
    return body


def explode(*_: Any, **__: Any) -> Any:
    raise RuntimeError("secret detail: password=hunter2 at db.internal:5432")


async def test_internal_error_in_a_query_is_masked(make_partner: MakePartner,
                                                   client: AsyncTestClient[Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    monkeypatch.setattr(regions.ledger_queries, "account_page", explode)
    resp = await client.post("/graphql", json={"query": ACCOUNTS}, headers=auth(p))
    body = assert_masked(resp, "secret detail", "hunter2", "db.internal")
    assert body.get("data") is None
    assert body["errors"][0]["path"] == ["accounts"]
    # Other fields of the same request still resolve; only the broken one is an error.
    resp = await client.post("/graphql", json={
        "query": "{ viewer { role } accounts { edges { cursor } } }"}, headers=auth(p))
    assert_masked(resp, "secret detail")


async def test_internal_error_in_a_nested_field_is_masked(
        make_partner: MakePartner, client: AsyncTestClient[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    monkeypatch.setattr(regions.ledger_queries, "entry_page", explode)
    resp = await client.post("/graphql", json={
        "query": 'query($id: ID!) { account(id: $id) { ... on Account { id '
                 "entries { edges { cursor } } } } }",
        "variables": {"id": p.accounts[0]}}, headers=auth(p))
    body = assert_masked(resp, "secret detail")
    assert body["errors"][0]["path"][:2] == ["account", "entries"]


async def test_internal_error_in_a_mutation_is_masked(make_partner: MakePartner,
                                                      client: AsyncTestClient[Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await ledger(p)
    # Both ways a transfer can run: its group's transaction, and alone (a failed group's
    # requests are retried one by one).
    monkeypatch.setattr(regions.coalescer, "create_transfers_txn", explode)
    monkeypatch.setattr(regions.commands, "create_transfer_txn", explode)
    resp = await client.post("/graphql", json={
        "query": TRANSFER, "variables": {"input": transfer_input(p, "masked")}},
        headers=auth(p))
    assert_masked(resp, "secret detail")
    monkeypatch.undo()
    assert await ledger(p) == before


async def test_internal_error_is_masked_in_production(make_partner: MakePartner,
                                                      prod_client: AsyncTestClient[Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    monkeypatch.setattr(regions.ledger_queries, "account_page", explode)
    resp = await prod_client.post("/graphql", json={"query": ACCOUNTS}, headers=auth(p))
    assert_masked(resp, "secret detail")


async def test_transaction_conflict_has_its_own_code(make_partner: MakePartner,
                                                     client: AsyncTestClient[Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})

    def conflict(*_: Any, **__: Any) -> Any:
        raise RetriesExhausted(8, "40001")

    monkeypatch.setattr(regions.ledger_queries, "account_page", conflict)
    resp = await client.post("/graphql", json={"query": ACCOUNTS}, headers=auth(p))
    assert resp.status_code == 200
    assert resp.json()["errors"][0]["extensions"]["code"] == RetriesExhausted.code


# --- idempotency ------------------------------------------------------------------------------


async def test_same_key_same_input_replays(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    variables = {"input": transfer_input(p, "once", reference="rent")}
    first = ok(await p.gql(TRANSFER, variables))["createTransfer"]
    second = ok(await p.gql(TRANSFER, variables))["createTransfer"]
    assert first["__typename"] == second["__typename"] == "Transfer", (first, second)
    assert first == second
    balances, transfers = await ledger(p)
    assert balances == {p.accounts[0]: "90.00", p.accounts[1]: "10.00"}
    assert first["id"] in transfers
    assert len(transfers) == 2  # the funding and this one


async def test_replay_after_the_balance_changed(make_partner: MakePartner) -> None:
    """A replay returns the stored result; it is not re-evaluated against today's balance."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    first = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "k1", "60.00")}))
    rest = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "k2", "40.00")}))
    assert rest["createTransfer"]["__typename"] == "Transfer"
    again = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "k1", "60.00")}))
    assert again == first
    assert (await ledger(p))[0] == {p.accounts[0]: "0.00", p.accounts[1]: "100.00"}


@pytest.mark.parametrize("change", [
    pytest.param({"amount": "10.01"}, id="amount"),
    pytest.param({"reference": "other"}, id="reference"),
    pytest.param({"currency": "USD"}, id="currency"),
    pytest.param({"swap": True}, id="direction"),
])
async def test_same_key_different_input_conflicts(make_partner: MakePartner,
                                                  change: dict[str, Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    first = ok(await p.gql(TRANSFER, {"input": transfer_input(p, "dup", reference="rent")}))
    assert first["createTransfer"]["__typename"] == "Transfer"
    after_first = await ledger(p)
    data = transfer_input(p, "dup", reference="rent")
    if change.pop("swap", False):
        data["fromAccountId"], data["toAccountId"] = data["toAccountId"], data["fromAccountId"]
    data.update(change)
    out = ok(await p.gql(TRANSFER, {"input": data}))["createTransfer"]
    assert out["__typename"] == "IdempotencyConflict", out
    assert out["code"] == "IDEMPOTENCY_CONFLICT"
    assert out["idempotencyKey"] == "dup"
    assert await ledger(p) == after_first


async def test_key_reused_for_another_operation_conflicts(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    ok(await p.gql(TRANSFER, {"input": transfer_input(p, "shared")}))
    after = await ledger(p)
    out = ok(await p.gql(CREATE_ACCOUNT, {"input": {"currency": "EUR",
                                                    "idempotencyKey": "shared"}}))
    assert out["createAccount"]["__typename"] == "IdempotencyConflict", out
    assert await ledger(p) == after


async def test_keys_are_per_tenant(make_partner: MakePartner) -> None:
    a = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    b = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    ta = ok(await a.gql(TRANSFER, {"input": transfer_input(a, "same-key")}))["createTransfer"]
    tb = ok(await b.gql(TRANSFER, {"input": transfer_input(b, "same-key", "20.00")}))
    assert tb["createTransfer"]["__typename"] == "Transfer", tb
    assert tb["createTransfer"]["id"] != ta["id"]
    assert (await ledger(b))[0][b.accounts[1]] == "20.00"


async def test_concurrent_requests_with_one_key_have_one_effect(
        make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    variables = {"input": transfer_input(p, "race", "7.00")}
    outs = await asyncio.gather(*(p.gql(TRANSFER, variables) for _ in range(8)))
    results = [ok(o)["createTransfer"] for o in outs]
    assert {r["__typename"] for r in results} == {"Transfer"}, results
    assert len({r["id"] for r in results}) == 1
    assert (await ledger(p))[0] == {p.accounts[0]: "93.00", p.accounts[1]: "7.00"}


async def test_batch_replay_and_conflict(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    item = {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": "60.00",
            "currency": "EUR"}
    variables = {"input": {"transfers": [item, item, {**item, "amount": "1.00"}],
                           "atomic": False, "idempotencyKey": "batch"}}
    first = ok(await p.gql(BATCH, variables))["createTransferBatch"]
    assert first["__typename"] == "TransferBatch", first
    assert (first["succeeded"], first["failed"]) == (2, 1)
    again = ok(await p.gql(BATCH, variables))["createTransferBatch"]
    assert again == first
    assert (await ledger(p))[0] == {p.accounts[0]: "39.00", p.accounts[1]: "61.00"}
    variables["input"]["atomic"] = True
    conflict = ok(await p.gql(BATCH, variables))["createTransferBatch"]
    assert conflict["__typename"] == "IdempotencyConflict", conflict
    assert (await ledger(p))[0] == {p.accounts[0]: "39.00", p.accounts[1]: "61.00"}


async def test_create_account_replay_and_conflict(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    variables = {"input": {"currency": "EUR", "label": "ops", "idempotencyKey": "acc"}}
    first = ok(await p.gql(CREATE_ACCOUNT, variables))["createAccount"]
    again = ok(await p.gql(CREATE_ACCOUNT, variables))["createAccount"]
    assert first["__typename"] == "Account"
    assert again == first
    conflict = ok(await p.gql(CREATE_ACCOUNT, {"input": {
        "currency": "USD", "label": "ops", "idempotencyKey": "acc"}}))["createAccount"]
    assert conflict["__typename"] == "IdempotencyConflict", conflict
    assert list((await ledger(p))[0]) == [first["id"]]
