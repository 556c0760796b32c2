"""Local databases for one PostgreSQL server: the control database and one per cluster.

Used by ``corridor dev`` (embedded or an existing server) and the tests. In production every
cluster has its own URL from the environment (see ``api.settings``).
"""

from __future__ import annotations

import re

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from regions.ddl import cluster_target, control_target
from regions.router import DatabaseUrls
from regions.topology import Topology

_name = re.compile(r"[a-z][a-z0-9_]{0,40}")


def sqlalchemy_url(url: str) -> str:
    """Accept libpq-style ``postgresql://`` URLs and pin the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "cockroachdb":
        parsed = parsed.set(drivername="cockroachdb+psycopg")
    return parsed.render_as_string(hide_password=False)


def database_names(topo: Topology, prefix: str) -> dict[str, str]:
    """Migration target -> database name on the local server."""
    assert _name.fullmatch(prefix), prefix
    names = {control_target(): f"{prefix}_control"}
    for c in topo.clusters:
        names[cluster_target(c)] = f"{prefix}_{c.name.replace('-', '_')}"
    return names


def local_urls(server_url: str, topo: Topology, prefix: str) -> tuple[DatabaseUrls, dict[str, str]]:
    """The router's URLs and the migration targets' URLs for databases on one server."""
    base = make_url(sqlalchemy_url(server_url))
    by_target = {t: base.set(database=n).render_as_string(hide_password=False)
                 for t, n in database_names(topo, prefix).items()}
    clusters = {c.name: by_target[cluster_target(c)] for c in topo.clusters}
    return DatabaseUrls(by_target[control_target()], clusters), by_target


def ensure_databases(server_url: str, topo: Topology, prefix: str, *, fresh: bool = False) -> None:
    """Create the databases that do not exist yet (``fresh`` drops them first)."""
    engine = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in database_names(topo, prefix).values():
                if fresh:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                      {"n": name}).first()
                if exists is None:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def drop_databases(server_url: str, topo: Topology, prefix: str) -> None:
    engine = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in database_names(topo, prefix).values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
