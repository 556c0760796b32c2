"""The migrated PostgreSQL databases agree with ``regions.tables`` and with the regions file.

Migrations own the DDL and ``regions.tables`` is what queries are built from; a column added to
one and not the other, or with a different nullability or type, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, MetaData, create_engine, inspect, text
from sqlalchemy.dialects import postgresql

from regions import migrate, tables
from regions.ddl import partition_name
from regions.migrations import migrations
from regions.router import DatabaseUrls
from regions.topology import Topology

pytestmark = pytest.mark.postgres

ignored = {"corridor_migrations"}
pg_dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


def _type(t: object) -> str:
    return t.compile(dialect=pg_dialect)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def engines(db_urls: DatabaseUrls) -> Iterator[dict[str, Engine]]:
    out = {"control": create_engine(db_urls.control)}
    out |= {f"cluster:{name}": create_engine(url) for name, url in db_urls.clusters.items()}
    yield out
    for e in out.values():
        e.dispose()


def _cluster_targets(topo: Topology) -> list[str]:
    return [f"cluster:{c.name}" for c in topo.clusters]


def _db_tables(engine: Engine) -> set[str]:
    return {t for t in inspect(engine).get_table_names()
            if "__" not in t and t not in ignored}


def _check_against(engine: Engine, metadata: MetaData, where: str) -> None:
    insp = inspect(engine)
    db_tables = _db_tables(engine)
    assert db_tables == set(metadata.tables), (
        f"{where}: only in the database {sorted(db_tables - set(metadata.tables))}, "
        f"only in regions.tables {sorted(set(metadata.tables) - db_tables)}")
    problems: list[str] = []
    for name, table in metadata.tables.items():
        reflected = {c["name"]: c for c in insp.get_columns(name)}
        declared = {c.name: c for c in table.columns}
        for col in sorted(set(declared) - set(reflected)):
            problems.append(f"{name}.{col}: in regions.tables, not in the database")
        for col in sorted(set(reflected) - set(declared)):
            problems.append(f"{name}.{col}: in the database, not in regions.tables")
        for col in sorted(set(declared) & set(reflected)):
            if declared[col].nullable != reflected[col]["nullable"]:
                problems.append(
                    f"{name}.{col}: nullable {declared[col].nullable} in regions.tables, "
                    f"{reflected[col]['nullable']} in the database")
            if _type(declared[col].type) != _type(reflected[col]["type"]):
                problems.append(
                    f"{name}.{col}: type {_type(declared[col].type)} in regions.tables, "
                    f"{_type(reflected[col]['type'])} in the database")
        # Column order too: regions.tables is read as a description of the DDL.
        if [c for c in reflected if c in declared] != [c for c in declared if c in reflected]:
            problems.append(f"{name}: column order differs")
        pk_db = insp.get_pk_constraint(name)["constrained_columns"]
        pk_meta = [c.name for c in table.primary_key.columns]
        if pk_db != pk_meta:
            problems.append(f"{name}: primary key {pk_meta} in regions.tables, {pk_db} in the db")
    assert not problems, f"{where}:\n" + "\n".join(problems)


def test_control_database_matches_control_metadata(engines: dict[str, Engine]) -> None:
    _check_against(engines["control"], tables.control, "control")


def test_cluster_databases_match_regional_metadata(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    for target in _cluster_targets(topo):
        _check_against(engines[target], tables.regional, target)


def test_no_control_tables_in_clusters_and_no_regional_tables_in_control(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    control_db = set(inspect(engines["control"]).get_table_names())
    assert not control_db & set(tables.regional.tables)
    assert not any("__" in t for t in control_db)
    for target in _cluster_targets(topo):
        assert not set(inspect(engines[target]).get_table_names()) & set(tables.control.tables)


def test_metadata_table_sets() -> None:
    assert set(tables.control.tables) == {"regions", "tenants", "api_keys", "fx_rates",
                                          "fx_rates_held", "fx_refreshes", "inbox",
                                          "scheduler_leases", "account_directory",
                                          "policy_versions", "policy_changes",
                                          "sanctions_lists", "sanctions_entries",
                                          "control_audit_events", "control_audit_chain"}
    assert set(tables.regional.tables) == {
        "accounts", "journals", "transfers", "entries", "idempotency_keys", "outbox",
        "audit_events", "fx_quotes", "virtual_accounts", "data_keys", "beneficiaries",
        "payouts", "payout_batches", "incoming_payments", "webhook_endpoints",
        "webhook_deliveries", "message_inbox", "review_cases", "limit_usage", "audit_chain",
        "xr_streams", "xr_outbox", "xr_inbox", "xr_payouts", "settlement_obligations",
        "settlement_batches"}


# --- partitions ----------------------------------------------------------------------------------

_partitions_sql = text("""
    SELECT parent.relname AS parent, child.relname AS child,
           pg_get_expr(child.relpartbound, child.oid) AS bound
    FROM pg_partitioned_table pt
    JOIN pg_class parent ON parent.oid = pt.partrelid
    JOIN pg_namespace ns ON ns.oid = parent.relnamespace AND ns.nspname = current_schema()
    LEFT JOIN pg_inherits i ON i.inhparent = parent.oid
    LEFT JOIN pg_class child ON child.oid = i.inhrelid
""")


def _partitions(engine: Engine) -> dict[str, dict[str, str]]:
    """Partitioned table -> {partition name: bound}."""
    out: dict[str, dict[str, str]] = {}
    with engine.connect() as conn:
        for parent, child, bound in conn.execute(_partitions_sql):
            out.setdefault(parent, {})
            if child is not None:
                out[parent][child] = bound
    return out


def test_regional_tables_are_list_partitioned_by_region(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    for target in _cluster_targets(topo):
        with engines[target].connect() as conn:
            keys = dict(conn.execute(text(
                "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_partitioned_table pt "
                "JOIN pg_class c ON c.oid = pt.partrelid")).all())
        assert keys == {t: "LIST (region)" for t in tables.regional.tables}, target


def test_exactly_the_cluster_regions_are_partitions(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    for cluster in topo.clusters:
        target = f"cluster:{cluster.name}"
        regions = [r.code for r in topo.regions_of(cluster.name)]
        expected = {
            t: {partition_name(t, r): f"FOR VALUES IN ('{r}')" for r in regions}
            for t in tables.regional.tables
        }
        assert _partitions(engines[target]) == expected, target


def test_sovereign_region_partitions_exist_only_in_its_cluster(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    cn = topo.region("cn-east")
    for cluster in topo.clusters:
        names = {c for parts in _partitions(engines[f"cluster:{cluster.name}"]).values()
                 for c in parts}
        has_cn = any(n.endswith("__cn_east") for n in names)
        assert has_cn == (cluster.name == cn.cluster), cluster.name
    assert _partitions(engines["control"]) == {}


def test_partitions_have_the_parent_columns(engines: dict[str, Engine], topo: Topology) -> None:
    for target in _cluster_targets(topo):
        insp = inspect(engines[target])
        for parent, parts in _partitions(engines[target]).items():
            parent_cols = [(c["name"], c["nullable"]) for c in insp.get_columns(parent)]
            for child in parts:
                assert [(c["name"], c["nullable"]) for c in insp.get_columns(child)] == \
                    parent_cols, (target, child)


def test_regional_primary_keys_start_with_region(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    for target in _cluster_targets(topo):
        insp = inspect(engines[target])
        for name in tables.regional.tables:
            pk = insp.get_pk_constraint(name)["constrained_columns"]
            assert pk, (target, name)
            assert pk[0] == "region", (target, name, pk)
            region = next(c for c in insp.get_columns(name) if c["name"] == "region")
            assert region["nullable"] is False


def test_indexes_on_regional_tables_lead_with_region(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    for target in _cluster_targets(topo):
        insp = inspect(engines[target])
        for name in tables.regional.tables:
            for ix in insp.get_indexes(name):
                assert ix["column_names"][0] == "region", (target, name, ix)


# --- migration bookkeeping and idempotency -------------------------------------------------------


def _applied(engine: Engine) -> set[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT scope, version FROM corridor_migrations"))
        return {(r[0], int(r[1])) for r in rows}


def _snapshot(engine: Engine) -> dict[str, object]:
    insp = inspect(engine)
    return {
        "tables": sorted(insp.get_table_names()),
        "columns": {t: [(c["name"], c["nullable"]) for c in insp.get_columns(t)]
                    for t in sorted(insp.get_table_names())},
        "indexes": {t: sorted(ix["name"] for ix in insp.get_indexes(t))
                    for t in sorted(insp.get_table_names())},
        "partitions": _partitions(engine),
        "applied": _applied(engine),
    }


def test_migrations_are_recorded_per_scope(engines: dict[str, Engine]) -> None:
    for target, engine in engines.items():
        assert _applied(engine) == {(target, m.version) for m in migrations}, target


def test_control_regions_table_mirrors_the_regions_file(
    engines: dict[str, Engine], topo: Topology,
) -> None:
    with engines["control"].connect() as conn:
        rows = conn.execute(text(
            "SELECT code, jurisdictions, cloud, location, cluster, sovereign, status "
            "FROM regions ORDER BY code")).all()
    expected = sorted((r.code, list(r.jurisdictions), r.cloud, r.location, r.cluster,
                       r.sovereign, r.status) for r in topo.regions)
    assert [tuple(r) for r in rows] == expected


def test_second_apply_is_a_no_op(
    engines: dict[str, Engine], db_urls: DatabaseUrls, topo: Topology,
) -> None:
    by_target = {"control": db_urls.control}
    by_target |= {f"cluster:{name}": url for name, url in db_urls.clusters.items()}
    before = {t: _snapshot(e) for t, e in engines.items()}

    ran = migrate.apply(topo, by_target)

    versioned = [s for s in ran if s.version is not None]
    assert versioned == [], f"versioned statements ran again: {[s.sql[:60] for s in versioned]}"
    for s in ran:
        if s.sql.startswith("CREATE TABLE"):
            assert s.sql.startswith("CREATE TABLE IF NOT EXISTS"), s.sql
    assert {s.database for s in ran} == set(by_target)
    after = {t: _snapshot(e) for t, e in engines.items()}
    assert after == before
    # And a third run plans exactly the same idempotent statements.
    assert [s.sql for s in migrate.apply(topo, by_target)] == [s.sql for s in ran]
