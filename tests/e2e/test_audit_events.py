"""``auditEvents`` for auditors: the tenant's own trail, newest first, paged, with each row's
place in the region's hash chain once chained; other tenants' rows never appear; other roles
are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from api.auth import FailedAuthTrail
from payments.principal import Role
from regions import audit_chain, tenants
from regions.router import Router
from tests.conftest import test_pepper
from tests.e2e.conftest import MakePartner, Partner
from workers.maintenance import chain_region

EVENTS = """query($first: Int, $after: String) { auditEvents(first: $first, after: $after) {
  edges { cursor node { id action actor target detail origin createdAt chainSeq chainHash } }
  pageInfo { hasNextPage endCursor } } }"""
ACCOUNT = """mutation($i: CreateAccountInput!) { createAccount(input: $i) {
  ... on Account { id } } }"""


async def _auditor(router: Router, p: Partner) -> str:
    async def body(conn: Any) -> str:
        return (await tenants.create_api_key(conn, test_pepper, p.tenant_id,
                                             Role.AUDITOR)).key

    return await router.run_control(body)


async def test_auditors_read_their_tenants_trail_with_its_chain(
        router: Router, make_partner: MakePartner, monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU")
    other = await make_partner("EU")
    for n in range(3):
        got = await p.gql(ACCOUNT, {"i": {"currency": "EUR", "idempotencyKey": f"a{n}"}})
        assert got["data"]["createAccount"]["id"], got
    await other.gql(ACCOUNT, {"i": {"currency": "EUR", "idempotencyKey": "x"}})
    key = await _auditor(router, p)

    first = await p.gql(EVENTS, {"first": 2}, key=key)
    page = first["data"]["auditEvents"]
    assert [e["node"]["action"] for e in page["edges"]] == ["account.created"] * 2
    assert page["pageInfo"]["hasNextPage"] is True
    assert all(e["node"]["chainSeq"] is None for e in page["edges"])  # not chained yet
    rest = await p.gql(EVENTS, {"first": 100, "after": page["pageInfo"]["endCursor"]}, key=key)
    nodes = [e["node"] for e in page["edges"] + rest["data"]["auditEvents"]["edges"]]
    assert len(nodes) == 3
    assert all(n["actor"].startswith("apikey:key_") for n in nodes)
    assert {n["origin"] for n in nodes} == {"testclient"}  # the test client's address

    monkeypatch.setattr(audit_chain, "lag_s", 0)
    await chain_region(router, p.region, 1_000)
    chained = (await p.gql(EVENTS, {"first": 100}, key=key))["data"]["auditEvents"]["edges"]
    seqs = [e["node"]["chainSeq"] for e in chained]
    assert all(isinstance(s, int) for s in seqs)
    assert seqs == sorted(seqs, reverse=True)
    assert all(len(e["node"]["chainHash"]) == 64 for e in chained)


@pytest.mark.parametrize("role", [Role.PARTNER_ADMIN, Role.PARTNER_READONLY,
                                  Role.COMPLIANCE_OFFICER, Role.SRE])
async def test_other_roles_may_not_read_the_trail(make_partner: MakePartner,
                                                  role: Role) -> None:
    p = await make_partner("EU", role=role)
    got = await p.gql(EVENTS, {"first": 1})
    assert got["errors"][0]["extensions"]["code"] == "FORBIDDEN", got


@pytest.mark.parametrize("variables", [{"first": 0}, {"first": 101}, {"after": "garbage"},
                                       {"after": "YWNjOmFjY19ldS1jZW50cmFs"}])
async def test_audit_events_bad_arguments(router: Router, make_partner: MakePartner,
                                          variables: dict[str, Any]) -> None:
    p = await make_partner("EU")
    got = await p.gql(EVENTS, variables, key=await _auditor(router, p))
    assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", got


async def _control_rows(router: Router, action: str) -> list[Any]:
    async def body(conn: Any) -> list[Any]:
        return list((await conn.execute(text(
            "SELECT * FROM control_audit_events WHERE action = :a ORDER BY created_at, id"),
            {"a": action})).all())

    return await router.read_control(body)


async def test_failed_authentications_are_in_the_control_trail_without_the_key(
        router: Router, make_partner: MakePartner, monkeypatch: pytest.MonkeyPatch) -> None:
    p = await make_partner("EU")
    before = len(await _control_rows(router, "auth.failed"))
    wrong = p.key[:-4] + ("AAAA" if not p.key.endswith("AAAA") else "BBBB")
    for key in (wrong, "not-a-key", None):
        got = await p.client.post("/graphql", json={"query": "{ accounts { edges { cursor } } }"},
                                  headers={"Authorization": f"Bearer {key}"} if key else {})
        assert got.status_code == 401, got.text
    rows = (await _control_rows(router, "auth.failed"))[before:]
    assert [(r.detail["reason"], r.detail["key_prefix"]) for r in rows] == [
        ("invalid_key", p.key[:tenants.key_display_length]), ("invalid_key", None),
        ("no_key", None)]
    assert {r.actor for r in rows} == {"anonymous"}
    assert {r.origin for r in rows} == {"testclient"}
    assert all(wrong not in str(r.detail) for r in rows)

    monkeypatch.setattr(audit_chain, "lag_s", 0)
    await chain_region(router, audit_chain.control, 1_000)
    report = await router.read_control(lambda conn: audit_chain.verify(conn, audit_chain.control))
    assert report.intact, report.breaks
    assert report.chained >= len(rows)


async def test_failed_authentications_beyond_the_bound_are_counted_not_written(
        router: Router) -> None:
    trail = FailedAuthTrail(rows_per_s=2)
    before = len(await _control_rows(router, "auth.failed"))
    for _ in range(5):
        await trail.record(router, "203.0.113.9", "Bearer nope")
    rows = (await _control_rows(router, "auth.failed"))[before:]
    assert len(rows) in (2, 3, 4)  # 2 a second; the loop may straddle a second boundary
    assert rows[0].detail["address"] == "203.0.113.9"
    await asyncio.sleep(1.05)
    await trail.record(router, "203.0.113.9", "Bearer nope")
    rows = (await _control_rows(router, "auth.failed"))[before:]
    assert sum(r.detail["left_out_before"] for r in rows) + len(rows) == 6
