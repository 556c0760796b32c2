"""Idempotency keys: replay, conflict, and twenty concurrent requests with one key."""

from __future__ import annotations

import asyncio

import pytest

from payments.errors import IdempotencyConflict, InsufficientFunds
from regions.policy_gate import PolicyGate
from regions.router import Router
from tests.integration.helpers import open_accounts, scalar, transfer

gate = PolicyGate()
"""Policies at their defaults (no approved change in these tests)."""


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


async def test_non_atomic_batch_with_every_item_failing_still_has_its_journal(
        router: Router, make_principal) -> None:
    from regions import commands

    who = await make_principal()
    a, b = await open_accounts(router, who, "EUR", 2)
    batch = commands.CreateTransferBatch(
        (commands.TransferItem(a, b, 500, "EUR", None),), atomic=False, idempotency_key="all-fail")
    response = await router.run(
        who.region, lambda c: commands.create_transfer_batch_txn(c, who, gate, batch))
    assert response["items"] == [{"code": "INSUFFICIENT_FUNDS",
                                  "message": f"account {a!r} has insufficient available funds"}]
    assert await scalar(router, who.region, "SELECT count(*) FROM journals WHERE id = :j",
                        j=response["id"]) == 1


async def test_replay_of_a_key_purged_meanwhile_is_claimed_afresh(
        router: Router, make_principal, monkeypatch) -> None:
    """The purge may delete an expired key between a request's claim and its read."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.dialects.postgresql import JSONB

    from regions import idempotency

    who = await make_principal()
    calls = []

    async def effect():  # type: ignore[no-untyped-def]
        calls.append(1)
        return {"type": "Noop"}, []

    # The first claim finds the stale row and, in the same breath, the purge deletes it; the
    # next claim then inserts normally.
    monkeypatch.setattr(idempotency, "_claim", text("""
        WITH purged AS (
            DELETE FROM idempotency_keys
            WHERE region = :region AND tenant_id = :tenant_id AND key = :key
              AND operation = 'stale' RETURNING 1)
        INSERT INTO idempotency_keys (region, tenant_id, key, operation, request_hash, response)
        SELECT :region, :tenant_id, :key, :operation, :request_hash, :response
        WHERE NOT EXISTS (SELECT 1 FROM purged)
        ON CONFLICT DO NOTHING
        RETURNING key""").bindparams(bindparam("response", type_=JSONB)))

    async def body(conn):  # type: ignore[no-untyped-def]
        await conn.execute(text("""INSERT INTO idempotency_keys
            (region, tenant_id, key, operation, request_hash, response)
            VALUES (:r, :t, 'purged', 'stale', '\\x00', '{}')"""),
            {"r": who.region, "t": who.tenant.id})
        return await idempotency.once(conn, who, "purged", "fresh", {}, effect)

    assert await router.run(who.region, body) == {"type": "Noop"}
    assert calls == [1]
