"""Sealed fields open only with their key, unaltered, in the place they were sealed for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.crypto import (
    Undecryptable,
    blob_key_version,
    data_key_bytes,
    field_aad,
    format_version,
    new_data_key,
    nonce_bytes,
    open_sealed,
    seal,
)

key = bytes(range(data_key_bytes))
aad = field_aad("ten_eu-central_01JD3Q6W4N8YB5Z2K7T9R1M0XC", "beneficiaries", "name", "row-1")
place = ("ten_eu-central_01JD3Q6W4N8YB5Z2K7T9R1M0XC", "beneficiaries", "name", "row-1")
key_versions = st.integers(min_value=0, max_value=2**32 - 1)


@given(st.text(), key_versions)
def test_round_trip(plaintext: str, key_version: int) -> None:
    blob = seal(key, plaintext, aad, key_version=key_version)
    assert open_sealed(key, blob, aad) == plaintext
    assert blob_key_version(blob) == key_version
    assert blob[0] == format_version


@given(st.text(max_size=40), st.data())
def test_any_bit_flip_is_undecryptable(plaintext: str, data: st.DataObject) -> None:
    blob = bytearray(seal(key, plaintext, aad, key_version=7))
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(Undecryptable):
        open_sealed(key, bytes(blob), aad)


@given(st.integers(min_value=0, max_value=3), st.text(min_size=1, max_size=10))
def test_another_place_is_undecryptable(which: int, suffix: str) -> None:
    blob = seal(key, "Ada Lovelace", aad, key_version=1)
    moved = list(place)
    moved[which] += suffix
    with pytest.raises(Undecryptable):
        open_sealed(key, blob, field_aad(*moved))


def test_wrong_key_is_undecryptable() -> None:
    blob = seal(key, "GB33BUKB20201555555555", aad, key_version=1)
    with pytest.raises(Undecryptable):
        open_sealed(new_data_key(), blob, aad)


@given(st.text(max_size=20), st.data())
def test_truncated_blob_is_undecryptable(plaintext: str, data: st.DataObject) -> None:
    blob = seal(key, plaintext, aad, key_version=1)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(Undecryptable):
        open_sealed(key, blob[:cut], aad)


def test_unknown_format_version_is_undecryptable() -> None:
    blob = seal(key, "x", aad, key_version=1)
    changed = bytes([format_version + 1]) + blob[1:]
    with pytest.raises(Undecryptable):
        blob_key_version(changed)
    with pytest.raises(Undecryptable):
        open_sealed(key, changed, aad)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a|b", "c", "d", "e"), ("a", "b|c", "d", "e")),
        (("ab", "", "d", "e"), ("a", "b", "d", "e")),
        (("a", "b", "c", "\x00"), ("a", "b", "c\x00", "")),
        (("a", "b", "c", "d\x00\x00\x00\x01e"), ("a", "b", "c", "d")),
    ],
)
def test_field_aad_separates_tricky_parts(
    first: tuple[str, str, str, str], second: tuple[str, str, str, str]
) -> None:
    assert field_aad(*first) != field_aad(*second)


@given(
    st.tuples(st.text(), st.text(), st.text(), st.text()),
    st.tuples(st.text(), st.text(), st.text(), st.text()),
)
def test_field_aad_is_injective(
    first: tuple[str, str, str, str], second: tuple[str, str, str, str]
) -> None:
    assert (field_aad(*first) == field_aad(*second)) == (first == second)


def test_nonces_differ_across_seals() -> None:
    blobs = [seal(key, "same", aad, key_version=1) for _ in range(1_000)]
    nonces = {b[5 : 5 + nonce_bytes] for b in blobs}
    assert len(nonces) == len(blobs)


def test_refuses_keys_that_are_not_256_bit() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(bytes(16), "x", aad, key_version=1)
