"""The audit trail proves itself: rows are chained by the job, the database refuses UPDATE and
DELETE on the log and the chain, and ``corridor audit verify`` names every tampering (an
updated, deleted, inserted or reordered row) and a chain rewritten under an exported head.

Tampering goes around the triggers the way an attacker with the database's superuser would
(``session_replication_role = replica``), and each test puts the row back, so the chain is
whole again for the next."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import audit_chain, events
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import MakePrincipal, run_cli
from workers.maintenance import chain_region

region = "eu-central"


async def _tampered(router: Router, sql: str, **params: Any) -> list[Any]:
    """Run ``sql`` with the triggers off, as a superuser could."""
    async def body(conn: AsyncConnection) -> list[Any]:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        result = await conn.execute(text(sql), params)
        return list(result) if result.returns_rows else []

    return await router.run(region, body)


async def _verify(router: Router, expect: tuple[int, bytes] | None = None
                  ) -> audit_chain.Report:
    return await router.read(region, lambda c: audit_chain.verify(c, region, expect))


@pytest_asyncio.fixture(loop_scope="session")
async def chained(router: Router, make_principal: MakePrincipal,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    """A few fresh audit rows in eu-central, all chained; yields the newest three."""
    monkeypatch.setattr(audit_chain, "lag_s", 0)
    who = await make_principal("EU")
    for n in range(3):
        await router.run(region, lambda c, n=n: events.emit(
            c, region, who.tenant.id, "test.chained", {"n": n, "amount_minor": 100 + n},
            actor=who.actor, target=f"target-{n}"))
    await chain_region(router, region, 1_000)
    rows = await _tampered(router, """
        SELECT a.id, a.detail, c.seq FROM audit_events a
        JOIN audit_chain c ON c.region = a.region AND c.event_id = a.id
        WHERE a.region = :r AND a.tenant_id = :t ORDER BY c.seq DESC LIMIT 3""",
        r=region, t=who.tenant.id)
    assert len(rows) == 3
    report = await _verify(router)
    assert report.intact, report.breaks
    yield rows


async def test_the_job_chains_every_row_once(router: Router, chained: list[Any]) -> None:
    before = await _verify(router)
    assert await chain_region(router, region, 10) == 0
    after = await _verify(router)
    assert after.chained == before.chained
    assert after.head == before.head


@pytest.mark.parametrize("sql", [
    "UPDATE audit_events SET actor = 'someone' WHERE region = 'eu-central'",
    "DELETE FROM audit_events WHERE region = 'eu-central'",
    "UPDATE audit_chain SET hash = prev_hash WHERE region = 'eu-central'",
    "DELETE FROM audit_chain WHERE region = 'eu-central'",
])
async def test_the_database_refuses_changes_to_the_trail(router: Router, chained: list[Any],
                                                         sql: str) -> None:
    async def body(conn: AsyncConnection) -> None:
        await conn.execute(text(sql))

    with pytest.raises(DBAPIError, match="append-only") as refused:
        await router.run(region, body)
    assert getattr(refused.value.orig, "sqlstate", None) == "42501"


async def test_a_modified_row_is_named(router: Router, chained: list[Any]) -> None:
    victim = chained[1]
    await _tampered(router, """UPDATE audit_events SET detail = CAST(:d AS JSONB)
                               WHERE region = :r AND id = :id""",
                    d=json.dumps({**victim.detail, "amount_minor": 1}), r=region, id=victim.id)
    report = await _verify(router)
    assert [(b.kind, b.event_id, b.seq) for b in report.breaks] == [
        ("modified", victim.id, victim.seq)]
    await _tampered(router, """UPDATE audit_events SET detail = CAST(:d AS JSONB)
                               WHERE region = :r AND id = :id""",
                    d=json.dumps(victim.detail), r=region, id=victim.id)
    assert (await _verify(router)).intact


async def test_a_deleted_row_is_named(router: Router, chained: list[Any]) -> None:
    victim = chained[0]
    [saved] = await _tampered(router, "SELECT * FROM audit_events WHERE region = :r "
                              "AND id = :id", r=region, id=victim.id)
    await _tampered(router, "DELETE FROM audit_events WHERE region = :r AND id = :id",
                    r=region, id=victim.id)
    report = await _verify(router)
    assert [(b.kind, b.event_id) for b in report.breaks] == [("deleted", victim.id)]
    await _tampered(router, """
        INSERT INTO audit_events (region, id, tenant_id, actor, action, target, detail,
                                  created_at)
        VALUES (:region, :id, :tenant_id, :actor, :action, :target, CAST(:detail AS JSONB),
                :created_at)""", **{**saved._mapping, "detail": json.dumps(saved.detail)})
    assert (await _verify(router)).intact


async def test_a_row_inserted_behind_the_chain_is_named(router: Router,
                                                        chained: list[Any]) -> None:
    await _tampered(router, """
        INSERT INTO audit_events (region, id, tenant_id, actor, action, target, detail,
                                  created_at)
        VALUES (:r, 'aud_eu-central_forged', NULL, 'apikey:nobody', 'transfer.created', NULL,
                '{}', now() - interval '2 days')""", r=region)
    report = await _verify(router)
    assert [(b.kind, b.event_id) for b in report.breaks] == [
        ("inserted", "aud_eu-central_forged")]
    await _tampered(router, "DELETE FROM audit_events WHERE region = :r "
                    "AND id = 'aud_eu-central_forged'", r=region)
    assert (await _verify(router)).intact


async def _swap(router: Router, a: int, b: int) -> None:
    """Exchange two entries' places in the chain (through a free number: seq is a key)."""
    parked = 2**62
    for old, new in ((a, parked), (b, a), (parked, b)):
        await _tampered(router, "UPDATE audit_chain SET seq = :new WHERE region = :r "
                        "AND seq = :old", new=new, old=old, r=region)


async def test_reordered_entries_are_named(router: Router, chained: list[Any]) -> None:
    earlier, later = chained[1], chained[0]
    await _swap(router, earlier.seq, later.seq)
    report = await _verify(router)
    assert {(b.kind, b.seq) for b in report.breaks} == {("broken_link", earlier.seq),
                                                        ("broken_link", later.seq)}
    await _swap(router, earlier.seq, later.seq)
    assert (await _verify(router)).intact


async def test_a_rewritten_chain_is_caught_by_an_exported_head(router: Router,
                                                               chained: list[Any]) -> None:
    top = (await _verify(router)).head
    assert top is not None
    expect = (top.seq, top.hash)
    assert (await _verify(router, expect)).intact
    victim = chained[0]
    [saved] = await _tampered(router, "SELECT * FROM audit_chain WHERE region = :r "
                              "AND seq = :s", r=region, s=top.seq)
    [original] = await _tampered(router, "SELECT actor FROM audit_events WHERE region = :r "
                                 "AND id = :id", r=region, id=victim.id)
    # A forger edits the newest row and recomputes its entry so the chain looks whole.
    await _tampered(router, """UPDATE audit_events SET actor = 'apikey:forger'
                               WHERE region = :r AND id = :id""", r=region, id=victim.id)
    [row] = await _tampered(router, "SELECT * FROM audit_events WHERE region = :r "
                            "AND id = :id", r=region, id=victim.id)
    forged = audit_chain.link(bytes(saved.prev_hash), row)
    await _tampered(router, "UPDATE audit_chain SET hash = :h WHERE region = :r AND seq = :s",
                    h=forged, r=region, s=top.seq)
    assert (await _verify(router)).intact  # without an anchor, a rewrite can pass
    anchored = await _verify(router, expect)
    assert [(b.kind, b.seq) for b in anchored.breaks] == [("head_mismatch", top.seq)]
    await _tampered(router, "UPDATE audit_events SET actor = :a WHERE region = :r "
                    "AND id = :id", a=original.actor, r=region, id=victim.id)
    await _tampered(router, "UPDATE audit_chain SET hash = :h WHERE region = :r AND seq = :s",
                    h=bytes(saved.hash), r=region, s=top.seq)
    assert (await _verify(router, expect)).intact


def _cli(topo: Topology, urls: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(topo, urls, "audit", *args)


async def test_cli_verify_and_export_head(router: Router, topo: Topology, db_urls: DatabaseUrls,
                                          chained: list[Any], tmp_path: Path) -> None:
    exported = _cli(topo, db_urls, "export-head", "--region", region)
    assert exported.returncode == 0, exported.stderr
    [head] = json.loads(exported.stdout)
    assert head["region"] == region
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(exported.stdout, encoding="utf-8")
    ok = _cli(topo, db_urls, "verify", "--region", region, "--expect-heads", str(heads_file))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["intact"] is True
    victim = chained[2]
    [original] = await _tampered(router, "SELECT target FROM audit_events WHERE region = :r "
                                 "AND id = :id", r=region, id=victim.id)
    await _tampered(router, "UPDATE audit_events SET target = 'elsewhere' WHERE region = :r "
                    "AND id = :id", r=region, id=victim.id)
    try:
        broken = _cli(topo, db_urls, "verify", "--region", region)
        assert broken.returncode == 1, broken.stderr
        report = json.loads(broken.stdout)
        assert report["breaks"] == [{"kind": "modified", "seq": victim.seq,
                                     "event_id": victim.id,
                                     "detail": "the audit row no longer matches its hash"}]
    finally:
        await _tampered(router, "UPDATE audit_events SET target = :t WHERE region = :r "
                        "AND id = :id", t=original.target, r=region, id=victim.id)
    bad = _cli(topo, db_urls, "verify", "--region", "mars-north")
    assert bad.returncode == 2
    assert "unknown region" in bad.stderr


class _RolledBack(Exception):
    pass


async def test_a_region_never_chained_is_named_unchained(
        router: Router, make_principal: MakePrincipal, monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the chaining job never ran: the region's chain is removed (triggers off) inside a
    transaction that is then rolled back, and verify in it names the rows."""
    who = await make_principal("EU")
    await router.run(region, lambda c: events.emit(c, region, who.tenant.id, "test.unchained",
                                                   {}, actor=who.actor, target="t"))
    monkeypatch.setattr(audit_chain, "lag_s", 0)
    await chain_region(router, region, 1_000)
    monkeypatch.setattr(audit_chain, "grace_s", 0)
    found: list[audit_chain.Report] = []

    async def body(conn: AsyncConnection) -> None:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("DELETE FROM audit_chain WHERE region = :r"), {"r": region})
        found.append(await audit_chain.verify(conn, region))
        raise _RolledBack

    with pytest.raises(_RolledBack):
        await router.run(region, body)
    [report] = found
    assert report.head is None
    assert report.breaks
    assert {b.kind for b in report.breaks} == {"unchained"}
    assert (await _verify(router)).head is not None  # rolled back: the chain is still there
