from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

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
CHANGES = """{ policyChangeRequests(first: 100) { edges { node { id effectiveFrom } } } }"""


async def test_probe(make_partner: MakePartner) -> None:
    a = await make_partner("CN", role=Role.COMPLIANCE_OFFICER)
    b = await make_partner("CN", role=Role.COMPLIANCE_OFFICER)
    out = await a.gql(PROPOSE, {"i": {"jurisdiction": "CN", "changes": {"fx_spread_bps_default": 10},
        "reason": "r", "effectiveFrom": "0001-01-01T00:00:00+01:00", "idempotencyKey": "k"}})
    print("BC", out)
    print("LIST", await a.gql(CHANGES))
    # concurrency
    ids_ = []
    for i in range(5):
        out = await a.gql(PROPOSE, {"i": {"jurisdiction": "HK", "changes": {"fx_spread_bps_default": 10 + i},
            "reason": "r", "idempotencyKey": f"c{i}"}})
        print(out)
    h1 = await make_partner("HK", role=Role.COMPLIANCE_OFFICER)
    h2 = await make_partner("HK", role=Role.COMPLIANCE_OFFICER)
    for i in range(5):
        out = await h1.gql(PROPOSE, {"i": {"jurisdiction": "HK", "changes": {"fx_spread_bps_default": 10 + i},
            "reason": "r", "idempotencyKey": f"c{i}"}})
        ids_.append(out["data"]["proposePolicyChange"]["id"])
    res = await asyncio.gather(*[h2.gql(APPROVE, {"i": {"changeId": c, "idempotencyKey": "x"}}) for c in ids_])
    for r in res:
        print("CONC", r)
