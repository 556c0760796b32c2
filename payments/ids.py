"""Prefixed identifiers that carry their region, so any gateway can route by id alone.

Form: ``<kind>_<region>_<ulid>``, e.g. ``acc_eu-central_01JD3Q6W4N8YB5Z2K7T9R1M0XC``. The ULID
part sorts by creation time, which keyset pagination relies on.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from payments.errors import InvalidInput

_alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ulid_length = 26
id_length_max = 64
_shifts = tuple(range(5 * (ulid_length - 1), -1, -5))
kinds = frozenset({"ten", "key", "acc", "trf", "jnl", "evt", "aud", "fxq", "fxr", "vac", "dek",
                   "ben", "pay", "inc", "pbt", "whe", "whd", "pdc", "rvc", "pch"})
_pattern = re.compile(
    r"(?P<kind>[a-z]{3})_(?P<region>[a-z][a-z0-9-]{1,30})_(?P<ulid>[0-7][0-9A-HJKMNP-TV-Z]{25})")
ms_max = 2**48 - 1


@dataclass(frozen=True, slots=True)
class ParsedId:
    kind: str
    region: str
    ulid: str


def new_ulid(now_ms: int | None = None) -> str:
    """48 bits of milliseconds then 80 random bits, Crockford base32."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    assert 0 <= ms <= ms_max, ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join([_alphabet[(value >> shift) & 31] for shift in _shifts])


def new_id(kind: str, region: str) -> str:
    assert kind in kinds, kind
    return f"{kind}_{region}_{new_ulid()}"


def parse_id(text: object, kind: str, field: str) -> ParsedId:
    """Parse an id of the given kind, or ``InvalidInput`` naming the field."""
    if not isinstance(text, str) or len(text) > id_length_max:
        raise InvalidInput(f"{field} is not a valid {kind} id", field)
    match = _pattern.fullmatch(text)
    if match is None or match.group("kind") != kind:
        raise InvalidInput(f"{field} is not a valid {kind} id: {text[:id_length_max]!r}", field)
    return ParsedId(kind=kind, region=match.group("region"), ulid=match.group("ulid"))
