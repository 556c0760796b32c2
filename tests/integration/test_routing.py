"""A tenant's rows land only in its home region's partition; cn-east only in its own database."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from regions.ddl import partition_name
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.integration.helpers import open_accounts, transfer

regional_tables = ("accounts", "journals", "transfers", "entries", "idempotency_keys",
                   "outbox", "audit_events")


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def count_by_partition(url: str, table: str, tenant_id: str, partitions: list[str]) -> dict:
    """Rows of the tenant per partition table, read directly (not through the parent)."""
    out = {}
    with psycopg.connect(libpq(url)) as conn:
        for p in partitions:
            column = "tenant_id"
            if table == "entries":
                out[p] = conn.execute(
                    f"SELECT count(*) FROM {p} e JOIN accounts a "
                    f"ON a.region = e.region AND a.id = e.account_id WHERE a.tenant_id = %s",
                    (tenant_id,)).fetchone()[0]
            else:
                out[p] = conn.execute(f"SELECT count(*) FROM {p} WHERE {column} = %s",
                                      (tenant_id,)).fetchone()[0]
    return out


async def _activity(router: Router, make_principal, jurisdiction: str):
    who = await make_principal(jurisdiction)
    currency = {"EU": "EUR", "UK": "GBP", "US": "USD", "SG": "SGD", "CN": "CNY"}[jurisdiction]
    a, b = await open_accounts(router, who, currency, 2, funding_minor=10_000)
    await transfer(router, who, a, b, 100, currency, f"route-{who.tenant.id}")
    return who


@pytest.mark.parametrize("jurisdiction", ["EU", "UK", "US", "SG"])
async def test_rows_land_in_home_partition_only(
    router: Router, make_principal, topo: Topology, db_urls: DatabaseUrls, jurisdiction: str
) -> None:
    who = await _activity(router, make_principal, jurisdiction)
    assert who.region == topo.regions_for(jurisdiction)[0].code
    url = db_urls.clusters["global"]
    for table in regional_tables:
        parts = [partition_name(table, r.code) for r in topo.regions_of("global")]
        counts = count_by_partition(url, table, who.tenant.id, parts)
        home = partition_name(table, who.region)
        assert counts[home] > 0, (table, counts)
        assert all(n == 0 for p, n in counts.items() if p != home), (table, counts)
    sovereign = count_by_partition(db_urls.clusters["cn"], "accounts", who.tenant.id,
                                   [partition_name("accounts", "cn-east")])
    assert sovereign == {"accounts__cn_east": 0}


async def test_sovereign_rows_only_in_sovereign_database(
    router: Router, make_principal, db_urls: DatabaseUrls
) -> None:
    who = await _activity(router, make_principal, "CN")
    assert who.region == "cn-east"
    for table in regional_tables:
        counts = count_by_partition(db_urls.clusters["cn"], table, who.tenant.id,
                                    [partition_name(table, "cn-east")])
        assert counts[partition_name(table, "cn-east")] > 0, table
        with psycopg.connect(libpq(db_urls.clusters["global"])) as conn:
            if table == "entries":
                continue  # entries carry no tenant column; accounts above cover them
            leaked = conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                                  (who.tenant.id,)).fetchone()[0]
            assert leaked == 0, table


def test_a_partition_refuses_rows_of_other_regions(db_urls: DatabaseUrls) -> None:
    """The sovereign database has no partition for any other region: such a row cannot land."""
    with psycopg.connect(libpq(db_urls.clusters["cn"])) as conn, pytest.raises(
        psycopg.errors.CheckViolation
    ):
        conn.execute(
            "INSERT INTO accounts (region, id, tenant_id, kind, currency, "
            "debits_must_not_exceed_credits) VALUES ('eu-central', 'acc_x', 'ten_x', "
            "'customer', 'EUR', true)")


async def test_router_maps_regions_to_cluster_engines(router: Router, topo: Topology) -> None:
    cn = router.engine_for("cn-east")
    assert all(router.engine_for(r.code) is not cn for r in topo.regions_of("global"))
    assert len({id(router.engine_for(r.code)) for r in topo.regions_of("global")}) == 1
    with pytest.raises(KeyError):
        router.engine_for("mars-north")
