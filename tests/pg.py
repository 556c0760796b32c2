"""The PostgreSQL server the tests use: ``CORRIDOR_TEST_DATABASE_URL``, else a local one on
127.0.0.1:5432, else an embedded one. Tests never skip for want of PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from regions.local_pg import server_url as _server_url


@contextmanager
def server_url() -> Iterator[str]:
    with _server_url(os.environ.get("CORRIDOR_TEST_DATABASE_URL")) as url:
        yield url
