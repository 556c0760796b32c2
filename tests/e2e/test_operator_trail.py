"""Operators' commands are in the control plane's audit trail, named by the operator, and the
trail's chain verifies (``corridor audit verify --region control``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest
from sqlalchemy import text

from regions import audit_chain
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import run_cli
from workers.maintenance import chain_region


def _cli(topo: Topology, urls: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(topo, urls, *args, USER="ops-alice")


async def _trail(router: Router, target: str) -> list[Any]:
    async def body(conn: Any) -> list[Any]:
        return list(await conn.execute(text(
            "SELECT actor, action, detail FROM control_audit_events WHERE target = :t "
            "ORDER BY created_at, id"), {"t": target}))

    return await router.read_control(body)


async def test_operator_commands_are_audited_and_the_trail_verifies(
        router: Router, topo: Topology, db_urls: DatabaseUrls,
        monkeypatch: pytest.MonkeyPatch) -> None:
    made = await asyncio.to_thread(_cli, topo, db_urls, "tenant", "create", "Trail Ltd",
                                   "--jurisdiction", "EU")
    assert made.returncode == 0, made.stderr
    tenant_id = json.loads(made.stdout)["id"]
    spread = await asyncio.to_thread(_cli, topo, db_urls, "tenant", "set-fx-spread", tenant_id,
                                     "25")
    assert spread.returncode == 0, spread.stderr
    key = await asyncio.to_thread(_cli, topo, db_urls, "apikey", "create", "--tenant",
                                  tenant_id, "--role", "partner_admin")
    assert key.returncode == 0, key.stderr
    issued = json.loads(key.stdout)

    trail = await _trail(router, tenant_id)
    assert [(t.actor, t.action) for t in trail] == [
        ("cli:ops-alice", "tenant.created"), ("cli:ops-alice", "tenant.fx_spread_set")]
    assert trail[1].detail == {"fx_spread_bps": 25}
    [created] = await _trail(router, issued["id"])
    assert (created.action, created.detail["role"]) == ("api_key.created", "partner_admin")
    assert issued["key"] not in json.dumps(created.detail)

    monkeypatch.setattr(audit_chain, "lag_s", 0)
    await chain_region(router, audit_chain.control, 1_000)
    verify = await asyncio.to_thread(_cli, topo, db_urls, "audit", "verify", "--region",
                                     "control")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert (report["region"], report["intact"]) == ("control", True)
    assert report["chained"] >= 3
