"""How error messages quote what a caller sent."""

from __future__ import annotations

import ast

from hypothesis import given
from hypothesis import strategies as st

from payments.errors import NotFound, shown, shown_chars_max


@given(st.text(max_size=shown_chars_max))
def test_short_values_are_quoted_whole_and_read_back(text: str) -> None:
    assert ast.literal_eval(shown(text)) == text
    assert shown(text).isprintable()


@given(st.text(min_size=shown_chars_max + 1, max_size=5_000))
def test_long_values_are_cut_and_say_how_long_they_were(text: str) -> None:
    quoted = shown(text)
    assert quoted.isprintable()
    assert quoted.startswith(repr(text[:shown_chars_max]))
    assert quoted.endswith(f"... ({len(text)} characters)")
    assert len(quoted) <= 10 * shown_chars_max + 40  # an escape is at most 10 (\U000xxxxx)


def test_not_found_names_the_id() -> None:
    assert NotFound("account", "acc_x").message == "account 'acc_x' was not found"
    assert "\n" not in NotFound("account", "a\nb").message
