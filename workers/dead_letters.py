"""Dead-lettered messages: what lies in a queue's dead-letter queue, and sending it back.

A message whose actor failed every retry goes to ``<queue>.XQ`` (dramatiq keeps it there for
7 days). After the cause is fixed (a region's database back, a rail answering again), an
operator re-drives what should run again:

    corridor queues dead [--queue Q]                   what lies dead, by actor and region
    corridor queues redrive --queue Q [--region R] [--actor A] [--limit N] [--dry-run]

A re-driven message is published back on its queue with its retry count, its last traceback and
any delay cleared (so it gets its full retries again) and the same message id, with publisher
confirms; only then is it removed from the dead-letter queue. A crash between the two leaves it
in both, never in neither: it may run twice, which every actor tolerates (each one's effects
are idempotent: ``workers/actors.py``). Messages that do not match the filters, or past the
limit, stay where they were; so does anything that is not a dramatiq message.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from dramatiq import Message
from dramatiq.common import q_name, xq_name
from dramatiq.errors import DecodeError

from workers import queues

known_queues = queues.every
redrive_limit_default = 1_000
redrive_limit_max = 100_000
taken_max = 100_000
"""Messages looked at in one pass (each held unacknowledged until the pass ends)."""
cleared_options = ("retries", "traceback", "eta")
"""What dramatiq's retries and delays left on a message; cleared so it starts afresh."""
error_chars_max = 200
amqp_not_found = 404


class UnknownQueue(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    actor: str
    region: str | None
    """The region the message is for (every regional actor takes it first); None for the
    platform-wide ones (the FX refresh, reconciliation)."""
    retries: int
    enqueued_at_ms: int
    error: str
    """The last line of the last traceback."""


@dataclass(frozen=True, slots=True)
class Redriven:
    queue: str
    moved: list[DeadLetter]
    left: int
    """Messages still in the dead-letter queue afterwards (as counted when it began)."""
    dry_run: bool


def survey(url: str, queue: str) -> dict[str, Any]:
    """Counts of what lies dead in ``queue``, by actor and region, and the oldest and newest.
    Nothing is taken: every message goes back as it was."""
    with _taking(url, queue) as (_, waiting, taken):
        letters = [_letter(message) for _, message in taken if message is not None]
        by = Counter((letter.actor, letter.region or "-") for letter in letters)
        return {
            "queue": queue, "dead": waiting, "looked_at": len(taken),
            "undecodable": len(taken) - len(letters),
            "by_actor_and_region": [{"actor": a, "region": r, "count": n}
                                    for (a, r), n in sorted(by.items())],
            "oldest": dataclasses.asdict(min(letters, key=_age)) if letters else None,
            "newest": dataclasses.asdict(max(letters, key=_age)) if letters else None,
        }


def redrive(url: str, queue: str, *, region: str | None = None, actor: str | None = None,
            limit: int = redrive_limit_default, dry_run: bool = False) -> Redriven:
    """Moves up to ``limit`` dead messages of ``queue`` (of ``region`` and ``actor``, when
    given) back onto the queue, in the order they died; see the module docstring."""
    if not 1 <= limit <= redrive_limit_max:
        raise ValueError(f"limit must be 1 to {redrive_limit_max}")
    moved: list[DeadLetter] = []
    with _taking(url, queue) as (channel, waiting, taken):
        for tag, message in taken:
            if message is None or len(moved) >= limit:
                continue
            letter = _letter(message)
            if (region is not None and letter.region != region) or (
                    actor is not None and letter.actor != actor):
                continue
            if not dry_run:
                channel.basic_publish(
                    exchange="", routing_key=queue, body=_afresh(message).encode(),
                    properties=pika.BasicProperties(delivery_mode=2), mandatory=True)
                channel.basic_ack(tag)  # after the broker confirmed the publish
            moved.append(letter)
        left = waiting - (0 if dry_run else len(moved))
    return Redriven(queue, moved, left, dry_run)


def _age(letter: DeadLetter) -> int:
    return letter.enqueued_at_ms


def _afresh(message: Message[Any]) -> Message[Any]:
    return dataclasses.replace(
        message, queue_name=q_name(message.queue_name),
        options={k: v for k, v in message.options.items() if k not in cleared_options})


def _decoded(body: bytes) -> Message[Any] | None:
    try:
        return Message.decode(body)
    except DecodeError:
        return None


def _letter(message: Message[Any]) -> DeadLetter:
    first = message.args[0] if message.args else None
    trace = str(message.options.get("traceback") or "").strip().splitlines()
    return DeadLetter(message_id=message.message_id, actor=message.actor_name,
                      region=first if isinstance(first, str) else None,
                      retries=int(message.options.get("retries", 0)),
                      enqueued_at_ms=int(message.message_timestamp),
                      error=(trace[-1] if trace else "")[:error_chars_max])


Taken = list[tuple[int, Message[Any] | None]]
"""Delivery tags, with the message (None: not a dramatiq message, left where it is)."""


@contextmanager
def _taking(url: str, queue: str) -> Iterator[tuple[Any, int, Taken]]:
    """The channel, how many messages ``queue``'s dead-letter queue held on entry, and those
    messages (up to ``taken_max``), taken without acknowledging: whatever is not acked by the
    end goes back when the connection closes."""
    if queue not in known_queues:
        raise UnknownQueue(f"unknown queue {queue!r}; the workers' queues are "
                           f"{list(known_queues)}")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            waiting = channel.queue_declare(xq_name(queue), passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != amqp_not_found:
                raise
            yield connection.channel(), 0, []  # no worker declared it yet: nothing lies dead
            return
        taken: Taken = []
        for _ in range(min(waiting, taken_max)):
            method, _, body = channel.basic_get(xq_name(queue), auto_ack=False)
            if method is None:
                break
            taken.append((method.delivery_tag, _decoded(body)))
        yield channel, waiting, taken
    finally:
        if connection.is_open:
            connection.close()
