from __future__ import annotations

import asyncio
import collections

import httpx

from payments.principal import Role
from tests.e2e.conftest import MakePartner

PROPOSE = """mutation($i: ProposePolicyChangeInput!) { proposePolicyChange(input: $i) {
  __typename ... on PolicyChangeRequest { id status baseVersion changes effectiveFrom version }
  ... on Error { code message } ... on ValidationError { field } } }"""
APPROVE = """mutation($i: DecidePolicyChangeInput!) { approvePolicyChange(input: $i) {
  __typename ... on PolicyChangeRequest { id status version }
  ... on Error { code message } ... on ValidationError { field } } }"""


async def test_probe(make_partner: MakePartner) -> None:
    h1 = await make_partner("HK", role=Role.COMPLIANCE_OFFICER)
    h2 = await make_partner("HK", role=Role.COMPLIANCE_OFFICER)
    tally = collections.Counter()
    transport = httpx.ASGITransport(app=h1.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://corridor.test") as raw:
        for rnd in range(10):
            ids_ = []
            for i in range(8):
                out = await h1.gql(PROPOSE, {"i": {"jurisdiction": "HK", "changes": {"fx_spread_bps_default": 10 + i},
                    "reason": "r", "idempotencyKey": f"c{rnd}-{i}"}})
                ids_.append(out["data"]["proposePolicyChange"]["id"])
            async def race(c):
                r = await raw.post("/graphql", headers={"Authorization": f"Bearer {h2.key}"},
                                   json={"query": APPROVE, "variables": {"i": {"changeId": c, "idempotencyKey": "x"}}})
                return r.json()
            res = await asyncio.gather(*[race(c) for c in ids_])
            for r in res:
                d = r.get("data") or {}
                tally[(d.get("approvePolicyChange") or {}).get("__typename") or str(r.get("errors"))[:100]] += 1
    print("TALLY", tally)
