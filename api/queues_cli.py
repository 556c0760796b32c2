"""``corridor queues``: the workers' dead-letter queues (``workers/dead_letters.py``).

    corridor queues dead [--queue Q ...]
    corridor queues redrive --queue Q [--region R] [--actor A] [--limit N] [--dry-run]

Both print JSON. ``redrive`` exits 0 when it moved (or, with ``--dry-run``, would move)
anything, 1 when nothing matched.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

import pika.exceptions

from workers import dead_letters
from workers.xr_transport import safe_url

if TYPE_CHECKING:
    from api.settings import Settings


def add_parsers(sub: Any) -> None:
    q = sub.add_parser("queues", help="the workers' dead-letter queues").add_subparsers(
        dest="action", required=True)
    dead = q.add_parser("dead", help="what lies in the dead-letter queues, by actor and region")
    dead.add_argument("--queue", action="append", choices=dead_letters.known_queues,
                      default=[], help="a queue (repeat; default: every queue)")
    rd = q.add_parser("redrive", help="send dead-lettered messages back to their queue")
    rd.add_argument("--queue", required=True, choices=dead_letters.known_queues)
    rd.add_argument("--region", help="only messages for this region")
    rd.add_argument("--actor", help="only messages for this actor, e.g. handle_events")
    rd.add_argument("--limit", type=int, default=dead_letters.redrive_limit_default,
                    help=f"at most this many (default {dead_letters.redrive_limit_default}, "
                         f"at most {dead_letters.redrive_limit_max})")
    rd.add_argument("--dry-run", action="store_true", help="say what would move; move nothing")


def dispatch(args: argparse.Namespace) -> int:
    from api.settings import from_env

    settings = from_env()
    try:
        return _dispatch(args, settings)
    except (pika.exceptions.AMQPError, OSError) as exc:
        print(f"corridor: RabbitMQ at {safe_url(settings.amqp_url)}: {exc!r}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.amqp_url
    if args.action == "dead":
        print(json.dumps([dead_letters.survey(url, q)
                          for q in args.queue or dead_letters.known_queues], indent=2))
        return 0
    if args.region is not None and not settings.topology.has_region(args.region):
        print(f"corridor: unknown region {args.region!r}; the regions file has "
              f"{[r.code for r in settings.topology.regions]}", file=sys.stderr)
        return 2
    done = dead_letters.redrive(url, args.queue, region=args.region, actor=args.actor,
                                limit=args.limit, dry_run=args.dry_run)
    print(json.dumps(dataclasses.asdict(done), indent=2))
    return 0 if done.moved else 1
