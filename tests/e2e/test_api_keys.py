"""API keys for partner admins: a new key is shown once and works at once; keys list without
secrets; revocation stops a key in every process within about a second (here: the next request
after a second); expiry stops it at its time; roles and bad input are refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from api import auth
from payments.principal import Role
from regions.router import Router
from tests.e2e.conftest import MakePartner, Partner

CREATE = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { __typename
  ... on ApiKeySecret { key apiKey { id role prefix label expiresAt revokedAt lastUsedAt } }
  ... on Error { code message } ... on ValidationError { field } } }"""
REVOKE = """mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { __typename
  ... on ApiKey { id revokedAt } ... on Error { code message } ... on ValidationError { field }
} }"""
LIST = """query($first: Int, $after: String) { apiKeys(first: $first, after: $after) {
  edges { node { id role prefix label createdAt expiresAt lastUsedAt revokedAt } }
  pageInfo { hasNextPage endCursor } } }"""
VIEWER = "{ viewer { tenant { id } } }"


async def _create(p: Partner, key: str, **over: Any) -> dict[str, Any]:
    got = await p.gql(CREATE, {"i": {"role": "PARTNER_READONLY", "label": "reporting",
                                     "idempotencyKey": key, **over}})
    result: dict[str, Any] = got["data"]["createApiKey"]
    return result


async def _works(p: Partner, key: str) -> bool:
    """True for an answer, False for a 401 (anything else fails the test)."""
    resp = await p.client.post("/graphql", json={"query": VIEWER},
                               headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code in (200, 401), (resp.status_code, resp.text)
    return resp.status_code == 200


async def test_a_new_key_is_shown_once_and_works(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    made = await _create(p, "k1")
    assert made["__typename"] == "ApiKeySecret", made
    secret = made["key"]
    assert secret.startswith("cor_test_")
    assert made["apiKey"]["prefix"] == secret[:16]
    assert await _works(p, secret)
    replay = await _create(p, "k1")
    assert (replay["key"], replay["apiKey"]["id"]) == (None, made["apiKey"]["id"])
    conflict = await _create(p, "k1", label="other")
    assert conflict["__typename"] == "IdempotencyConflict", conflict
    listed = (await p.gql(LIST, {"first": 100}))["data"]["apiKeys"]["edges"]
    nodes = {n["node"]["id"]: n["node"] for n in listed}
    assert nodes[made["apiKey"]["id"]]["label"] == "reporting"
    assert len(nodes) == 2  # the fixture's key and this one
    assert nodes[made["apiKey"]["id"]]["lastUsedAt"] is not None
    readonly = await p.gql(CREATE, {"i": {"role": "PARTNER_ADMIN", "idempotencyKey": "x"}},
                           key=secret)
    assert readonly["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_revocation_takes_effect_within_a_second(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    made = await _create(p, "k1")
    secret = made["key"]
    assert await _works(p, secret)  # cached now
    got = await p.gql(REVOKE, {"i": {"keyId": made["apiKey"]["id"], "idempotencyKey": "r"}})
    assert got["data"]["revokeApiKey"]["revokedAt"] is not None, got
    await asyncio.sleep(auth.revocation_check_s + 0.2)
    assert not await _works(p, secret)
    again = await p.gql(REVOKE, {"i": {"keyId": made["apiKey"]["id"], "idempotencyKey": "r2"}})
    assert again["data"]["revokeApiKey"]["revokedAt"] == got["data"]["revokeApiKey"]["revokedAt"]
    assert await _works(p, p.key)  # the admin's own key is untouched


async def test_an_expired_key_stops_working(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    made = await _create(p, "k1", expiresAt=soon)
    assert await _works(p, made["key"])
    await asyncio.sleep(2.5)
    assert not await _works(p, made["key"])


async def test_another_tenants_key_is_not_found(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    other = await make_partner("EU")
    theirs = await _create(other, "k1")
    got = await p.gql(REVOKE, {"i": {"keyId": theirs["apiKey"]["id"], "idempotencyKey": "r"}})
    assert got["data"]["revokeApiKey"]["__typename"] == "NotFound", got
    assert await _works(other, theirs["key"])


@pytest.mark.parametrize(("over", "field"), [
    ({"label": "x" * 101}, "label"),
    ({"label": "a\x00b"}, "label"),
    ({"expiresAt": "2000-01-01T00:00:00+00:00"}, "expiresAt"),
    ({"expiresAt": "2099-01-01T00:00:00+00:00"}, "expiresAt"),
    ({"idempotencyKey": ""}, "idempotencyKey"),
])
async def test_create_bad_input(make_partner: MakePartner, over: dict[str, Any],
                                field: str) -> None:
    p = await make_partner("EU")
    got = await _create(p, "k", **over)
    assert (got["__typename"], got.get("field")) == ("ValidationError", field), got
    listed = (await p.gql(LIST, {"first": 100}))["data"]["apiKeys"]["edges"]
    assert len(listed) == 1


@pytest.mark.parametrize("role", ["COMPLIANCE_OFFICER", "SRE", "OWNER"])
async def test_operator_roles_cannot_be_issued_by_partners(make_partner: MakePartner,
                                                           role: str) -> None:
    p = await make_partner("EU")
    got = await p.gql(CREATE, {"i": {"role": role, "idempotencyKey": "k"}})
    assert got["errors"], got


@pytest.mark.parametrize("key_id", ["", "acc_eu-central_01M8WW5VQK1RYBJKZGZ7YHJFVH", "garbage"])
async def test_revoke_bad_input(make_partner: MakePartner, key_id: str) -> None:
    p = await make_partner("EU")
    got = await p.gql(REVOKE, {"i": {"keyId": key_id, "idempotencyKey": "r"}})
    result = got["data"]["revokeApiKey"]
    assert (result["__typename"], result.get("field")) == ("ValidationError", "keyId"), got


@pytest.mark.parametrize("role", [Role.PARTNER_READONLY, Role.AUDITOR,
                                  Role.COMPLIANCE_OFFICER, Role.SRE])
async def test_only_partner_admins_manage_keys(make_partner: MakePartner, role: Role) -> None:
    p = await make_partner("EU", role=role)
    for query, variables in ((LIST, {"first": 1}),
                             (CREATE, {"i": {"role": "AUDITOR", "idempotencyKey": "k"}})):
        got = await p.gql(query, variables)
        assert got["errors"][0]["extensions"]["code"] == "FORBIDDEN", got


async def test_key_creation_and_revocation_are_audited_once(make_partner: MakePartner,
                                                            router: Router) -> None:
    p = await make_partner("EU")
    made = await _create(p, "aud-1")
    await _create(p, "aud-1")  # a replay
    key_id = made["apiKey"]["id"]
    for n in range(2):
        await p.gql(REVOKE, {"i": {"keyId": key_id, "idempotencyKey": f"rv{n}"}})

    async def trail(conn: Any) -> list[Any]:
        return list(await conn.execute(text(
            "SELECT action, actor, tenant_id, detail FROM control_audit_events "
            "WHERE target = :k ORDER BY created_at, id"), {"k": key_id}))

    rows = await router.read_control(trail)
    assert [r.action for r in rows] == ["api_key.created", "api_key.revoked"]
    assert {r.tenant_id for r in rows} == {p.tenant_id}
    assert all(r.actor.startswith("apikey:key_") for r in rows)
    assert rows[0].detail["role"] == "partner_readonly"
    assert made["key"] not in str(rows[0].detail)
