"""Relay-style connections: ``first`` (default 20, at most 100), opaque ``after`` cursors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from payments.errors import InvalidInput

_cursor_key = re.compile(r"[A-Za-z0-9_-]{1,80}")
first_default = 20
first_max = 100
cursor_length_max = 200

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


def check_first(first: int | None) -> int:
    if first is None:
        return first_default
    if not 1 <= first <= first_max:
        raise InvalidInput(f"first must be between 1 and {first_max}", "first")
    return first


def encode_cursor(kind: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(cursor: str | None, kind: str) -> str | None:
    if cursor is None:
        return None
    try:
        if len(cursor) > cursor_length_max:
            raise ValueError
        found, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("after is not a cursor from this list", "after") from None
    if found != kind or not _cursor_key.fullmatch(key):
        raise InvalidInput("after is not a cursor from this list", "after")
    return key


def connection(nodes: list[T], keys: list[str], kind: str, has_next: bool) -> Connection[T]:
    edges = [Edge(cursor=encode_cursor(kind, k), node=n) for n, k in zip(nodes, keys, strict=True)]
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


def page_args(first: int | None, after: str | None, kind: str) -> tuple[int, str | None]:
    """``first`` and the ``after`` key checked, or a BAD_USER_INPUT error naming the argument."""
    from schema.errors import bad_input

    try:
        return check_first(first), decode_cursor(after, kind)
    except InvalidInput as exc:
        raise bad_input(exc) from exc


R = TypeVar("R")


def rows_connection(rows: list[R], limit: int, kind: str, node: Callable[[R], T],
                    key: Callable[[R], str]) -> Connection[T]:
    """A connection from up to ``limit + 1`` rows (the extra one only says there is more)."""
    page = rows[:limit]
    return connection([node(r) for r in page], [key(r) for r in page], kind, len(rows) > limit)
