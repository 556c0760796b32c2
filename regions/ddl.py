"""DDL for PostgreSQL and CockroachDB, planned apart from applied.

Planning returns ``Statement``s naming the database they belong to; ``regions.migrate`` runs them
and ``corridor migrate --dry-run`` prints them. PostgreSQL gets ``PARTITION BY LIST (region)``
with one partition per region of the cluster; CockroachDB gets database regions,
``LOCALITY REGIONAL BY ROW AS region`` for regional tables and ``LOCALITY GLOBAL`` for the control
plane. The CockroachDB output is checked by golden files because it cannot run here.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import StrEnum

from regions.topology import Cluster, Topology

migrations_table = "corridor_migrations"


class Dialect(StrEnum):
    POSTGRESQL = "postgresql"
    COCKROACHDB = "cockroachdb"


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: str
    unique: bool = False
    where: str | None = None


@dataclass(frozen=True, slots=True)
class TableDef:
    name: str
    body: str
    indexes: tuple[Index, ...] = ()


@dataclass(frozen=True, slots=True)
class Raw:
    """A statement that is the same on both engines (e.g. ``ALTER TABLE ... ADD COLUMN``)."""

    sql: str


MigrationItem = TableDef | Raw


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement for one database: ``control`` or ``cluster:<name>``."""

    database: str
    sql: str
    version: int | None = None
    phase: str = "migrate"


def control_target() -> str:
    return "control"


def cluster_target(cluster: Cluster) -> str:
    return f"cluster:{cluster.name}"


def partition_name(table: str, region: str) -> str:
    return f"{table}__{region.replace('-', '_')}"


def create_table(table: TableDef, dialect: Dialect, *, regional: bool) -> list[str]:
    region_type = "crdb_internal_region" if dialect is Dialect.COCKROACHDB else "TEXT"
    body = textwrap.dedent(table.body).strip("\n").format(region_type=region_type)
    body = textwrap.indent(textwrap.dedent(body), "    ")
    if dialect is Dialect.POSTGRESQL:
        suffix = " PARTITION BY LIST (region)" if regional else ""
    else:
        suffix = " LOCALITY REGIONAL BY ROW AS region" if regional else " LOCALITY GLOBAL"
    out = [f"CREATE TABLE {table.name} (\n{body}\n){suffix}"]
    for ix in table.indexes:
        unique = "UNIQUE " if ix.unique else ""
        where = f" WHERE {ix.where}" if ix.where else ""
        out.append(f"CREATE {unique}INDEX {ix.name} ON {table.name} {ix.columns}{where}")
    return out


def render_item(item: MigrationItem, dialect: Dialect, *, regional: bool) -> list[str]:
    if isinstance(item, Raw):
        return [item.sql]
    return create_table(item, dialect, regional=regional)


def migrations_table_ddl(dialect: Dialect) -> str:
    locality = " LOCALITY GLOBAL" if dialect is Dialect.COCKROACHDB else ""
    return (f"CREATE TABLE IF NOT EXISTS {migrations_table} (\n"
            "    scope TEXT NOT NULL,\n"
            "    version INT NOT NULL,\n"
            "    name TEXT NOT NULL,\n"
            "    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
            "    PRIMARY KEY (scope, version)\n"
            f"){locality}")


def cockroach_regions(cluster: Cluster, topo: Topology, database: str) -> list[str]:
    """Database regions must exist before REGIONAL BY ROW tables can be created."""
    out = [f'ALTER DATABASE {database} SET PRIMARY REGION "{cluster.primary_region}"']
    for r in topo.regions_of(cluster.name):
        if r.code != cluster.primary_region:
            out.append(f'ALTER DATABASE {database} ADD REGION IF NOT EXISTS "{r.code}"')
    return out


def postgres_partitions(cluster: Cluster, topo: Topology, tables: list[TableDef]) -> list[str]:
    """One LIST partition per regional table and region; idempotent, so a new region is one run."""
    return [
        f"CREATE TABLE IF NOT EXISTS {partition_name(t.name, r.code)} "
        f"PARTITION OF {t.name} FOR VALUES IN ('{r.code}')"
        for t in tables
        for r in topo.regions_of(cluster.name)
    ]
