"""Settlement message streams on real PostgreSQL: numbered in commit order, applied once and
in order however often and in whatever order they are delivered, resent until acknowledged,
and bad bodies refused."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import xr
from regions.router import Router

regions = frozenset({"eu-central", "uk-south", "us-east", "ap-southeast", "cn-east"})
origin, destination = "uk-south", "us-east"


async def _reset(router: Router) -> None:
    """Each test starts both ends of the uk-south <-> us-east streams from nothing (and
    touches no other pair's)."""
    for region, peer in ((origin, destination), (destination, origin)):
        async def body(conn: AsyncConnection, region: str = region, peer: str = peer) -> None:
            for table in ("xr_outbox", "xr_inbox", "xr_streams"):
                await conn.execute(text(f"DELETE FROM {table} "
                                        "WHERE region = :r AND peer = :p"),
                                   {"r": region, "p": peer})
            await conn.execute(text("DELETE FROM message_inbox WHERE region = :r "
                                    "AND consumer = 'xr-test'"), {"r": region})

        await router.run(region, body)


@pytest_asyncio.fixture(autouse=True)
async def _clean_pair(router: Router) -> AsyncIterator[None]:
    """Each test starts and leaves the uk-south <-> us-east streams empty, so that no message
    it wrote is carried by another test's relay."""
    await _reset(router)
    yield
    await _reset(router)


async def _send(router: Router, n: int, tag: str) -> list[xr.Envelope]:
    for i in range(n):
        async def body(conn: AsyncConnection, i: int = i) -> str:
            return await xr.send(conn, origin, destination, "test.note", {"tag": tag, "i": i})

        await router.run(origin, body)

    async def published(conn: AsyncConnection) -> list[xr.Envelope]:
        return await xr.to_publish(conn, origin, destination, limit=n + 10)

    return await router.read(origin, published)


class Applied:
    """An apply that records each message's effect as a row whose key is the message id (a
    second effect would violate it) and remembers the order."""

    def __init__(self) -> None:
        self.order: list[int] = []

    async def __call__(self, conn: AsyncConnection, envelope: xr.Envelope) -> None:
        await conn.execute(text(
            "INSERT INTO message_inbox (region, consumer, message_id) "
            "VALUES (:r, 'xr-test', :m)"), {"r": envelope.destination, "m": envelope.id})
        self.order.append(envelope.payload["i"])


async def _deliver(router: Router, body: bytes, apply: Applied) -> int:
    envelope = xr.parse(body, destination, regions)
    return await router.run(destination, lambda c: xr.receive_txn(c, envelope, apply))


async def _effects(router: Router) -> int:
    async def body(conn: AsyncConnection) -> int:
        return int((await conn.execute(text(
            "SELECT count(*) FROM message_inbox WHERE region = :r AND consumer = 'xr-test'"),
            {"r": destination})).scalar_one())

    return await router.read(destination, body)


async def test_messages_are_numbered_per_stream_and_enveloped(router: Router) -> None:
    sent = await _send(router, 3, "a")
    assert [e.seq for e in sent] == [1, 2, 3]
    assert [e.id for e in sent] == [f"xrm:{origin}>{destination}:{i}" for i in (1, 2, 3)]
    assert {(e.origin, e.destination, e.kind) for e in sent} == {
        (origin, destination, "test.note")}
    body = json.loads(sent[0].to_json())
    assert body == {"v": 1, "id": sent[0].id, "origin": origin, "destination": destination,
                    "seq": 1, "kind": "test.note", "payload": {"i": 0, "tag": "a"}, "ack": 0,
                    "trace_context": None}


async def test_concurrent_senders_get_dense_numbers_in_commit_order(router: Router) -> None:
    """Twenty transactions race for numbers: every number is given once, none skipped, and a
    transaction that rolls back gives its number back."""

    async def one(i: int) -> None:
        async def body(conn: AsyncConnection) -> None:
            await xr.send(conn, origin, destination, "test.note", {"i": i})
            await asyncio.sleep(0.001)

        await router.run(origin, body)

    async def aborted(conn: AsyncConnection) -> None:
        await xr.send(conn, origin, destination, "test.note", {"i": -1})
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await router.run(origin, aborted)
    await asyncio.gather(*(one(i) for i in range(20)))

    async def seqs(conn: AsyncConnection) -> list[Any]:
        return list(await conn.execute(text(
            "SELECT seq, payload FROM xr_outbox WHERE region = :r AND peer = :p ORDER BY seq"),
            {"r": origin, "p": destination}))

    got = await router.read(origin, seqs)
    assert [r.seq for r in got] == list(range(1, 21))
    assert sorted(r.payload["i"] for r in got) == list(range(20))


async def test_in_order_delivery_applies_each_once(router: Router) -> None:
    sent = await _send(router, 5, "b")
    apply = Applied()
    assert [await _deliver(router, e.to_json(), apply) for e in sent] == [1, 1, 1, 1, 1]
    assert apply.order == [0, 1, 2, 3, 4]
    assert [await _deliver(router, e.to_json(), apply) for e in sent] == [0, 0, 0, 0, 0]
    assert await _effects(router) == 5

    async def stream(conn: AsyncConnection) -> list[xr.Stream]:
        # Other tests of the session have streams into this region from other peers.
        return [s for s in await xr.streams(conn, destination) if s.peer == origin]

    [s] = await router.read(destination, stream)
    assert (s.peer, s.applied_seq, s.waiting) == (origin, 5, 0)


async def test_an_early_message_waits_for_the_ones_before_it(router: Router) -> None:
    sent = await _send(router, 3, "c")
    apply = Applied()
    assert await _deliver(router, sent[2].to_json(), apply) == 0
    assert await _deliver(router, sent[1].to_json(), apply) == 0
    assert apply.order == []

    async def stream(conn: AsyncConnection) -> list[xr.Stream]:
        # Other tests of the session have streams into this region from other peers.
        return [s for s in await xr.streams(conn, destination) if s.peer == origin]

    [s] = await router.read(destination, stream)
    assert (s.applied_seq, s.waiting) == (0, 2)
    assert await _deliver(router, sent[0].to_json(), apply) == 3
    assert apply.order == [0, 1, 2]


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_delivery_order_with_duplicates_has_one_effect_each_in_order(
        router: Router, data: st.DataObject) -> None:
    await _reset(router)  # hypothesis runs many examples in one test
    n = data.draw(st.integers(1, 6), label="messages")
    sent = await _send(router, n, uuid.uuid4().hex)
    deliveries = data.draw(st.lists(st.sampled_from(sent), min_size=0, max_size=3 * n),
                           label="extra deliveries")
    order = data.draw(st.permutations([*sent, *deliveries]), label="order")
    apply = Applied()
    for e in order:
        await _deliver(router, e.to_json(), apply)
    assert apply.order == list(range(n))
    assert await _effects(router) == n


async def test_the_sender_learns_acks_and_resends_what_stays_unacknowledged(
        router: Router) -> None:
    sent = await _send(router, 2, "d")

    async def mark(conn: AsyncConnection) -> None:
        await xr.mark_published(conn, origin, destination, [e.seq for e in sent], 0)

    await router.run(origin, mark)

    async def due(conn: AsyncConnection, resend_s: float) -> list[int]:
        return [e.seq for e in await xr.to_publish(conn, origin, destination, resend_s)]

    assert await router.read(origin, lambda c: due(c, 3600)) == []
    assert await router.read(origin, lambda c: due(c, 0)) == [1, 2]
    # The destination applies the first and answers on its own stream; its answer carries
    # the ack that tells the origin to stop resending message 1.
    await _deliver(router, sent[0].to_json(), Applied())

    async def answer(conn: AsyncConnection) -> list[xr.Envelope]:
        await xr.send(conn, destination, origin, "test.note", {"i": 0})
        return await xr.to_publish(conn, destination, origin)

    [reply] = await router.run(destination, answer)
    assert reply.ack == 1
    got = xr.parse(reply.to_json(), origin, regions)
    await router.run(origin, lambda c: xr.receive_txn(c, got, Applied()))
    assert await router.read(origin, lambda c: due(c, 0)) == [2]


async def test_a_region_with_nothing_to_say_acknowledges_with_a_bare_ack(router: Router) -> None:
    """The destination applied two messages and has nothing of its own to send: it owes the
    origin a bare acknowledgement, sends it once, and the origin stops resending."""
    sent = await _send(router, 2, "e")
    for e in sent:
        await _deliver(router, e.to_json(), Applied())

    async def owed(conn: AsyncConnection) -> xr.Envelope | None:
        return await xr.ack_due(conn, destination, origin)

    ack = await router.read(destination, owed)
    assert ack is not None
    assert (ack.kind, ack.seq, ack.ack, ack.id) == (
        xr.ack_kind, 0, 2, f"xrm:{destination}>{origin}:ack:2")

    async def told(conn: AsyncConnection) -> None:
        await xr.mark_published(conn, destination, origin, [], ack.ack)

    await router.run(destination, told)
    assert await router.read(destination, owed) is None, "acknowledged once"
    got = xr.parse(ack.to_json(), origin, regions)
    applied = Applied()
    assert await router.run(origin, lambda c: xr.receive_txn(c, got, applied)) == 0
    assert applied.order == []

    async def resend(conn: AsyncConnection) -> list[xr.Envelope]:
        await xr.mark_published(conn, origin, destination, [e.seq for e in sent], 0)
        return await xr.to_publish(conn, origin, destination, resend_s=0)

    assert await router.run(origin, resend) == [], "nothing left to resend"

    async def inbox(conn: AsyncConnection) -> int:
        return int((await conn.execute(text(
            "SELECT count(*) FROM xr_inbox WHERE region = :r AND peer = :p AND seq = 0"),
            {"r": origin, "p": destination})).scalar_one())

    assert await router.read(origin, inbox) == 0, "acknowledgements are never stored"


async def test_a_message_whose_effect_fails_stops_its_stream_visibly(router: Router) -> None:
    """The second message's effect raises: nothing of it is applied, the stream waits there
    (the third, delivered meanwhile, goes back to the broker with its failed transaction), the
    failure is recorded on the second's inbox row, and once the cause is gone all apply in
    order."""
    sent = await _send(router, 3, "f")
    broken = {2}

    class Flaky(Applied):
        async def __call__(self, conn: AsyncConnection, envelope: xr.Envelope) -> None:
            if envelope.seq in broken:
                raise KeyError("a field this version does not know")
            await super().__call__(conn, envelope)

    apply = Flaky()
    receive = receiver_with(router, apply)
    assert await receive(sent[0]) == 1
    for e in sent[1:]:
        with pytest.raises(xr.ApplyFailed, match="could not apply message 2"):
            await receive(e)

    async def stream(conn: AsyncConnection) -> xr.Stream:
        [s] = [s for s in await xr.streams(conn, destination) if s.peer == origin]
        return s

    s = await router.read(destination, stream)
    assert (s.applied_seq, s.waiting, s.failing) == (1, 1, 1)

    async def error(conn: AsyncConnection) -> Any:
        return (await conn.execute(text(
            "SELECT failures, last_error FROM xr_inbox WHERE region = :r AND peer = :p "
            "AND seq = 2"), {"r": destination, "p": origin})).one()

    row = await router.read(destination, error)
    assert row.failures == 2
    assert "a field this version does not know" in row.last_error
    broken.clear()
    assert await receive(sent[1]) == 1
    assert await receive(sent[2]) == 1
    assert apply.order == [0, 1, 2]
    s = await router.read(destination, stream)
    assert (s.applied_seq, s.waiting, s.failing) == (3, 0, 0)


def receiver_with(router: Router, apply: Applied) -> Any:
    """Deliver like ``workers.settlement.receiver``: a failed effect is recorded, then raised."""
    async def receive(envelope: xr.Envelope) -> int:
        got = xr.parse(envelope.to_json(), destination, regions)
        try:
            return await router.run(destination, lambda c: xr.receive_txn(c, got, apply))
        except xr.ApplyFailed as failed:
            await router.run(destination, lambda c, f=failed: xr.record_failure(c, got, f))
            raise

    return receive


@pytest.mark.parametrize(("change", "problem"), [
    (lambda b: b"not json", "not JSON"),
    (lambda b: json.dumps([1]).encode(), "not a version 1"),
    (lambda b: _edit(b, v=2), "not a version 1"),
    (lambda b: _edit(b, destination="eu-central"), "addressed to 'eu-central'"),
    (lambda b: _edit(b, origin="us-east"), "is not another region"),
    (lambda b: _edit(b, origin="mars-north"), "is not another region"),
    (lambda b: _edit(b, seq=0), "seq must be a positive integer"),
    (lambda b: _edit(b, seq="1"), "seq must be a positive integer"),
    (lambda b: _edit(b, ack=-1), "ack must be a natural number"),
    (lambda b: _edit(b, kind="xr.ack"), "an acknowledgement has seq 0"),
    (lambda b: _edit(b, kind="xr.ack", seq=0), "an acknowledgement has seq 0"),
    (lambda b: _edit(b, kind=""), "kind must be a short string"),
    (lambda b: _edit(b, kind="k" * 65), "kind must be a short string"),
    (lambda b: _edit(b, payload=[1]), "payload must be an object"),
    (lambda b: _edit(b, id="xrm:uk-south>us-east:9"), "id does not match"),
])
def test_bad_bodies_are_refused_with_the_reason(change: Any, problem: str) -> None:
    good = xr.Envelope(xr.message_id(origin, destination, 1), origin, destination, 1,
                       "test.note", {}, 0).to_json()
    assert xr.parse(good, destination, regions).seq == 1
    with pytest.raises(xr.MalformedMessage, match=problem):
        xr.parse(change(good), destination, regions)


def _edit(body: bytes, **changes: Any) -> bytes:
    raw = json.loads(body)
    raw.update(changes)
    return json.dumps(raw).encode()


async def test_a_region_does_not_message_itself(router: Router) -> None:
    async def body(conn: AsyncConnection) -> None:
        await xr.send(conn, origin, origin, "test.note", {})

    with pytest.raises(ValueError, match="itself"):
        await router.run(origin, body)


def test_message_ids_are_distinct_per_stream() -> None:
    ids = {xr.message_id(a, b, s) for a, b in itertools.permutations(sorted(regions), 2)
           for s in (1, 2)}
    assert len(ids) == 20 * 2
