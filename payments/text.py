"""Free text from partners (references, labels, keys): bounded and storable.

PostgreSQL cannot store NUL, and a lone surrogate is not UTF-8; control characters in a payment
reference only cause trouble downstream. All are refused with ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import unicodedata

from payments.errors import InvalidInput

_allowed_controls: frozenset[str] = frozenset()


def check_text(value: object, field: str, length_max: int, *, length_min: int = 0) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    if not length_min <= len(value) <= length_max:
        raise InvalidInput(f"{field} must be {length_min} to {length_max} characters", field)
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs" or (category == "Cc" and ch not in _allowed_controls):
            raise InvalidInput(f"{field} contains a control or invalid character "
                               f"(U+{ord(ch):04X})", field)
    return value
