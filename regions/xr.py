"""Messages between regions: numbered streams, sent from an outbox, applied in order, once.

Between two regions run two one-way streams. A message for a peer is written to ``xr_outbox``
in the transaction of the effect that causes it, numbered by the stream's ``sent_seq`` (taken
under the stream row's lock, so numbers follow commit order). The settlement relay publishes a
stream's messages in order to the peer's RabbitMQ vhost (``workers.xr_transport``).

The peer's consumer hands each message to ``receive_txn``, which stores it in ``xr_inbox`` by
number and applies every stored message that is next in line, each in the same transaction as
its effect: a duplicate (a number already stored) has no effect, an early arrival waits in the
inbox for the ones before it, and a crash before commit leaves the message unacknowledged, to
be delivered again. A message whose effect fails (a bug, or a kind this version does not know)
stops its stream there rather than be skipped, since a skipped message is money lost: it raises
``ApplyFailed``, and the consumer records the failure on the message's inbox row
(``record_failure``) for operators to see (``streams``, reconciliation's ``STREAM_STUCK``).

Every message carries ``ack``: the last message of the other stream applied by its sender. When
a region has applied messages but has nothing of its own to send back, the relay sends a bare
acknowledgement (kind ``xr.ack``, number 0, never stored), so the sender learns how far its
peer has got; what stays unacknowledged past ``resend_after_s`` is published again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import telemetry

envelope_version = 1
resend_after_s = 60
publish_batch_max = 100
kind_length_max = 64
error_length_max = 500
ack_kind = "xr.ack"


class MalformedMessage(ValueError):
    """A body that is not a settlement message for this region: it is refused, not applied."""


class ApplyFailed(Exception):
    """The effect of the stream's next message failed; the stream waits at ``seq``."""

    def __init__(self, region: str, peer: str, seq: int, cause: BaseException) -> None:
        super().__init__(f"{region} could not apply message {seq} from {peer}: {cause!r}")
        self.region = region
        self.peer = peer
        self.seq = seq
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    origin: str
    destination: str
    seq: int
    kind: str
    payload: dict[str, Any]
    ack: int
    trace_context: str | None = None

    def to_json(self) -> bytes:
        return json.dumps({
            "v": envelope_version, "id": self.id, "origin": self.origin,
            "destination": self.destination, "seq": self.seq, "kind": self.kind,
            "payload": self.payload, "ack": self.ack, "trace_context": self.trace_context,
        }, separators=(",", ":"), sort_keys=True).encode()


def message_id(origin: str, destination: str, seq: int) -> str:
    return f"xrm:{origin}>{destination}:{seq}"


def ack_id(origin: str, destination: str, ack: int) -> str:
    return f"xrm:{origin}>{destination}:ack:{ack}"


def acknowledgement(origin: str, destination: str, ack: int) -> Envelope:
    """A bare acknowledgement: ``origin`` has applied ``destination``'s messages up to ``ack``."""
    return Envelope(ack_id(origin, destination, ack), origin, destination, 0, ack_kind, {}, ack)


def parse(body: bytes, region: str, regions: frozenset[str]) -> Envelope:
    """The envelope of a message delivered to ``region``; ``MalformedMessage`` says why not."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("v") != envelope_version:
        raise MalformedMessage(f"not a version {envelope_version} settlement envelope")
    origin, destination, seq = raw.get("origin"), raw.get("destination"), raw.get("seq")
    kind, payload, ack = raw.get("kind"), raw.get("payload"), raw.get("ack", 0)
    if destination != region:
        raise MalformedMessage(f"addressed to {destination!r}, delivered to {region!r}")
    if origin not in regions or origin == region:
        raise MalformedMessage(f"origin {origin!r} is not another region")
    if type(ack) is not int or ack < 0:
        raise MalformedMessage("ack must be a natural number")
    if kind == ack_kind:
        if seq != 0 or raw.get("id") != ack_id(origin, region, ack):
            raise MalformedMessage("an acknowledgement has seq 0 and the id of its ack")
        return acknowledgement(origin, region, ack)
    if type(seq) is not int or seq <= 0:
        raise MalformedMessage("seq must be a positive integer")
    if not isinstance(kind, str) or not 0 < len(kind) <= kind_length_max:
        raise MalformedMessage("kind must be a short string")
    if not isinstance(payload, dict):
        raise MalformedMessage("payload must be an object")
    if raw.get("id") != message_id(origin, region, seq):
        raise MalformedMessage("id does not match origin, destination and seq")
    trace = raw.get("trace_context")
    return Envelope(raw["id"], origin, region, seq, kind, payload, ack,
                    trace if isinstance(trace, str) else None)


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


_next_seq = text("""
    INSERT INTO xr_streams (region, peer, sent_seq) VALUES (:region, :peer, 1)
    ON CONFLICT (region, peer) DO UPDATE
        SET sent_seq = xr_streams.sent_seq + 1, updated_at = now()
    RETURNING sent_seq""")
_store_out = text("""
    INSERT INTO xr_outbox (region, peer, seq, id, kind, payload, trace_context)
    VALUES (:region, :peer, :seq, :id, :kind, CAST(:payload AS JSONB), :trace)""")


async def send(conn: AsyncConnection, region: str, peer: str, kind: str,
               payload: dict[str, Any]) -> str:
    """Queue a message for ``peer`` in the caller's transaction; returns its id.

    Taking the number locks the stream's row until commit: a region's messages to one peer are
    written one transaction at a time, which is what makes their numbers their commit order.
    """
    if peer == region:
        raise ValueError("a region does not send settlement messages to itself")
    if kind == ack_kind:
        raise ValueError("acknowledgements are not numbered messages")
    seq = int((await conn.execute(_next_seq, {"region": region, "peer": peer})).scalar_one())
    mid = message_id(region, peer, seq)
    await conn.execute(_store_out, {
        "region": region, "peer": peer, "seq": seq, "id": mid, "kind": kind,
        "payload": _json(payload), "trace": telemetry.current_context()})
    return mid


Apply = Callable[[AsyncConnection, Envelope], Awaitable[None]]
"""Carry out one message's effect in the receiving region, inside the receiving transaction."""

_store_in = text("""
    INSERT INTO xr_inbox (region, peer, seq, message_id, kind, payload, trace_context)
    VALUES (:region, :peer, :seq, :id, :kind, CAST(:payload AS JSONB), :trace)
    ON CONFLICT (region, peer, seq) DO NOTHING""")
_lock_stream = text("""
    INSERT INTO xr_streams (region, peer, acked_seq) VALUES (:region, :peer, :ack)
    ON CONFLICT (region, peer) DO UPDATE SET acked_seq = GREATEST(xr_streams.acked_seq, :ack)
    RETURNING applied_seq""")
_waiting = text("""
    SELECT seq, message_id, kind, payload, trace_context FROM xr_inbox
    WHERE region = :region AND peer = :peer AND seq > :after AND applied_at IS NULL
    ORDER BY seq LIMIT :n""")
_applied_in = text("""
    UPDATE xr_inbox SET applied_at = now(), last_error = NULL
    WHERE region = :region AND peer = :peer AND seq = ANY(CAST(:seqs AS BIGINT[]))""")
_advance = text("""
    UPDATE xr_streams SET applied_seq = :seq, updated_at = now()
    WHERE region = :region AND peer = :peer""")

apply_run_max = 500
"""Messages applied in one receiving transaction (the rest wait for the next delivery)."""


async def receive_txn(conn: AsyncConnection, envelope: Envelope, apply: Apply) -> int:
    """Store a delivered message and apply every stored one next in line; how many applied.

    The stream's row is locked first (a row per pair, created on first contact, with the
    sender's ack folded in), so two consumers delivering the same stream take turns. An
    acknowledgement only folds in its ack.
    """
    region, peer = envelope.destination, envelope.origin
    applied_seq = int((await conn.execute(_lock_stream, {
        "region": region, "peer": peer, "ack": envelope.ack})).scalar_one())
    if envelope.kind == ack_kind:
        return 0
    if envelope.seq > applied_seq:
        await conn.execute(_store_in, {
            "region": region, "peer": peer, "seq": envelope.seq, "id": envelope.id,
            "kind": envelope.kind, "payload": _json(envelope.payload),
            "trace": envelope.trace_context})
    rows = (await conn.execute(_waiting, {"region": region, "peer": peer,
                                         "after": applied_seq, "n": apply_run_max})).all()
    done: list[int] = []
    for row in rows:
        if row.seq != applied_seq + 1:
            break
        stored = Envelope(row.message_id, peer, region, row.seq, row.kind, dict(row.payload), 0,
                          row.trace_context)
        with telemetry.span(f"xr {row.kind}", parent=row.trace_context, attributes={
                "corridor.region": region, "corridor.xr.peer": peer,
                "corridor.xr.seq": row.seq}):
            try:
                await apply(conn, stored)
            except DBAPIError:
                raise  # the database's own trouble: the retry wrapper or a redelivery handles it
            except Exception as exc:
                raise ApplyFailed(region, peer, row.seq, exc) from exc
        applied_seq = row.seq
        done.append(row.seq)
    if done:
        await conn.execute(_applied_in, {"region": region, "peer": peer, "seqs": done})
        await conn.execute(_advance, {"region": region, "peer": peer, "seq": applied_seq})
    return len(done)


_failed = text("""
    UPDATE xr_inbox SET failures = failures + 1, last_error = :error
    WHERE region = :region AND peer = :peer AND seq = :seq AND applied_at IS NULL""")


async def record_failure(conn: AsyncConnection, envelope: Envelope, failed: ApplyFailed) -> None:
    """Keep the failing message in the inbox with its error (in a transaction of its own, after
    the receiving one rolled back), so the stuck stream shows where and why."""
    if envelope.seq == failed.seq:
        await conn.execute(_store_in, {
            "region": failed.region, "peer": failed.peer, "seq": envelope.seq,
            "id": envelope.id, "kind": envelope.kind, "payload": _json(envelope.payload),
            "trace": envelope.trace_context})
    await conn.execute(_failed, {"region": failed.region, "peer": failed.peer,
                                 "seq": failed.seq,
                                 "error": repr(failed.cause)[:error_length_max]})


_unpublished = text("""
    SELECT o.seq, o.id, o.kind, o.payload, o.trace_context, s.applied_seq AS ack
    FROM xr_outbox o
    JOIN xr_streams s ON s.region = o.region AND s.peer = o.peer
    WHERE o.region = :region AND o.peer = :peer
      AND (o.published_at IS NULL
           OR (o.seq > s.acked_seq
               AND o.published_at < now() - make_interval(secs => :resend_s)))
    ORDER BY o.seq LIMIT :n""")
_published = text("""
    UPDATE xr_outbox SET published_at = now(), publishes = publishes + 1
    WHERE region = :region AND peer = :peer AND seq = ANY(CAST(:seqs AS BIGINT[]))""")
_ack_sent = text("""
    UPDATE xr_streams SET ack_sent_seq = GREATEST(ack_sent_seq, :ack)
    WHERE region = :region AND peer = :peer""")
_ack_due = text("""
    SELECT applied_seq FROM xr_streams
    WHERE region = :region AND peer = :peer AND applied_seq > ack_sent_seq""")


async def to_publish(conn: AsyncConnection, region: str, peer: str,
                     resend_s: float = resend_after_s,
                     limit: int = publish_batch_max) -> list[Envelope]:
    """The stream's messages not yet published, and those published but still unacknowledged
    after ``resend_s``, in order."""
    rows = await conn.execute(_unpublished, {"region": region, "peer": peer,
                                             "resend_s": resend_s, "n": limit})
    return [Envelope(r.id, region, peer, r.seq, r.kind, dict(r.payload), int(r.ack),
                     r.trace_context) for r in rows]


async def ack_due(conn: AsyncConnection, region: str, peer: str) -> Envelope | None:
    """A bare acknowledgement to send, when the region applied messages it has not yet
    acknowledged to the peer."""
    applied = (await conn.execute(_ack_due, {"region": region, "peer": peer})).scalar()
    return None if applied is None else acknowledgement(region, peer, int(applied))


async def mark_published(conn: AsyncConnection, region: str, peer: str, seqs: list[int],
                         ack: int) -> None:
    """The messages are with the broker, and the peer has been told of ``ack``."""
    if seqs:
        await conn.execute(_published, {"region": region, "peer": peer, "seqs": seqs})
    await conn.execute(_ack_sent, {"region": region, "peer": peer, "ack": ack})


@dataclass(frozen=True, slots=True)
class Stream:
    region: str
    peer: str
    sent_seq: int
    acked_seq: int
    applied_seq: int
    waiting: int
    """Messages from the peer stored but not applied: early arrivals, or a stuck stream."""
    unpublished: int
    failing: int = 0
    """Messages from the peer whose effect failed and that wait to be applied."""
    unacked_s: float = 0.0
    """Seconds since the oldest message to the peer it has not acknowledged was written."""


_streams = text("""
    SELECT s.peer, s.sent_seq, s.acked_seq, s.applied_seq,
           (SELECT count(*) FROM xr_inbox i WHERE i.region = s.region AND i.peer = s.peer
              AND i.applied_at IS NULL) AS waiting,
           (SELECT count(*) FROM xr_inbox i WHERE i.region = s.region AND i.peer = s.peer
              AND i.applied_at IS NULL AND i.last_error IS NOT NULL) AS failing,
           (SELECT count(*) FROM xr_outbox o WHERE o.region = s.region AND o.peer = s.peer
              AND o.published_at IS NULL) AS unpublished,
           (SELECT extract(epoch FROM now() - min(o.created_at)) FROM xr_outbox o
              WHERE o.region = s.region AND o.peer = s.peer AND o.seq > s.acked_seq)
              AS unacked_s
    FROM xr_streams s WHERE s.region = :region ORDER BY s.peer""")


async def streams(conn: AsyncConnection, region: str) -> list[Stream]:
    """Where each of the region's streams stands, for operators and reconciliation."""
    return [Stream(region, r.peer, r.sent_seq, r.acked_seq, r.applied_seq, r.waiting,
                   r.unpublished, r.failing, float(r.unacked_s or 0.0))
            for r in await conn.execute(_streams, {"region": region})]
