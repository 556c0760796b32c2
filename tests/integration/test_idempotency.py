"""Idempotency keys: replay, conflict, and twenty concurrent requests with one key."""

from __future__ import annotations

import asyncio

import pytest

from payments.errors import IdempotencyConflict, InsufficientFunds
from regions.router import Router
from tests.integration.helpers import open_accounts, scalar, transfer


async def test_replay_returns_same_result_without_second_effect(router: Router,
                                                                make_principal) -> None:
    who = await make_principal()
    a, b = await open_accounts(router, who, "EUR", 2, funding_minor=1_000)
    first = await transfer(router, who, a, b, 300, "EUR", "replay")
    second = await transfer(router, who, a, b, 300, "EUR", "replay")
    assert first == second
    moved = await scalar(router, who.region, "SELECT credits_posted FROM accounts WHERE id = :b",
                         b=b)
    assert moved == 300
    count = await scalar(router, who.region,
                         "SELECT count(*) FROM transfers WHERE debit_account_id = :a", a=a)
    assert count == 1


async def test_same_key_different_request_conflicts(router: Router, make_principal) -> None:
    who = await make_principal()
    a, b = await open_accounts(router, who, "EUR", 2, funding_minor=1_000)
    await transfer(router, who, a, b, 300, "EUR", "conflict")
    with pytest.raises(IdempotencyConflict):
        await transfer(router, who, a, b, 301, "EUR", "conflict")
    with pytest.raises(IdempotencyConflict):
        await transfer(router, who, b, a, 300, "EUR", "conflict")
    assert await scalar(router, who.region,
                        "SELECT credits_posted FROM accounts WHERE id = :b", b=b) == 300


async def test_keys_are_per_tenant(router: Router, make_principal) -> None:
    one, two = await make_principal(), await make_principal()
    a1, b1 = await open_accounts(router, one, "EUR", 2, funding_minor=1_000)
    a2, b2 = await open_accounts(router, two, "EUR", 2, funding_minor=1_000)
    r1 = await transfer(router, one, a1, b1, 10, "EUR", "shared-key")
    r2 = await transfer(router, two, a2, b2, 10, "EUR", "shared-key")
    assert r1["id"] != r2["id"]


async def test_failed_request_leaves_no_key(router: Router, make_principal) -> None:
    """A domain error rolls back with its key: the same key may be retried after funding."""
    who = await make_principal()
    a, b = await open_accounts(router, who, "EUR", 2)
    with pytest.raises(InsufficientFunds):
        await transfer(router, who, a, b, 500, "EUR", "retry-after-funding")
    assert await scalar(router, who.region,
                        "SELECT count(*) FROM idempotency_keys WHERE key = :k AND tenant_id = :t",
                        k="retry-after-funding", t=who.tenant.id) == 0
    funded, = await open_accounts(router, who, "EUR", 1, funding_minor=1_000)
    result = await transfer(router, who, funded, b, 500, "EUR", "retry-after-funding")
    assert result["type"] == "Transfer"


async def test_twenty_concurrent_requests_one_effect(router: Router, make_principal) -> None:
    who = await make_principal()
    a, b = await open_accounts(router, who, "EUR", 2, funding_minor=10_000)
    results = await asyncio.gather(*[
        transfer(router, who, a, b, 700, "EUR", "concurrent") for _ in range(20)])
    assert len({r["id"] for r in results}) == 1
    assert await scalar(router, who.region,
                        "SELECT credits_posted FROM accounts WHERE id = :b", b=b) == 700
    assert await scalar(router, who.region,
                        "SELECT count(*) FROM transfers WHERE debit_account_id = :a", a=a) == 1
    assert await scalar(router, who.region,
                        "SELECT count(*) FROM outbox WHERE tenant_id = :t "
                        "AND topic = 'transfer.created'", t=who.tenant.id) == 1
