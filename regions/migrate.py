"""Plan and apply migrations and the region topology to the control plane and every cluster.

``plan`` is pure: it returns the statements for each database given what is already applied.
``apply`` takes a per-database lock (PostgreSQL advisory lock), reads what is applied, and runs
the rest, one transaction per migration on PostgreSQL. Partitions and database regions are
re-planned on every run and are idempotent, so adding a region to the regions file and running
``corridor migrate`` is how a region is added. On CockroachDB each cluster's region mapping
(code -> database region) is recorded beside its migrations; when a run finds it changed on a
cluster whose rows are homed through the computed column, it rebuilds that column
(``regional_by_row_remap``) before anything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from itertools import groupby
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, create_engine, text

from regions import tables
from regions.ddl import (
    Dialect,
    MigrationItem,
    Statement,
    TableDef,
    cluster_target,
    cockroach_regions,
    control_target,
    migrations_table,
    migrations_table_ddl,
    named_by_code,
    postgres_partitions,
    region_map_record,
    regional_by_row_remap,
    render_item,
)
from regions.migrations import migrations
from regions.topology import Topology

_advisory_lock_key = 7_351_202_611
crdb_database_default = "corridor"


class MigrationRefused(RuntimeError):
    """A change to the regions file that ``corridor migrate`` cannot carry out on a live cluster."""


def region_map_scope(target: str) -> str:
    return f"{target}/database-regions"


def _record(scope: str, m: ModuleType) -> str:
    return (f"INSERT INTO {migrations_table} (scope, version, name) "
            f"VALUES ('{scope}', {m.version}, '{m.name}')")


def plan(
    topo: Topology,
    dialect: Dialect,
    applied: Mapping[str, set[int]] | None = None,
    crdb_database: str = crdb_database_default,
    recorded_regions: Mapping[str, str] | None = None,
) -> list[Statement]:
    """Every statement still to run, per database, in order."""
    applied = applied or {}
    recorded_regions = recorded_regions or {}
    targets = [control_target(), *(cluster_target(c) for c in topo.clusters)]
    return [s for t in targets
            for s in plan_target(topo, dialect, t, applied.get(t, set()), crdb_database,
                                 recorded_regions.get(t))]


def plan_target(
    topo: Topology, dialect: Dialect, target: str, applied: set[int], crdb_database: str,
    recorded_regions: str | None = None,
) -> list[Statement]:
    """One database's statements in four phases, in the order they must run.

    ``prepare``: CockroachDB database regions (a LOCALITY clause fails before them) and the
    migrations table. ``remap``: CockroachDB tables re-homed for a changed region mapping
    (``recorded_regions`` is the mapping the last run recorded). ``migrate``: the versioned
    migrations not yet applied. ``finish``: PostgreSQL partitions for every region of the
    cluster, after their parent tables; on CockroachDB, the mapping recorded.
    """
    control = target == control_target()
    cluster = topo.cluster(topo.control_cluster if control else target.split(":", 1)[1])
    region_map = None if control else topo.database_regions(cluster.name)
    out: list[Statement] = []
    if dialect is Dialect.COCKROACHDB:
        out += [Statement(target, s, phase="prepare")
                for s in cockroach_regions(cluster, topo, crdb_database)]
    out.append(Statement(target, migrations_table_ddl(dialect), phase="prepare"))
    regional_tables: list[TableDef] = []
    existing: list[TableDef] = []
    for m in migrations:
        items: tuple[MigrationItem, ...] = m.control if control else m.regional
        tables_of = [t for t in items if isinstance(t, TableDef)]
        if not control:
            regional_tables += tables_of
        if m.version in applied:
            existing += tables_of
            continue
        out += [Statement(target, sql, m.version, "migrate")
                for t in items
                for sql in render_item(t, dialect, regional=not control, region_map=region_map)]
        out.append(Statement(target, _record(target, m), m.version, "migrate"))
    if dialect is Dialect.POSTGRESQL and not control:
        out += [Statement(target, sql, phase="finish")
                for sql in postgres_partitions(cluster, topo, regional_tables)]
    if dialect is Dialect.COCKROACHDB and region_map is not None:
        remap = _remap(target, region_map, recorded_regions, existing)
        first_migrate = next((i for i, st in enumerate(out) if st.phase != "prepare"), len(out))
        out[first_migrate:first_migrate] = [Statement(target, sql, phase="remap") for sql in remap]
        record = region_map_record(region_map).replace("'", "''")
        out.append(Statement(
            target,
            f"UPSERT INTO {migrations_table} (scope, version, name) "
            f"VALUES ('{region_map_scope(target)}', 0, '{record}')",
            phase="finish"))
    return out


def _remap(
    target: str, region_map: Mapping[str, str], recorded: str | None, existing: list[TableDef]
) -> list[str]:
    """The statements that re-home existing tables, or none; refuses what cannot be done live.

    A cluster migrated before mappings were recorded homes rows by code (``form`` code).
    """
    if not existing:
        return []
    before: dict[str, Any] = json.loads(recorded) if recorded else {"form": "code", "regions": None}
    now: dict[str, Any] = json.loads(region_map_record(region_map))
    if before["form"] != now["form"]:
        homed = {"code": "by region code", "computed": "by a computed database region"}
        raise MigrationRefused(
            f"{target}: its tables home rows {homed[before['form']]}, and the regions file "
            f"(database_region) now asks for rows homed {homed[now['form']]}. CockroachDB cannot "
            f"change a REGIONAL BY ROW column's type in place: keep the cluster's naming, or "
            f"move its data to a new cluster (docs/runbooks/add-region.md)")
    if named_by_code(region_map) or before["regions"] == now["regions"]:
        return []
    return regional_by_row_remap(existing, region_map)


def render(statements: list[Statement]) -> str:
    """The plan as a SQL script with a header before each database's statements."""
    lines: list[str] = []
    current = None
    for s in statements:
        if s.database != current:
            current = s.database
            lines.append(f"\n-- database: {current}")
        lines.append(s.sql + ";")
    return "\n".join(lines).lstrip("\n") + "\n"


def _applied(conn: Connection, scope: str) -> set[int]:
    rows = conn.execute(
        text(f"SELECT version FROM {migrations_table} WHERE scope = :scope"), {"scope": scope}
    )
    return {int(r[0]) for r in rows}


def _recorded_regions(conn: Connection, target: str) -> str | None:
    row = conn.execute(
        text(f"SELECT name FROM {migrations_table} WHERE scope = :scope AND version = 0"),
        {"scope": region_map_scope(target)},
    ).first()
    return None if row is None else str(row[0])


def apply(topo: Topology, urls: Mapping[str, str]) -> list[Statement]:
    """Migrate every database in ``urls`` (keyed like ``Statement.database``); returns what ran."""
    ran: list[Statement] = []
    for target, url in urls.items():
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        dialect = Dialect(engine.dialect.name)
        try:
            with engine.connect() as conn:
                ran += _apply_target(conn, topo, dialect, target)
                if target == control_target():
                    sync_regions(conn, topo)
        finally:
            engine.dispose()
    return ran


def _apply_target(
    conn: Connection, topo: Topology, dialect: Dialect, target: str
) -> list[Statement]:
    if dialect is Dialect.POSTGRESQL:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _advisory_lock_key})
    try:
        database = conn.engine.url.database or crdb_database_default
        prepare = [s for s in plan_target(topo, dialect, target, set(), database)
                   if s.phase == "prepare"]
        for s in prepare:
            _run(conn, dialect, [s])
        applied = _applied(conn, target)
        recorded = (_recorded_regions(conn, target)
                    if dialect is Dialect.COCKROACHDB and target != control_target() else None)
        rest = [s for s in plan_target(topo, dialect, target, applied, database, recorded)
                if s.phase != "prepare"]
        for _, group in groupby(rest, key=lambda s: (s.phase, s.version)):
            _run(conn, dialect, list(group))
        return prepare + rest
    finally:
        if dialect is Dialect.POSTGRESQL:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_lock_key})


def _run(conn: Connection, dialect: Dialect, statements: list[Statement]) -> None:
    """PostgreSQL DDL is transactional, so a migration is all or nothing there."""
    if dialect is Dialect.POSTGRESQL:
        conn.exec_driver_sql("BEGIN")
        try:
            for s in statements:
                conn.exec_driver_sql(s.sql)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
    else:
        for s in statements:
            conn.exec_driver_sql(s.sql)


def sync_regions(conn: Connection, topo: Topology) -> None:
    """The control plane's copy of the regions file, for queries and foreign keys."""
    from sqlalchemy.dialects.postgresql import insert

    for r in topo.regions:
        values = {
            "code": r.code, "jurisdictions": list(r.jurisdictions), "cloud": r.cloud,
            "location": r.location, "cluster": r.cluster, "sovereign": r.sovereign,
            "status": r.status,
        }
        stmt = insert(tables.regions).values(**values)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["code"], set_={**values, "updated_at": text("now()")}))
