"""Rate limits, the request time limit and one operation per request, over HTTP.

The rate-limit tests run on their own app with tiny buckets that refill one token every 1,000
seconds, on a clock that stands still: a handful of requests reaches the limit, and the
headers' reset and retry-after do not move while the requests take their time (one second
of a slow machine would turn 3000 into 2999).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import text

import regions.coalescer
import regions.commands
import regions.ledger_queries
from api.app import create_app
from api.limits import Limiter, Rate, rate_limit_burst
from api.settings import Env
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from schema.build import operations_per_document_max
from tests.conftest import settings_for_tests
from tests.e2e.conftest import MakePartner, Partner

key_burst = 3
address_burst = 2
trickle_per_s = 0.001
refill_s = math.ceil(1 / trickle_per_s)
time_limit_s = 1.0

VIEWER = "{ viewer { role } }"
ACCOUNTS = "{ accounts(first: 100) { edges { node { id balance { posted { amount } } } } } }"
TRANSFERS = "{ transfers(first: 100) { edges { node { id } } } }"
TRANSFER = """
mutation($input: CreateTransferInput!) {
  createTransfer(input: $input) { __typename ... on Transfer { id } ... on Error { code } }
}"""
_addresses = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tight(topo: Topology, db_urls: DatabaseUrls,
                router: Router) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = replace(settings_for_tests(Env.TEST, topo, db_urls),
                       rate_limit_per_s=trickle_per_s, rate_limit_burst=key_burst,
                       unauthenticated_rate_limit_per_s=trickle_per_s,
                       unauthenticated_rate_limit_burst=address_burst)
    async with AsyncTestClient(app=create_app(settings, router=router)) as c:
        # The same buckets as the settings give (set at startup), on a clock that stands still.
        c.app.state.limiter = Limiter.of(Rate(trickle_per_s, key_burst),
                                         Rate(trickle_per_s, address_burst), clock=lambda: 0.0)
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hasty(topo: Topology, db_urls: DatabaseUrls,
                router: Router) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = replace(settings_for_tests(Env.TEST, topo, db_urls),
                       request_time_limit_s=time_limit_s)
    async with AsyncTestClient(app=create_app(settings, router=router)) as c:
        yield c


@asynccontextmanager
async def from_address(client: AsyncTestClient[Any],
                       host: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client on ``client``'s (running) app whose requests come from ``host`` (by default an
    address no other test uses, so address buckets do not leak between tests)."""
    host = host or f"198.51.100.{next(_addresses)}"
    transport = httpx.ASGITransport(app=client.app, client=(host, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://corridor.test") as c:
        yield c


async def post(client: AsyncTestClient[Any] | httpx.AsyncClient, key: str | None, query: str,
               variables: dict[str, Any] | None = None, **extra: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await client.post("/graphql", headers=headers,
                             json={"query": query, "variables": variables or {}, **extra})


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body: dict[str, Any] = resp.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def limit_headers(resp: httpx.Response) -> tuple[str | None, ...]:
    return tuple(resp.headers.get(h) for h in (
        "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"))


def assert_rate_limited(resp: httpx.Response, burst: int = key_burst) -> None:
    assert resp.status_code == 429, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert list(body) == ["errors"], body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED"}, body
    assert f"retry after {refill_s} s" in error["message"], body
    assert limit_headers(resp) == (str(burst), "0", str(burst * refill_s), str(refill_s)), (
        resp.headers)


async def ledger(p: Partner) -> tuple[dict[str, str], list[str]]:
    """The tenant's accounts with posted balances, and its transfers (through the session app,
    whose limits these tests do not touch)."""
    accounts = ok(await post(p.client, p.key, ACCOUNTS))["accounts"]["edges"]
    transfers = ok(await post(p.client, p.key, TRANSFERS))["transfers"]["edges"]
    return ({e["node"]["id"]: e["node"]["balance"]["posted"]["amount"] for e in accounts},
            [e["node"]["id"] for e in transfers])


def create_account(key: str) -> str:
    return (f'mutation {{ createAccount(input: {{currency: "EUR", idempotencyKey: "{key}"}}) '
            "{ __typename } }")


# --- rate limits per key ------------------------------------------------------------------------


async def test_answers_carry_the_rate_limit_headers(make_partner: MakePartner,
                                                    tight: AsyncTestClient[Any],
                                                    client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU")
    first = await post(tight, p.key, VIEWER)
    assert ok(first) == {"viewer": {"role": "partner_admin"}}
    assert limit_headers(first) == (str(key_burst), "2", str(refill_s), None)
    assert limit_headers(await post(tight, p.key, VIEWER))[:2] == (str(key_burst), "1")
    # The default limits, on the session's app.
    normal = await post(client, p.key, VIEWER)
    assert normal.status_code == 200
    assert limit_headers(normal)[:2] == (str(rate_limit_burst), str(rate_limit_burst - 1))


async def test_over_the_limit_is_429_and_runs_nothing(make_partner: MakePartner,
                                                      tight: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    for _ in range(key_burst):
        ok(await post(tight, p.key, VIEWER))
    before = await ledger(p)
    assert_rate_limited(await post(tight, p.key, create_account("over-the-limit")))
    assert_rate_limited(await post(tight, p.key, VIEWER))
    assert await ledger(p) == before
    # The refused requests took nothing: the key was refused, not the idempotency key.
    assert ok(await post(p.client, p.key, create_account("over-the-limit"))) == {
        "createAccount": {"__typename": "Account"}}


async def test_one_key_out_of_tokens_leaves_other_keys_alone(make_partner: MakePartner,
                                                            tight: AsyncTestClient[Any]) -> None:
    a, b = await make_partner("EU"), await make_partner("UK")
    for _ in range(key_burst):
        ok(await post(tight, a.key, VIEWER))
    assert_rate_limited(await post(tight, a.key, VIEWER))
    ok(await post(tight, b.key, VIEWER))
    # A key is limited wherever it comes from.
    async with from_address(tight) as elsewhere:
        assert_rate_limited(await post(elsewhere, a.key, VIEWER))


# --- rate limits per address, without a valid key ------------------------------------------------


async def test_requests_without_a_valid_key_are_limited_per_address(
        tight: AsyncTestClient[Any]) -> None:
    async with from_address(tight) as guesser, from_address(tight) as neighbour:
        no_key = await post(guesser, None, VIEWER)
        assert no_key.status_code == 401, no_key.text
        assert limit_headers(no_key) == (str(address_burst), "1", str(refill_s), None)
        bad_key = await post(guesser, "cor_test_" + "A" * 43, VIEWER)
        assert bad_key.status_code == 401, bad_key.text
        assert limit_headers(bad_key)[:2] == (str(address_burst), "0")
        assert_rate_limited(await post(guesser, "cor_test_" + "B" * 43, VIEWER), address_burst)
        assert_rate_limited(await post(guesser, None, VIEWER), address_burst)
        assert (await post(neighbour, "cor_test_" + "C" * 43, VIEWER)).status_code == 401


async def test_one_ipv6_subscriber_is_one_address(tight: AsyncTestClient[Any]) -> None:
    hosts = [f"2001:db8:77:1::{i}" for i in range(1, address_burst + 2)]
    statuses = []
    for host in hosts:
        async with from_address(tight, host) as c:
            statuses.append((await post(c, None, VIEWER)).status_code)
    assert statuses == [401] * address_burst + [429]
    async with from_address(tight, "2001:db8:77:2::1") as c:
        assert (await post(c, None, VIEWER)).status_code == 401


async def test_an_address_out_of_tokens_gets_no_new_key_looked_up(
        make_partner: MakePartner, tight: AsyncTestClient[Any]) -> None:
    """A 429 before the lookup costs the control plane nothing and says nothing about the key;
    a key that authenticated recently from there keeps working on its own bucket."""
    known, fresh = await make_partner("EU"), await make_partner("EU")
    async with from_address(tight) as shared, from_address(tight) as other:
        ok(await post(shared, known.key, VIEWER))
        for _ in range(address_burst):
            assert (await post(shared, None, VIEWER)).status_code == 401
        assert_rate_limited(await post(shared, fresh.key, VIEWER), address_burst)
        served = await post(shared, known.key, VIEWER)
        assert ok(served) == {"viewer": {"role": "partner_admin"}}
        assert limit_headers(served)[:2] == (str(key_burst), str(key_burst - 2))
        ok(await post(other, fresh.key, VIEWER))


async def test_health_checks_are_not_limited(tight: AsyncTestClient[Any]) -> None:
    async with from_address(tight) as c:
        for _ in range(address_burst + 1):
            await post(c, None, VIEWER)
        for _ in range(3):
            resp = await c.get("/healthz")
            assert resp.status_code == 200
            assert "ratelimit-limit" not in resp.headers


# --- one operation per request ------------------------------------------------------------------


async def test_batched_requests_are_refused(make_partner: MakePartner,
                                            client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await ledger(p)
    for batch in ([{"query": create_account("batch-1")}, {"query": VIEWER}],
                  [{"query": create_account("batch-2")}]):
        resp = await client.post("/graphql", json=batch,
                                 headers={"Authorization": f"Bearer {p.key}"})
        assert resp.status_code == 400, (resp.status_code, resp.text)
        assert "Batching is not enabled" in resp.text
        assert resp.headers["ratelimit-limit"] == str(rate_limit_burst)
    assert await ledger(p) == before


def operations(count: int) -> str:
    return "\n".join(f"mutation M{i} {{ createAccount(input: {{currency: \"EUR\", "
                     f'idempotencyKey: "op-{i}"}}) {{ __typename }} }}' for i in range(count))


@pytest.mark.parametrize("count", [2, 20])
async def test_several_operations_and_no_name_run_nothing(make_partner: MakePartner,
                                                          client: AsyncTestClient[Any],
                                                          count: int) -> None:
    """GraphQL's GetOperation() needs operationName to pick one (Strawberry ran the first)."""
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await ledger(p)
    resp = await post(client, p.key, operations(count))
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = resp.json()
    assert body.get("data") is None, body
    codes = [e["extensions"]["code"] for e in body["errors"]]
    capped = ["GRAPHQL_VALIDATION_FAILED"] if count > operations_per_document_max else []
    assert codes == [*capped, "OPERATION_RESOLUTION_FAILURE"], body
    assert body["errors"][-1]["message"] == (
        "Must provide operation name if query contains multiple operations."), body
    assert await ledger(p) == before


async def test_more_operations_than_the_cap_are_refused(make_partner: MakePartner,
                                                        client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    before = await ledger(p)
    count = operations_per_document_max + 1
    resp = await post(client, p.key, operations(count), operationName="M0")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["message"] == (
        f"The document defines {count} operations; at most {operations_per_document_max} are "
        "allowed, and one of them runs per request."), body
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await ledger(p) == before


async def test_only_the_named_operation_runs(make_partner: MakePartner,
                                             client: AsyncTestClient[Any]) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})
    accounts_before = len((await ledger(p))[0])
    doc = operations(operations_per_document_max - 1) + "\nquery Q { viewer { role } }"
    assert ok(await post(client, p.key, doc, operationName="M4")) == {
        "createAccount": {"__typename": "Account"}}
    assert ok(await post(client, p.key, doc, operationName="Q")) == {
        "viewer": {"role": "partner_admin"}}
    assert len((await ledger(p))[0]) == accounts_before + 1


# --- the request time limit ---------------------------------------------------------------------


def assert_timed_out(resp: httpx.Response) -> None:
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = resp.json()
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "TIMEOUT"}, body
    assert f"longer than {time_limit_s:g} s" in error["message"], body


async def test_a_slow_query_is_stopped(make_partner: MakePartner, hasty: AsyncTestClient[Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00})

    async def stuck(*_: Any, **__: Any) -> Any:
        await asyncio.sleep(3600)

    monkeypatch.setattr(regions.ledger_queries, "account_page", stuck)
    assert_timed_out(await post(hasty, p.key, ACCOUNTS))
    monkeypatch.undo()
    assert len(ok(await post(hasty, p.key, ACCOUNTS))["accounts"]["edges"]) == 1


async def test_a_slow_mutation_is_stopped_and_rolled_back(make_partner: MakePartner,
                                                         hasty: AsyncTestClient[Any],
                                                         router: Router,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The transfer is written, then its transaction hangs in the database: the time limit
    cancels the statement, the transaction rolls back, the idempotency key stays unused."""
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    before = await ledger(p)

    def hanging(real: Any) -> Any:
        async def hangs_after_writing(conn: Any, *args: Any, **kwargs: Any) -> Any:
            written = await real(conn, *args, **kwargs)
            await conn.execute(text("SELECT pg_sleep(60)"))
            return written

        return hangs_after_writing

    # The transfer's group hangs after writing, and so would the transfer alone.
    monkeypatch.setattr(regions.coalescer, "create_transfers_txn",
                        hanging(regions.coalescer.create_transfers_txn))
    monkeypatch.setattr(regions.commands, "create_transfer_txn",
                        hanging(regions.commands.create_transfer_txn))
    variables = {"input": {"fromAccountId": p.accounts[0], "toAccountId": p.accounts[1],
                           "amount": "10.00", "currency": "EUR", "idempotencyKey": "slow"}}
    assert_timed_out(await post(hasty, p.key, TRANSFER, variables))
    monkeypatch.undo()
    assert await ledger(p) == before

    async def still_sleeping(conn: Any) -> int:
        count: int = (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE state = 'active' AND query = 'SELECT pg_sleep(60)'"))).scalar_one()
        return count

    assert await router.run(p.region, still_sleeping) == 0  # psycopg cancelled the statement
    # Nothing holds the accounts' rows, and the same key now makes the one transfer.
    made = ok(await post(hasty, p.key, TRANSFER, variables))["createTransfer"]
    assert made["__typename"] == "Transfer", made
    balances, transfers = await ledger(p)
    assert sorted(transfers) == sorted([made["id"], *before[1]])
    assert balances[p.accounts[0]] == "90.00"
