"""The retry wrapper: 40001 and 40P01 retried; exhausted retries leave nothing written."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import InsufficientFunds
from regions import txn
from regions.router import Router
from tests.integration.helpers import open_accounts, scalar

REGION = "eu-central"


def raise_sqlstate(state: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '{state}'; END $$"


async def _mark(conn: AsyncConnection, marker: str) -> None:
    await conn.execute(text(
        "INSERT INTO outbox (region, id, topic, payload) VALUES (:r, :id, 'test', '{}')"),
        {"r": REGION, "id": marker})


async def _count(router: Router, marker: str) -> int:
    return int(await scalar(router, REGION, "SELECT count(*) FROM outbox WHERE id = :id",
                            id=marker))


@pytest.mark.parametrize("state", ["40001", "40P01"])
async def test_retryable_error_is_retried(router: Router, state: str) -> None:
    attempts = 0
    marker = f"retry-ok-{state}"

    async def body(conn: AsyncConnection) -> str:
        nonlocal attempts
        attempts += 1
        await _mark(conn, marker)
        if attempts == 1:
            await conn.execute(text(raise_sqlstate(state)))
        return "done"

    assert await router.run(REGION, body) == "done"
    assert attempts == 2
    assert await _count(router, marker) == 1


async def test_exhausted_retries_give_clean_error_and_no_partial_write(router: Router) -> None:
    attempts = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await _mark(conn, "retry-exhausted")
        await conn.execute(text(raise_sqlstate("40001")))

    with pytest.raises(txn.RetriesExhausted) as caught:
        await router.run(REGION, body)
    assert attempts == txn.attempts_max
    assert caught.value.sqlstate == "40001"
    assert await _count(router, "retry-exhausted") == 0


async def test_other_errors_are_not_retried(router: Router) -> None:
    attempts = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await _mark(conn, "dup")
        await _mark(conn, "dup")

    with pytest.raises(IntegrityError):
        await router.run(REGION, body)
    assert attempts == 1
    assert await _count(router, "dup") == 0


async def test_domain_errors_are_not_retried(router: Router, make_principal) -> None:
    who = await make_principal()
    a, = await open_accounts(router, who, "EUR", 1)
    attempts = 0

    async def body(conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        raise InsufficientFunds(a)

    with pytest.raises(InsufficientFunds):
        await router.run(who.region, body)
    assert attempts == 1


async def test_locked_read_modify_write_loses_no_update(router: Router, make_principal) -> None:
    """Concurrent read-modify-write of one row under FOR UPDATE: every increment survives."""
    who = await make_principal()
    acc, = await open_accounts(router, who, "EUR", 1)

    async def bump(conn: AsyncConnection) -> None:
        current = (await conn.execute(text(
            "SELECT entry_seq FROM accounts WHERE id = :a FOR UPDATE"), {"a": acc})).scalar_one()
        await asyncio.sleep(0.005)
        await conn.execute(text("UPDATE accounts SET entry_seq = :v WHERE id = :a"),
                           {"a": acc, "v": current + 1})

    await asyncio.gather(*[router.run(who.region, bump) for _ in range(20)])
    assert await scalar(router, who.region,
                        "SELECT entry_seq FROM accounts WHERE id = :a", a=acc) == 20


async def test_transactions_run_at_the_production_isolation_level(router: Router) -> None:
    level = await scalar(router, REGION, "SHOW transaction_isolation")
    assert level == "read committed"
    assert await router.run_control(
        lambda c: _show(c)) == "read committed"


async def _show(conn: AsyncConnection) -> str:
    return str((await conn.execute(text("SHOW transaction_isolation"))).scalar_one())


async def test_concurrent_first_use_of_an_internal_account_creates_one(router: Router) -> None:
    from regions.ledger_store import internal_account

    found = await asyncio.gather(*[
        router.run(REGION, lambda c: internal_account(c, REGION, "race-test", "CHF"))
        for _ in range(10)])
    assert len(set(found)) == 1


def test_backoff_is_bounded() -> None:
    for attempt in range(1, 30):
        assert 0 <= txn.backoff_s(attempt) <= txn.backoff_ms_max / 1000
