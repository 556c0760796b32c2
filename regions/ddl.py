"""DDL for PostgreSQL and CockroachDB, planned apart from applied.

Planning returns ``Statement``s naming the database they belong to; ``regions.migrate`` runs them
and ``corridor migrate --dry-run`` prints them. PostgreSQL gets ``PARTITION BY LIST (region)``
with one partition per region of the cluster; CockroachDB gets database regions,
``LOCALITY REGIONAL BY ROW`` for regional tables and ``LOCALITY GLOBAL`` for the control plane.
The CockroachDB output is checked by golden files because it cannot run here.

Rows carry Corridor's region code in ``region``. Where the cluster knows its regions by those
codes (a self-hosted cluster whose nodes start with the code as locality), ``region`` is itself
the ``crdb_internal_region`` column rows are homed by. Where it does not (CockroachDB Cloud names
its regions after its cloud's: ``eu-central-1``), ``region`` is text and a hidden stored
computed column ``crdb_region`` maps it to the database region (``CASE region WHEN ...``);
the application never sees the cloud's names. Adding such a region changes the mapping, and
``regional_by_row_remap`` rebuilds the computed column table by table.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
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


RegionMap = Mapping[str, str]
"""Region code -> the database region the cluster knows it by."""

computed_region_column = "crdb_region"


def named_by_code(region_map: RegionMap) -> bool:
    return all(code == name for code, name in region_map.items())


def region_map_record(region_map: RegionMap) -> str:
    """The mapping as ``corridor migrate`` records it, to notice a change on the next run."""
    form = "code" if named_by_code(region_map) else "computed"
    return json.dumps({"form": form, "regions": dict(sorted(region_map.items()))},
                      separators=(",", ":"))


def _region_case(region_map: RegionMap) -> str:
    whens = " ".join(f"WHEN '{code}' THEN '{name}'" for code, name in sorted(region_map.items()))
    return f"CASE region {whens} END"


def computed_region_ddl(region_map: RegionMap, column: str = computed_region_column) -> str:
    """A code outside the mapping computes NULL, which NOT NULL refuses: no row lands elsewhere."""
    return (f"{column} crdb_internal_region NOT VISIBLE NOT NULL "
            f"AS ({_region_case(region_map)}) STORED")


def create_table(
    table: TableDef, dialect: Dialect, *, regional: bool, region_map: RegionMap | None = None
) -> list[str]:
    computed = (dialect is Dialect.COCKROACHDB and regional and region_map is not None
                and not named_by_code(region_map))
    region_type = ("crdb_internal_region"
                   if dialect is Dialect.COCKROACHDB and not computed else "TEXT")
    body = textwrap.dedent(table.body).strip("\n").format(region_type=region_type)
    if computed:
        assert region_map is not None
        body += ",\n" + computed_region_ddl(region_map)
    body = textwrap.indent(textwrap.dedent(body), "    ")
    if dialect is Dialect.POSTGRESQL:
        suffix = " PARTITION BY LIST (region)" if regional else ""
    elif regional:
        home = computed_region_column if computed else "region"
        suffix = f" LOCALITY REGIONAL BY ROW AS {home}"
    else:
        suffix = " LOCALITY GLOBAL"
    out = [f"CREATE TABLE {table.name} (\n{body}\n){suffix}"]
    for ix in table.indexes:
        unique = "UNIQUE " if ix.unique else ""
        where = f" WHERE {ix.where}" if ix.where else ""
        out.append(f"CREATE {unique}INDEX {ix.name} ON {table.name} {ix.columns}{where}")
    return out


def render_item(
    item: MigrationItem, dialect: Dialect, *, regional: bool, region_map: RegionMap | None = None
) -> list[str]:
    if isinstance(item, Raw):
        return [item.sql]
    return create_table(item, dialect, regional=regional, region_map=region_map)


def regional_by_row_remap(tables: list[TableDef], region_map: RegionMap) -> list[str]:
    """Rebuild each table's computed home-region column for a changed mapping.

    CockroachDB cannot change a computed column's expression, so a new column is added with the
    new mapping, rows are re-homed by it (``SET LOCALITY ... AS``: rows of existing regions keep
    their home, a moved region's rows move), and it replaces the old one. Each step is an online
    schema change job. A run cut short before ``SET LOCALITY`` is redone by the next run (the
    half-built column is dropped first); one cut short after it stops the next run on the
    column in use, and the runbook (add-region) finishes that table by hand.
    """
    nxt = f"{computed_region_column}_next"
    out: list[str] = []
    for t in tables:
        out += [
            f"ALTER TABLE {t.name} DROP COLUMN IF EXISTS {nxt}",
            f"ALTER TABLE {t.name} ADD COLUMN {computed_region_ddl(region_map, nxt)}",
            f"ALTER TABLE {t.name} SET LOCALITY REGIONAL BY ROW AS {nxt}",
            f"ALTER TABLE {t.name} DROP COLUMN {computed_region_column}",
            f"ALTER TABLE {t.name} RENAME COLUMN {nxt} TO {computed_region_column}",
        ]
    return out


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
    primary = topo.region(cluster.primary_region).database_region
    out = [f'ALTER DATABASE {database} SET PRIMARY REGION "{primary}"']
    for r in topo.regions_of(cluster.name):
        if r.code != cluster.primary_region:
            out.append(f'ALTER DATABASE {database} ADD REGION IF NOT EXISTS "{r.database_region}"')
    return out


def postgres_partitions(cluster: Cluster, topo: Topology, tables: list[TableDef]) -> list[str]:
    """One LIST partition per regional table and region; idempotent, so a new region is one run."""
    return [
        f"CREATE TABLE IF NOT EXISTS {partition_name(t.name, r.code)} "
        f"PARTITION OF {t.name} FOR VALUES IN ('{r.code}')"
        for t in tables
        for r in topo.regions_of(cluster.name)
    ]
