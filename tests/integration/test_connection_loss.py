"""Lost connections in the retry wrapper, on real PostgreSQL.

A backend terminated (``pg_terminate_backend``) before COMMIT went out rolled its transaction
back: the wrapper runs the body again on a fresh connection, and it commits once. Lost while
committing, the outcome is unknown, so the wrapper never retries it: ``CommitOutcomeUnknown``.
A database that cannot be reached ends in ``DatabaseUnavailable``. (What the API answers:
tests/e2e/test_database_unavailable.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError, ResourceClosedError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from regions import txn
from regions.databases import sqlalchemy_url
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.integration.test_retry import _count, _mark

REGION = "eu-central"
unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A database URL whose server accepts connections and never answers (the kernel
    completes the handshake; nothing reads)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/silent"


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def terminate(url: str, pid: int) -> None:
    """Ends backend ``pid`` from a connection of its own (blocking: tests only)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


@pytest.fixture
def cluster_url(db_urls: DatabaseUrls, topo: Topology) -> str:
    return db_urls.clusters[topo.region(REGION).cluster]


async def _pid(conn: AsyncConnection) -> int:
    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _count_on(engine: AsyncEngine, marker: str) -> int:
    """``_count`` through a test's own engine (the router's pools are not the ones at fault)."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM outbox WHERE id = :id"),
                                       {"id": marker})).scalar_one())


async def test_a_dead_pooled_connection_is_replaced_and_the_body_commits_once(
    cluster_url: str,
) -> None:
    engine = create_async_engine(sqlalchemy_url(cluster_url), pool_size=1)
    try:
        async with engine.connect() as conn:  # the pool now holds this connection
            pooled = await _pid(conn)
        terminate(cluster_url, pooled)
        attempts = 0
        pids: list[int] = []

        async def body(conn: AsyncConnection) -> int:
            nonlocal attempts
            attempts += 1
            pids.append(await _pid(conn))  # the dead connection fails here
            await _mark(conn, "lost-pooled")
            return attempts

        assert await txn.run_txn(engine, body) == 2
        assert len(pids) == 1
        assert pids[0] != pooled, "the retry ran on a fresh connection"
        assert await _count_on(engine, "lost-pooled") == 1
    finally:
        await engine.dispose()


async def test_a_connection_lost_mid_body_rolls_back_and_the_body_runs_again(
    router: Router, cluster_url: str,
) -> None:
    calls = 0

    async def body(conn: AsyncConnection) -> str:
        nonlocal calls
        calls += 1
        await _mark(conn, "lost-mid-body")
        if calls == 1:
            terminate(cluster_url, await _pid(conn))
            await conn.execute(text("SELECT 1"))  # the connection is gone
        return "done"

    assert await router.run(REGION, body) == "done"
    assert calls == 2
    assert await _count(router, "lost-mid-body") == 1, "the first attempt rolled back"


async def test_a_connection_lost_while_committing_is_never_retried(cluster_url: str) -> None:
    engine = create_async_engine(sqlalchemy_url(cluster_url), pool_size=1)
    pids: list[int] = []

    @event.listens_for(engine.sync_engine, "commit")
    def _lose_connection(_: Any) -> None:  # runs just before COMMIT is sent
        terminate(cluster_url, pids[-1])

    calls = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        pids.append(await _pid(conn))
        await _mark(conn, "lost-at-commit")

    try:
        with pytest.raises(txn.CommitOutcomeUnknown):
            await txn.run_txn(engine, body)
        assert calls == 1, "an ambiguous commit is not run again"
        event.remove(engine.sync_engine, "commit", _lose_connection)
        # here the COMMIT never reached the server
        assert await _count_on(engine, "lost-at-commit") == 0
    finally:
        await engine.dispose()


async def test_a_conflict_at_commit_is_still_retried(router: Router) -> None:
    """40001 raised by COMMIT (CockroachDB's usual place for it) is a conflict, not a lost
    connection: nothing committed, so the body runs again."""
    calls = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await _mark(conn, f"conflict-at-commit-{calls}")
        if calls == 1:  # a deferred trigger, on a table of this transaction's own, fails
            await conn.execute(text("CREATE TEMP TABLE commit_gate (x int) ON COMMIT DROP"))
            await conn.execute(text("""
                CREATE FUNCTION pg_temp.fail_40001() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'forced at commit' USING ERRCODE = '40001'; END $$
                LANGUAGE plpgsql"""))
            await conn.execute(text("""
                CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON commit_gate
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                EXECUTE FUNCTION pg_temp.fail_40001()"""))
            await conn.execute(text("INSERT INTO commit_gate VALUES (1)"))

    await router.run(REGION, body)
    assert calls == 2
    assert await _count(router, "conflict-at-commit-1") == 0
    assert await _count(router, "conflict-at-commit-2") == 1


async def test_an_unreachable_database_is_unavailable_after_the_tries() -> None:
    engine = create_async_engine(unreachable)
    calls = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1

    try:
        with pytest.raises(txn.DatabaseUnavailable):
            await txn.run_txn(engine, body, tries=3)
        assert calls == 0
    finally:
        await engine.dispose()


async def test_a_connection_closed_while_being_set_up_is_retried(cluster_url: str) -> None:
    """SQLAlchemy reports a connection terminated during its own setup as
    ``ResourceClosedError`` (seen in the bank test): nothing ran, so it is retried."""
    engine = create_async_engine(sqlalchemy_url(cluster_url), pool_size=1)
    closed_once: list[bool] = []

    @event.listens_for(engine.sync_engine, "engine_connect")
    def _closed_during_setup(connection: Any) -> None:
        if not closed_once:
            closed_once.append(True)
            connection.invalidate()  # as when its backend was terminated
            connection.close()
            raise ResourceClosedError("This Connection is closed")

    calls = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await _mark(conn, "closed-at-setup")

    try:
        await txn.run_txn(engine, body)
        assert closed_once == [True]
        assert calls == 1
        assert await _count_on(engine, "closed-at-setup") == 1
    finally:
        await engine.dispose()


async def test_a_body_that_uses_a_closed_result_is_not_retried(router: Router) -> None:
    calls = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        result = await conn.execute(text("SELECT 1"))
        result.close()
        result.fetchall()  # a bug in the body, not a lost connection

    with pytest.raises(ResourceClosedError):
        await router.run(REGION, body)
    assert calls == 1


async def test_reachable_says_whether_a_region_answers(
        topo: Topology, db_urls: DatabaseUrls) -> None:
    """``Router.reachable`` (the scheduler asks it before sending a region's job): a pooled
    connection the server dropped is not an outage; a closed port, a database the server
    refuses (an error that is not a lost connection) and a server that accepts connections and
    never answers are, the last within the timeout."""
    live = Router(topo, db_urls, pool_size=1)
    try:
        assert await live.reachable(REGION)
        terminate(db_urls.clusters[topo.region(REGION).cluster], await live.read(REGION, _pid))
        assert await live.reachable(REGION), "a dropped pooled connection is not an outage"
    finally:
        await live.dispose()

    with silent_server() as silent:
        missing = make_url(db_urls.clusters[topo.region(REGION).cluster]).set(
            database="corridor_no_such_database").render_as_string(hide_password=False)
        for url in (unreachable, missing, silent):
            down = Router(topo, DatabaseUrls(db_urls.control, dict.fromkeys(db_urls.clusters,
                                                                            url)), pool_size=1)
            try:
                # The outer limit only keeps a regression from hanging the suite.
                assert not await asyncio.wait_for(down.reachable(REGION, timeout_s=0.5), 30)
            finally:
                await down.dispose()


async def test_a_server_that_never_answers_fails_the_connection_at_the_default_timeout(
        topo: Topology, db_urls: DatabaseUrls) -> None:
    """psycopg would wait 130 s for a server that accepts and never answers; the router's
    engines give up after ``connect_timeout_s_default`` (5 s), so the retry wrapper can go on.
    The outer limit (30 s) is far below psycopg's own default: hitting it fails the test."""
    with silent_server() as url:
        down = Router(topo, DatabaseUrls(url, dict.fromkeys(db_urls.clusters, url)),
                      pool_size=1)
        try:
            with pytest.raises(DBAPIError, match="timeout"):
                await asyncio.wait_for(_connect(down.engine_for(REGION)), 30)
        finally:
            await down.dispose()


async def _connect(engine: AsyncEngine) -> None:
    async with engine.connect():
        pass
