"""Plan and apply migrations and the region topology to the control plane and every cluster.

``plan`` is pure: it returns the statements for each database given what is already applied.
``apply`` takes a per-database lock (PostgreSQL advisory lock), reads what is applied, and runs
the rest, one transaction per migration on PostgreSQL. Partitions and database regions are
re-planned on every run and are idempotent, so adding a region to the regions file and running
``corridor migrate`` is how a region is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from sqlalchemy import Connection, create_engine, text

from regions import tables
from regions.ddl import (
    Dialect,
    Statement,
    TableDef,
    cluster_target,
    cockroach_regions,
    control_target,
    create_table,
    migrations_table,
    migrations_table_ddl,
    postgres_partitions,
)
from regions.migrations import migrations
from regions.topology import Topology

_advisory_lock_key = 7_351_202_611
crdb_database_default = "corridor"


def _record(scope: str, m: ModuleType) -> str:
    return (f"INSERT INTO {migrations_table} (scope, version, name) "
            f"VALUES ('{scope}', {m.version}, '{m.name}')")


def plan(
    topo: Topology,
    dialect: Dialect,
    applied: Mapping[str, set[int]] | None = None,
    crdb_database: str = crdb_database_default,
) -> list[Statement]:
    """Every statement still to run, per database, in order."""
    applied = applied or {}
    out: list[Statement] = []
    target = control_target()
    out.append(Statement(target, migrations_table_ddl(dialect)))
    for m in migrations:
        if m.version not in applied.get(target, set()):
            out += [Statement(target, s, m.version)
                    for t in m.control for s in create_table(t, dialect, regional=False)]
            out.append(Statement(target, _record(target, m), m.version))
    for cluster in topo.clusters:
        target = cluster_target(cluster)
        if dialect is Dialect.COCKROACHDB:
            out += [Statement(target, s) for s in cockroach_regions(cluster, topo, crdb_database)]
        out.append(Statement(target, migrations_table_ddl(dialect)))
        regional_tables: list[TableDef] = []
        for m in migrations:
            regional_tables += m.regional
            if m.version not in applied.get(target, set()):
                out += [Statement(target, s, m.version)
                        for t in m.regional for s in create_table(t, dialect, regional=True)]
                out.append(Statement(target, _record(target, m), m.version))
        if dialect is Dialect.POSTGRESQL:
            out += [Statement(target, s)
                    for s in postgres_partitions(cluster, topo, regional_tables)]
    return out


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
        conn.exec_driver_sql(migrations_table_ddl(dialect))
        applied = {target: _applied(conn, target)}
        database = conn.engine.url.database or crdb_database_default
        todo = [s for s in plan(topo, dialect, applied, database) if s.database == target]
        for version in sorted({s.version for s in todo if s.version is not None}):
            _run(conn, dialect, [s for s in todo if s.version == version])
        _run(conn, dialect, [s for s in todo if s.version is None])
        return todo
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
