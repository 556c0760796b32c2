from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from payments.principal import Role
from tests.e2e.conftest import MakePartner

PROPOSE = """mutation($i: ProposePolicyChangeInput!) { proposePolicyChange(input: $i) {
  __typename ... on PolicyChangeRequest { id status baseVersion changes effectiveFrom version }
  ... on Error { code message } ... on ValidationError { field } } }"""
APPROVE = """mutation($i: DecidePolicyChangeInput!) { approvePolicyChange(input: $i) {
  __typename ... on PolicyChangeRequest { id status version }
  ... on Error { code message } ... on ValidationError { field } } }"""
POLICY = """query($j: String!) { policy(jurisdiction: $j) { __typename ... on Policy { version
  effectiveFrom versions { version effectiveFrom changeId } parameters { name value } } } }"""


async def test_probe(make_partner: MakePartner, router) -> None:
    h1 = await make_partner("HK", role=Role.COMPLIANCE_OFFICER)
    h2 = await make_partner("HK", role=Role.COMPLIANCE_OFFICER)
    ids_ = []
    for i in range(5):
        out = await h1.gql(PROPOSE, {"i": {"jurisdiction": "HK", "changes": {"fx_spread_bps_default": 10 + i},
            "reason": "r", "idempotencyKey": f"c{i}"}})
        ids_.append(out["data"]["proposePolicyChange"]["id"])
    transport = httpx.ASGITransport(app=h1.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://corridor.test") as raw:
        async def race(c):
            r = await raw.post("/graphql", headers={"Authorization": f"Bearer {h2.key}"},
                               json={"query": APPROVE, "variables": {"i": {"changeId": c, "idempotencyKey": "x"}}})
            return r.json()
        res = await asyncio.gather(*[race(c) for c in ids_])
    for r in res:
        print("CONC", r)
    # future then now
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    e1 = await make_partner("SG", role=Role.COMPLIANCE_OFFICER)
    e2 = await make_partner("SG", role=Role.COMPLIANCE_OFFICER)
    a = (await e1.gql(PROPOSE, {"i": {"jurisdiction": "SG", "changes": {"review_threshold": "100.00"},
            "reason": "r", "effectiveFrom": soon, "idempotencyKey": "f"}}))["data"]["proposePolicyChange"]
    print(await e2.gql(APPROVE, {"i": {"changeId": a["id"], "idempotencyKey": "x"}}))
    b = (await e1.gql(PROPOSE, {"i": {"jurisdiction": "SG", "changes": {"fx_spread_bps_default": 7},
            "reason": "r", "idempotencyKey": "g"}}))["data"]["proposePolicyChange"]
    print(await e2.gql(APPROVE, {"i": {"changeId": b["id"], "idempotencyKey": "y"}}))
    pol = (await e1.gql(POLICY, {"j": "SG"}))["data"]["policy"]
    print(pol["version"], pol["versions"], [p for p in pol["parameters"] if p["name"] in ("review_threshold", "fx_spread_bps_default")])
    print(await e2.gql(APPROVE, {"i": {"changeId": b["id"], "idempotencyKey": "y"}}))
    async def audit(conn):
        return (await conn.execute(text("select action, target from audit_events where target = :t"), {"t": b["id"]})).all()
    print(await router.run(e2.region, audit))
    async def vers(conn):
        return (await conn.execute(text("select version, parameters->'review_threshold', parameters->'fx_spread_bps_default' from policy_versions where jurisdiction='SG'"))).all()
    print(await router.run_control(vers))
    async def ch(conn):
        return (await conn.execute(text("select id, changes, base_version from policy_changes where jurisdiction='SG'"))).all()
    print(await router.run_control(ch))
