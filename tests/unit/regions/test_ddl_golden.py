"""The migration DDL for both dialects: golden files plus structural checks.

CockroachDB cannot run here, so its DDL is pinned by a golden file and, independently of the
golden file, checked for the facts that matter: regional tables are REGIONAL BY ROW on a
``crdb_internal_region`` column leading the primary key, control tables are GLOBAL, and each
cluster's database regions are its own regions and come first. PostgreSQL gets one LIST
partition per (regional table, region of the cluster).

Regenerate the golden files after an intended DDL change with::

    CORRIDOR_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/regions/test_ddl_golden.py
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from regions import migrate
from regions.ddl import Dialect, Statement, partition_name, region_map_record
from regions.migrations import migrations
from regions.topology import Topology, parse

repo = Path(__file__).resolve().parents[3]
golden_dir = Path(__file__).resolve().parent / "golden"
corridor_bin = repo / ".venv" / "bin" / "corridor"
regenerate = "CORRIDOR_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/regions/test_ddl_golden.py"

regional_tables = ("accounts", "journals", "transfers", "entries", "idempotency_keys", "outbox",
                   "audit_events", "fx_quotes", "virtual_accounts", "data_keys", "beneficiaries",
                   "payouts", "payout_batches", "incoming_payments",
                   "webhook_endpoints", "webhook_deliveries", "message_inbox",
                   "review_cases", "limit_usage", "audit_chain", "xr_streams", "xr_outbox",
                   "xr_inbox", "xr_payouts", "settlement_obligations", "settlement_batches")
control_tables = ("regions", "tenants", "api_keys", "corridor_migrations", "fx_rates",
                  "fx_rates_held", "fx_refreshes", "inbox", "scheduler_leases",
                  "account_directory", "policy_versions", "policy_changes", "sanctions_lists",
                  "sanctions_entries", "control_audit_events", "control_audit_chain")
global_regions = ("eu-central", "uk-south", "us-east", "ap-southeast")
all_applied = {t: {m.version for m in migrations}
               for t in ("control", "cluster:global", "cluster:cn")}

_create = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+) \(")
_partition = re.compile(
    r"CREATE TABLE IF NOT EXISTS (\w+) PARTITION OF (\w+) FOR VALUES IN \('([a-z0-9-]+)'\)")
_index = re.compile(r"CREATE (?:UNIQUE )?INDEX (\w+) ON (\w+) \(([^)]*)\)")
_primary_key = re.compile(r"PRIMARY KEY \(([^)]*)\)")


def _plan(topo: Topology, dialect: Dialect, **kw: Any) -> list[Statement]:
    return migrate.plan(topo, dialect, **kw)


def _recorded(topo: Topology) -> dict[str, str]:
    """What a previous run of ``corridor migrate`` recorded for every cluster."""
    return {f"cluster:{c.name}": region_map_record(topo.database_regions(c.name))
            for c in topo.clusters}


def _by_db(statements: list[Statement]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in statements:
        out.setdefault(s.database, []).append(s.sql)
    return out


def _creates(sqls: list[str]) -> dict[str, str]:
    """Table name -> its CREATE TABLE statement (not partitions)."""
    out: dict[str, str] = {}
    for sql in sqls:
        m = _create.match(sql)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} created twice"
            out[m.group(1)] = sql
    return out


def _columns(create_sql: str) -> list[str]:
    body = create_sql[create_sql.index("(") + 1: create_sql.rindex(")")]
    return [line.strip().rstrip(",") for line in body.splitlines() if line.strip()]


def _pk(create_sql: str) -> list[str]:
    m = _primary_key.search(create_sql)
    if m:
        return [c.strip() for c in m.group(1).split(",")]
    return [c.split()[0] for c in _columns(create_sql) if "PRIMARY KEY" in c]


# --- golden files --------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", list(Dialect))
def test_golden(topo: Topology, dialect: Dialect) -> None:
    actual = migrate.render(_plan(topo, dialect))
    path = golden_dir / f"{dialect.value}.sql"
    if os.environ.get("CORRIDOR_UPDATE_GOLDEN") == "1":
        golden_dir.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing; create it with:\n    {regenerate}"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(itertools.islice(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"golden/{path.name}", tofile="render(plan(load()))"), 200))
        pytest.fail(
            f"The {dialect.value} DDL differs from {path}.\n"
            f"If the change is intended, review it and regenerate the golden files with:\n"
            f"    {regenerate}\n\n{diff}", pytrace=False)


def test_golden_files_are_distinct_and_complete() -> None:
    crdb = (golden_dir / "cockroachdb.sql").read_text(encoding="utf-8")
    pg = (golden_dir / "postgresql.sql").read_text(encoding="utf-8")
    assert crdb != pg
    for text in (crdb, pg):
        headers = re.findall(r"^-- database: (\S+)$", text, flags=re.MULTILINE)
        assert headers == ["control", "cluster:global", "cluster:cn"]
        assert text.endswith(";\n")


# --- render --------------------------------------------------------------------------------------


def test_render_groups_statements_under_one_header_per_database(topo: Topology) -> None:
    statements = _plan(topo, Dialect.POSTGRESQL)
    text = migrate.render(statements)
    assert text.startswith("-- database: control\n")
    assert text.count("-- database: ") == 3
    assert text.count(";\n") == len(statements)
    assert migrate.render([]) == "\n"


# --- CockroachDB structure -----------------------------------------------------------------------


def test_crdb_plan_targets(topo: Topology) -> None:
    dbs = _by_db(_plan(topo, Dialect.COCKROACHDB))
    assert list(dbs) == ["control", "cluster:global", "cluster:cn"]


def test_crdb_cn_regional_tables_are_regional_by_row_on_region(topo: Topology) -> None:
    """Cluster cn is self-hosted with its nodes' locality named by the code: ``region`` itself
    homes each row."""
    creates = _creates(_by_db(_plan(topo, Dialect.COCKROACHDB))["cluster:cn"])
    assert set(creates) == {*regional_tables, "corridor_migrations"}
    for table in regional_tables:
        sql = creates[table]
        assert sql.endswith("\n) LOCALITY REGIONAL BY ROW AS region"), sql
        cols = _columns(sql)
        assert cols[0] == "region crdb_internal_region NOT NULL", table
        assert sum(c.startswith("region ") for c in cols) == 1, table
        assert _pk(sql)[0] == "region", table
        assert "crdb_region" not in sql
        assert "PARTITION BY" not in sql


def _case_map(sql: str) -> dict[str, str]:
    m = re.search(r"crdb_region crdb_internal_region NOT VISIBLE NOT NULL "
                  r"AS \(CASE region ((?:WHEN '[^']+' THEN '[^']+' ?)+)END\) STORED", sql)
    assert m, sql
    return dict(re.findall(r"WHEN '([^']+)' THEN '([^']+)'", m.group(1)))


def test_crdb_global_regional_tables_are_homed_by_the_computed_database_region(
    topo: Topology,
) -> None:
    """CockroachDB Cloud names its regions after the cloud's: rows keep Corridor's code in a
    text ``region`` and are homed by a hidden column computed from it, mapping every region of
    the cluster (and nothing else) to its database_region."""
    creates = _creates(_by_db(_plan(topo, Dialect.COCKROACHDB))["cluster:global"])
    assert set(creates) == {*regional_tables, "corridor_migrations"}
    expected = topo.database_regions("global")
    assert expected["eu-central"] == "eu-central-1"
    for table in regional_tables:
        sql = creates[table]
        assert sql.endswith("\n) LOCALITY REGIONAL BY ROW AS crdb_region"), sql
        cols = _columns(sql)
        assert cols[0] == "region TEXT NOT NULL", table
        assert cols[-1].startswith("crdb_region crdb_internal_region NOT VISIBLE NOT NULL"), table
        assert _case_map(sql) == expected, table
        assert _pk(sql)[0] == "region", table
        assert "PARTITION BY" not in sql


def test_crdb_control_tables_are_global(topo: Topology) -> None:
    dbs = _by_db(_plan(topo, Dialect.COCKROACHDB))
    creates = _creates(dbs["control"])
    assert set(creates) == set(control_tables)
    for table in control_tables:
        assert creates[table].endswith("\n) LOCALITY GLOBAL"), creates[table]
        assert "crdb_internal_region" not in creates[table]
    for target in ("cluster:global", "cluster:cn"):
        assert _creates(dbs[target])["corridor_migrations"].endswith("\n) LOCALITY GLOBAL")


def test_crdb_every_create_table_has_a_locality(topo: Topology) -> None:
    for s in _plan(topo, Dialect.COCKROACHDB):
        if s.sql.startswith("CREATE TABLE"):
            assert re.search(r"\) LOCALITY (GLOBAL|REGIONAL BY ROW AS (region|crdb_region))$",
                             s.sql), s.sql


def test_crdb_global_cluster_database_regions(topo: Topology) -> None:
    sqls = _by_db(_plan(topo, Dialect.COCKROACHDB))["cluster:global"]
    alters = [s for s in sqls if s.startswith("ALTER DATABASE")]
    assert alters == [
        'ALTER DATABASE corridor SET PRIMARY REGION "eu-central-1"',
        'ALTER DATABASE corridor ADD REGION IF NOT EXISTS "eu-west-2"',
        'ALTER DATABASE corridor ADD REGION IF NOT EXISTS "us-east-1"',
        'ALTER DATABASE corridor ADD REGION IF NOT EXISTS "ap-southeast-1"',
    ]
    assert not any("cn-east" in s for s in sqls), "the sovereign region leaked into cluster global"


def test_crdb_cn_cluster_has_only_cn_east(topo: Topology) -> None:
    sqls = _by_db(_plan(topo, Dialect.COCKROACHDB))["cluster:cn"]
    alters = [s for s in sqls if s.startswith("ALTER DATABASE")]
    assert alters == ['ALTER DATABASE corridor SET PRIMARY REGION "cn-east"']
    for other in global_regions:
        assert not any(other in s for s in sqls), f"{other} appears in cluster cn"


def test_crdb_database_name_is_configurable(topo: Topology) -> None:
    sqls = [s.sql for s in _plan(topo, Dialect.COCKROACHDB, crdb_database="payments")]
    alters = [s for s in sqls if s.startswith("ALTER DATABASE")]
    assert alters
    assert all(s.startswith("ALTER DATABASE payments ") for s in alters)


def test_crdb_database_regions_come_before_regional_by_row_tables(topo: Topology) -> None:
    dbs = _by_db(_plan(topo, Dialect.COCKROACHDB))
    for target in ("cluster:global", "cluster:cn"):
        sqls = dbs[target]
        last_alter = max(i for i, s in enumerate(sqls) if s.startswith("ALTER DATABASE"))
        first_rbr = min(i for i, s in enumerate(sqls) if "REGIONAL BY ROW" in s)
        assert last_alter < first_rbr, target
        assert sqls[0].startswith("ALTER DATABASE corridor SET PRIMARY REGION"), target


def test_crdb_every_database_is_multi_region_before_any_locality(topo: Topology) -> None:
    """CockroachDB refuses ``LOCALITY`` (GLOBAL included) in a database without a primary region:
    "cannot set LOCALITY on a table in a database that is not multi-region enabled". So every
    target, the control plane's too, must set its primary region before its first LOCALITY table.
    """
    dbs = _by_db(_plan(topo, Dialect.COCKROACHDB))
    for target, sqls in dbs.items():
        first_locality = min(i for i, s in enumerate(sqls) if "LOCALITY" in s)
        primary = [i for i, s in enumerate(sqls) if "SET PRIMARY REGION" in s]
        assert primary, (
            f"{target}: LOCALITY table at statement {first_locality} but no "
            f"ALTER DATABASE ... SET PRIMARY REGION at all "
            f"(statements: {[s[:50] for s in sqls]})")
        assert primary[0] < first_locality, (
            f"{target}: LOCALITY table at statement {first_locality} but no earlier "
            f"ALTER DATABASE ... SET PRIMARY REGION (statements: {[s[:50] for s in sqls]})")


def test_indexes_on_regional_tables_lead_with_region(topo: Topology) -> None:
    for dialect in Dialect:
        for s in _plan(topo, dialect):
            m = _index.match(s.sql)
            if m and m.group(2) in regional_tables:
                assert m.group(3).split(",")[0].strip() == "region", (dialect, s.sql)


# --- PostgreSQL structure ------------------------------------------------------------------------


def test_pg_regional_tables_are_partitioned_by_region(topo: Topology) -> None:
    dbs = _by_db(_plan(topo, Dialect.POSTGRESQL))
    assert list(dbs) == ["control", "cluster:global", "cluster:cn"]
    for target in ("cluster:global", "cluster:cn"):
        creates = _creates(dbs[target])
        assert set(creates) == {*regional_tables, "corridor_migrations"}
        for table in regional_tables:
            sql = creates[table]
            assert sql.endswith("\n) PARTITION BY LIST (region)"), (target, sql)
            assert _columns(sql)[0] == "region TEXT NOT NULL", (target, table)
            assert _pk(sql)[0] == "region", (target, table)
        assert "PARTITION BY" not in creates["corridor_migrations"]


def test_pg_control_tables_are_plain(topo: Topology) -> None:
    creates = _creates(_by_db(_plan(topo, Dialect.POSTGRESQL))["control"])
    assert set(creates) == set(control_tables)
    for sql in creates.values():
        assert sql.endswith("\n)"), sql


def _partitions(sqls: list[str]) -> list[tuple[str, str, str]]:
    return [m.groups() for s in sqls if (m := _partition.fullmatch(s))]  # type: ignore[misc]


@pytest.mark.parametrize(("target", "regions"), [
    ("cluster:global", global_regions),
    ("cluster:cn", ("cn-east",)),
])
def test_pg_one_partition_per_table_and_cluster_region(
    topo: Topology, target: str, regions: tuple[str, ...],
) -> None:
    sqls = _by_db(_plan(topo, Dialect.POSTGRESQL))[target]
    parts = _partitions(sqls)
    expected = {(t, r) for t in regional_tables for r in regions}
    got = [(parent, region) for _, parent, region in parts]
    assert len(got) == len(set(got)), "a partition is planned twice"
    assert set(got) == expected
    for name, parent, region in parts:
        assert name == partition_name(parent, region)
        assert name == f"{parent}__{region.replace('-', '_')}"
    # Each partition is created after its parent table.
    for name, parent, _ in parts:
        parent_at = next(i for i, s in enumerate(sqls) if s.startswith(f"CREATE TABLE {parent} ("))
        part_at = next(i for i, s in enumerate(sqls) if f" {name} PARTITION OF " in s)
        assert parent_at < part_at, name


def test_pg_cn_east_partitions_only_in_cluster_cn(topo: Topology) -> None:
    dbs = _by_db(_plan(topo, Dialect.POSTGRESQL))
    assert not any("cn-east" in s or "cn_east" in s for s in dbs["cluster:global"])
    assert not any("cn-east" in s or "cn_east" in s for s in dbs["control"])
    assert not _partitions(dbs["control"])


def test_pg_partitions_follow_the_topology(topo: Topology) -> None:
    dbs = _by_db(_plan(topo, Dialect.POSTGRESQL))
    for cluster in topo.clusters:
        regions = {r.code for r in topo.regions_of(cluster.name)}
        got = {region for _, _, region in _partitions(dbs[f"cluster:{cluster.name}"])}
        assert got == regions, cluster.name


def test_pg_has_no_cockroach_syntax(topo: Topology) -> None:
    text = migrate.render(_plan(topo, Dialect.POSTGRESQL))
    assert "LOCALITY" not in text
    assert "crdb_internal_region" not in text
    assert "ALTER DATABASE" not in text


# --- plan with everything applied ----------------------------------------------------------------


@pytest.mark.parametrize("dialect", list(Dialect))
def test_plan_with_everything_applied_only_reruns_idempotent_statements(
    topo: Topology, dialect: Dialect,
) -> None:
    statements = _plan(topo, dialect, applied=all_applied, recorded_regions=_recorded(topo))
    assert statements
    for s in statements:
        assert s.version is None, s
        if s.sql.startswith("CREATE TABLE"):
            assert s.sql.startswith("CREATE TABLE IF NOT EXISTS "), s.sql
        assert not s.sql.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX", "INSERT")), s.sql
        assert s.phase != "remap", s.sql
        if s.sql.startswith("ALTER DATABASE") and "ADD REGION" in s.sql:
            assert "ADD REGION IF NOT EXISTS" in s.sql
    # Re-planning still carries the idempotent topology statements.
    if dialect is Dialect.POSTGRESQL:
        assert len(_partitions([s.sql for s in statements])) == len(regional_tables) * 5
    else:
        assert sum("SET PRIMARY REGION" in s.sql for s in statements) == 3  # one per database


def test_plan_versions_and_records(topo: Topology) -> None:
    for dialect in Dialect:
        statements = _plan(topo, dialect)
        records = [s for s in statements if s.sql.startswith("INSERT INTO corridor_migrations")]
        assert [(s.database, s.version) for s in records] == [
            ("control", m.version) for m in migrations] + [
            ("cluster:global", m.version) for m in migrations] + [
            ("cluster:cn", m.version) for m in migrations]
        for s in records:
            assert f"VALUES ('{s.database}', {s.version}, " in s.sql
        # Table DDL is tagged with its migration version; topology statements are not.
        for s in statements:
            if _create.match(s.sql) and not s.sql.startswith("CREATE TABLE IF NOT EXISTS"):
                assert s.version in {m.version for m in migrations}, s.sql


def test_plan_skips_only_the_applied_database(topo: Topology) -> None:
    statements = _plan(topo, Dialect.POSTGRESQL, applied={"cluster:global": {1}})
    dbs = _by_db(statements)
    assert "CREATE TABLE regions (" in "\n".join(dbs["control"])
    assert not any(s.startswith("CREATE TABLE accounts (") for s in dbs["cluster:global"])
    assert any(s.startswith("CREATE TABLE accounts (") for s in dbs["cluster:cn"])


# --- apply ordering on CockroachDB (recorded, no server) -----------------------------------------


class _RecordingConn:
    def __init__(self, database: str) -> None:
        self.sql: list[str] = []
        self.engine = SimpleNamespace(url=SimpleNamespace(database=database))

    def __enter__(self) -> _RecordingConn:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def exec_driver_sql(self, sql: str, *args: object) -> None:
        self.sql.append(sql)

    def execute(self, stmt: object, params: object = None) -> _NoRows:
        self.sql.append(str(stmt))
        return _NoRows()  # nothing applied yet


class _NoRows(list[object]):
    def first(self) -> None:
        return None


class _RecordingEngine:
    def __init__(self, dialect: str, database: str) -> None:
        self.dialect = SimpleNamespace(name=dialect)
        self.conn = _RecordingConn(database)

    def connect(self) -> _RecordingConn:
        return self.conn

    def dispose(self) -> None:
        return None


def _record_apply(monkeypatch: pytest.MonkeyPatch, topo: Topology,
                  dialect: str) -> dict[str, list[str]]:
    engines = {t: _RecordingEngine(dialect, "corridor") for t in all_applied}
    monkeypatch.setattr(migrate, "create_engine", lambda url, **_: engines[url])
    migrate.apply(topo, {t: t for t in engines})
    return {t: e.conn.sql for t, e in engines.items()}


def test_apply_on_cockroachdb_runs_every_planned_statement(
    monkeypatch: pytest.MonkeyPatch, topo: Topology,
) -> None:
    executed = _record_apply(monkeypatch, topo, "cockroachdb")
    planned = _by_db(_plan(topo, Dialect.COCKROACHDB))
    for target, sqls in planned.items():
        assert set(sqls) <= set(executed[target]), target


def test_apply_on_cockroachdb_sets_database_regions_before_locality_tables(
    monkeypatch: pytest.MonkeyPatch, topo: Topology,
) -> None:
    """What ``corridor migrate`` actually sends to a fresh CockroachDB cluster database must make
    the database multi-region before any REGIONAL BY ROW (or GLOBAL) table."""
    executed = _record_apply(monkeypatch, topo, "cockroachdb")
    for target in ("cluster:global", "cluster:cn"):
        sqls = executed[target]
        primary_at = next(i for i, s in enumerate(sqls) if "SET PRIMARY REGION" in s)
        first_rbr = next(i for i, s in enumerate(sqls) if "REGIONAL BY ROW" in s)
        first_locality = next(i for i, s in enumerate(sqls) if "LOCALITY" in s)
        assert primary_at < first_rbr, (
            f"{target}: SET PRIMARY REGION runs as statement #{primary_at}, after the first "
            f"REGIONAL BY ROW table (#{first_rbr}); CockroachDB rejects that table")
        assert primary_at < first_locality, (
            f"{target}: SET PRIMARY REGION runs as statement #{primary_at}, after the first "
            f"LOCALITY table (#{first_locality}: {sqls[first_locality][:60]!r})")


def test_apply_on_postgresql_creates_partitions_after_their_tables(
    monkeypatch: pytest.MonkeyPatch, topo: Topology,
) -> None:
    executed = _record_apply(monkeypatch, topo, "postgresql")
    for target in ("cluster:global", "cluster:cn"):
        sqls = [s for s in executed[target] if s not in {"BEGIN", "COMMIT"}]
        last_table = max(i for i, s in enumerate(sqls) if s.startswith("CREATE TABLE accounts ("))
        first_part = min(i for i, s in enumerate(sqls) if " PARTITION OF " in s)
        assert last_table < first_part, target
        # The migration runs inside one transaction.
        raw = executed[target]
        create_at = next(i for i, s in enumerate(raw) if s.startswith("CREATE TABLE accounts ("))
        assert "BEGIN" in raw[:create_at], target
        assert "COMMIT" in raw[create_at:], target


# --- the CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", list(Dialect))
def test_cli_dry_run_prints_the_rendered_plan(topo: Topology, dialect: Dialect) -> None:
    result = subprocess.run(
        [str(corridor_bin), "migrate", "--dry-run", "--dialect", dialect.value],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == migrate.render(_plan(topo, dialect))
    assert result.stdout == (golden_dir / f"{dialect.value}.sql").read_text(encoding="utf-8")


# --- region mapping changes on CockroachDB -------------------------------------------------------


def _with_region(topo: Topology, **region: Any) -> Topology:
    raw = yaml.safe_load((repo / "regions.yaml").read_text(encoding="utf-8"))
    raw["regions"].append({"jurisdictions": ["EU"], "cluster": "global", "sovereign": False,
                           "status": "planned", **region})
    return parse(raw)


def _global(statements: list[Statement]) -> list[Statement]:
    return [s for s in statements if s.database == "cluster:global"]


def test_crdb_records_the_region_mapping_last(topo: Topology) -> None:
    for target in ("cluster:global", "cluster:cn"):
        sqls = _by_db(_plan(topo, Dialect.COCKROACHDB))[target]
        assert sqls[-1].startswith(
            f"UPSERT INTO corridor_migrations (scope, version, name) VALUES "
            f"('{target}/database-regions', 0, '"), sqls[-1]
    assert '"form":"computed"' in _by_db(_plan(topo, Dialect.COCKROACHDB))["cluster:global"][-1]
    assert '"form":"code"' in _by_db(_plan(topo, Dialect.COCKROACHDB))["cluster:cn"][-1]
    assert not any("database-regions" in s.sql for s in _plan(topo, Dialect.POSTGRESQL))


def test_crdb_a_new_region_rebuilds_the_computed_column_of_existing_tables(
    topo: Topology,
) -> None:
    grown = _with_region(topo, code="eu-west", cloud="aws", location="eu-west-1",
                         amqp_vhost="corridor-eu-west", database_region="eu-west-1")
    applied = {"control": all_applied["control"], "cluster:global": {1, 2},
               "cluster:cn": all_applied["cluster:cn"]}
    statements = _global(_plan(grown, Dialect.COCKROACHDB, applied=applied,
                               recorded_regions=_recorded(topo)))
    phases = [s.phase for s in statements]
    assert phases == sorted(phases, key=["prepare", "remap", "migrate", "finish"].index)
    assert 'ALTER DATABASE corridor ADD REGION IF NOT EXISTS "eu-west-1"' in [
        s.sql for s in statements]
    remap = [s.sql for s in statements if s.phase == "remap"]
    early = [t.name for m in migrations if m.version in {1, 2}
             for t in m.regional if hasattr(t, "body")]
    assert early
    assert len(remap) == 5 * len(early)
    for i, table in enumerate(early):
        steps = remap[5 * i: 5 * i + 5]
        assert steps[0] == f"ALTER TABLE {table} DROP COLUMN IF EXISTS crdb_region_next"
        assert steps[1].startswith(f"ALTER TABLE {table} ADD COLUMN crdb_region_next "
                                   "crdb_internal_region NOT VISIBLE NOT NULL AS (CASE region ")
        assert _case_map(steps[1].replace("crdb_region_next", "crdb_region")) == (
            grown.database_regions("global"))
        assert steps[2:] == [
            f"ALTER TABLE {table} SET LOCALITY REGIONAL BY ROW AS crdb_region_next",
            f"ALTER TABLE {table} DROP COLUMN crdb_region",
            f"ALTER TABLE {table} RENAME COLUMN crdb_region_next TO crdb_region"]
    # Tables of migrations not yet applied are created with the new mapping, not rebuilt.
    created = _creates([s.sql for s in statements if s.phase == "migrate"])
    assert created
    assert not set(created) & set(early)
    for sql in created.values():
        if "REGIONAL BY ROW" in sql:
            assert _case_map(sql)["eu-west"] == "eu-west-1"
    assert "eu-west-1" in statements[-1].sql
    assert statements[-1].phase == "finish"


def test_crdb_an_unchanged_mapping_rebuilds_nothing(topo: Topology) -> None:
    statements = _plan(topo, Dialect.COCKROACHDB, applied=all_applied,
                       recorded_regions=_recorded(topo))
    assert not [s for s in statements if s.phase == "remap"]


def test_crdb_a_new_region_on_the_code_named_cluster_only_adds_the_region(
    topo: Topology,
) -> None:
    raw = yaml.safe_load((repo / "regions.yaml").read_text(encoding="utf-8"))
    raw["regions"].append({"code": "cn-north", "jurisdictions": ["CN"], "cloud": "alibaba",
                           "location": "cn-beijing", "cluster": "cn", "sovereign": False,
                           "amqp_vhost": "corridor-cn-north", "status": "planned"})
    for r in raw["regions"]:
        if r["code"] == "cn-east":
            r["sovereign"] = False
    grown = parse(raw)
    statements = [s for s in _plan(grown, Dialect.COCKROACHDB, applied=all_applied,
                                   recorded_regions=_recorded(topo))
                  if s.database == "cluster:cn"]
    assert 'ALTER DATABASE corridor ADD REGION IF NOT EXISTS "cn-north"' in [
        s.sql for s in statements]
    assert not [s for s in statements if s.phase == "remap"]


_code_named = '{"form":"code","regions":{"eu-central":"eu-central"}}'


@pytest.mark.parametrize("recorded", [None, _code_named])
def test_crdb_refuses_to_switch_a_live_cluster_to_computed_homes(
    topo: Topology, recorded: str | None,
) -> None:
    """A cluster created with code-named regions (or before mappings were recorded) cannot be
    switched in place: the REGIONAL BY ROW column would change type."""
    records = _recorded(topo)
    if recorded is None:
        del records["cluster:global"]
    else:
        records["cluster:global"] = recorded
    with pytest.raises(migrate.MigrationRefused, match="cluster:global: its tables home rows by "
                                                       "region code"):
        _plan(topo, Dialect.COCKROACHDB, applied=all_applied, recorded_regions=records)
    # A fresh cluster has nothing to switch.
    assert _plan(topo, Dialect.COCKROACHDB, recorded_regions=records)


def test_crdb_refuses_to_switch_computed_homes_back_to_codes(topo: Topology) -> None:
    raw = yaml.safe_load((repo / "regions.yaml").read_text(encoding="utf-8"))
    for r in raw["regions"]:
        r.pop("database_region", None)
    with pytest.raises(migrate.MigrationRefused, match="computed database region"):
        _plan(parse(raw), Dialect.COCKROACHDB, applied=all_applied,
              recorded_regions=_recorded(topo))


def test_crdb_apply_reads_the_recorded_mapping(
    monkeypatch: pytest.MonkeyPatch, topo: Topology,
) -> None:
    executed = _record_apply(monkeypatch, topo, "cockroachdb")
    for target in ("cluster:global", "cluster:cn"):
        reads = [s for s in executed[target] if "database-regions" not in s
                 and s.startswith("SELECT name FROM corridor_migrations")]
        assert len(reads) == 1, executed[target]
    assert not any("SELECT name FROM corridor_migrations" in s for s in executed["control"])
