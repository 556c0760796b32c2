"""Prefixed, region-carrying identifiers and the time-ordered ULIDs inside them."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.errors import InvalidInput
from payments.ids import (
    ParsedId,
    id_length_max,
    kinds,
    new_id,
    new_ulid,
    parse_id,
    ulid_length,
)

crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ms_max = 2**48 - 1  # a ULID's timestamp is 48 bits
ms_st = st.integers(min_value=0, max_value=ms_max)
region_st = st.from_regex(r"[a-z][a-z0-9-]{1,30}", fullmatch=True)
good_ulid = "01JD3Q6W4N8YB5Z2K7T9R1M0XC"
good = f"acc_eu-central_{good_ulid}"


def ulid_ms(ulid: str) -> int:
    """The timestamp of a ULID: its first ten characters, Crockford base32."""
    value = 0
    for char in ulid[:10]:
        value = value * 32 + crockford.index(char)
    return value


def assert_invalid(text: object, kind: str = "acc", field: str = "accountId") -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_id(text, kind, field)
    assert raised.value.field == field
    assert raised.value.code == "VALIDATION_ERROR"


# new_id and parse_id agree.


@pytest.mark.parametrize("kind", sorted(kinds))
@pytest.mark.parametrize("region", ["eu-central", "us-east-1", "ap-southeast", "sa"])
def test_new_id_parses_back(kind: str, region: str) -> None:
    text = new_id(kind, region)
    parsed = parse_id(text, kind, "id")
    assert parsed.kind == kind
    assert parsed.region == region
    assert text == f"{kind}_{region}_{parsed.ulid}"
    assert len(parsed.ulid) == ulid_length
    assert set(parsed.ulid) <= set(crockford)
    assert len(text) <= id_length_max


@settings(max_examples=200)
@given(st.sampled_from(sorted(kinds)), region_st)
def test_new_id_parses_back_for_any_valid_region(kind: str, region: str) -> None:
    text = new_id(kind, region)
    assert len(text) <= id_length_max
    assert parse_id(text, kind, "id") == ParsedId(kind, region, text.rsplit("_", 1)[1])


def test_new_id_refuses_unknown_kind() -> None:
    with pytest.raises(AssertionError):
        new_id("usr", "eu-central")


def test_new_ids_are_distinct() -> None:
    made = {new_id("trf", "eu-central") for _ in range(1_000)}
    assert len(made) == 1_000


def test_parse_id_accepts_documented_example() -> None:
    assert parse_id(good, "acc", "accountId") == ParsedId("acc", "eu-central", good_ulid)


# ULIDs: shape and time order.


@given(ms_st)
def test_ulid_shape_and_timestamp(ms: int) -> None:
    ulid = new_ulid(now_ms=ms)
    assert len(ulid) == ulid_length
    assert set(ulid) <= set(crockford)
    assert ulid_ms(ulid) == ms


@pytest.mark.parametrize("ms", [0, 1, ms_max])
def test_ulid_timestamp_edges(ms: int) -> None:
    ulid = new_ulid(now_ms=ms)
    assert len(ulid) == ulid_length
    assert ulid_ms(ulid) == ms


def test_ulid_without_time_uses_the_clock() -> None:
    before_ms = int(time.time() * 1000)
    ulid = new_ulid()
    after_ms = int(time.time() * 1000)
    assert before_ms <= ulid_ms(ulid) <= after_ms


@settings(max_examples=300)
@given(ms_st, ms_st)
def test_ulids_sort_by_creation_time(a_ms: int, b_ms: int) -> None:
    a, b = new_ulid(now_ms=a_ms), new_ulid(now_ms=b_ms)
    if a_ms < b_ms:
        assert a < b
    elif a_ms > b_ms:
        assert a > b
    else:
        assert a[:10] == b[:10]


@given(st.lists(ms_st, min_size=2, max_size=50, unique=True))
def test_sorting_ulids_sorts_by_time(ms_values: list[int]) -> None:
    ulids = {new_ulid(now_ms=ms): ms for ms in ms_values}
    assert [ulids[u] for u in sorted(ulids)] == sorted(ms_values)


def test_consecutive_milliseconds_sort() -> None:
    start_ms = 1_733_000_000_000
    made = [new_ulid(now_ms=start_ms + i) for i in range(500)]
    assert made == sorted(made)


def test_ids_of_one_kind_and_region_sort_by_ulid_time() -> None:
    # Keyset pagination compares whole ids; with a shared prefix that is ULID order.
    early = f"trf_eu-central_{new_ulid(now_ms=1_000)}"
    late = f"trf_eu-central_{new_ulid(now_ms=1_001)}"
    assert early < late


# parse_id refuses everything else, naming the field.


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"trf_eu-central_{good_ulid}", "acc"),  # another known kind
        (f"xyz_eu-central_{good_ulid}", "acc"),  # an unknown kind
        (f"ACC_eu-central_{good_ulid}", "acc"),
        (good, "trf"),
    ],
)
def test_parse_id_rejects_wrong_kind(text: str, kind: str) -> None:
    assert_invalid(text, kind=kind, field="transferId")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "acc",
        "acc_",
        "acc_eu-central",
        "acc_eu-central_",
        f"acc_{good_ulid}",  # no region
        f"acc__{good_ulid}",
        f"_eu-central_{good_ulid}",  # no kind
        f"eu-central_{good_ulid}",
        good_ulid,  # bare ULID
        f"acc-eu-central-{good_ulid}",  # wrong separators
        f"acc_eu_central_{good_ulid}",
        f"acc_eu-central_{good_ulid}_x",
    ],
)
def test_parse_id_rejects_missing_parts(text: str) -> None:
    assert_invalid(text)


@pytest.mark.parametrize(
    "text",
    [
        f"acc_eu-central_{good_ulid.lower()}",  # lower-case ULID
        f"acc_eu-central_{good_ulid[:-1]}x",
        f"acc_eu-central_{good_ulid[:-1]}",  # 25 characters
        f"acc_eu-central_{good_ulid}0",  # 27 characters
        f"acc_EU-CENTRAL_{good_ulid}",  # upper-case region
        f"acc_1eu_{good_ulid}",  # region must start with a letter
        f"acc_e_{good_ulid}",  # region too short
        f"acc_{'e' * 32}_{good_ulid}",  # region too long
        f"acc_eu.central_{good_ulid}",
        f"acc_eü_{good_ulid}",
        f"acc_eu-central_{good_ulid[:-1]}\u0663",  # Arabic-Indic digit three
        f" {good}",
        f"{good} ",
        f"{good}\n",
        f"{good}\x00",
        "acc_" + "e" * 80 + "_" + good_ulid,  # too long
        good + "0" * (id_length_max - len(good) + 1),
        "a" * 10_000,
    ],
)
def test_parse_id_rejects_malformed(text: str) -> None:
    assert_invalid(text)


@pytest.mark.parametrize(
    "text",
    [
        f"{good}'; DROP TABLE accounts; --",
        f"acc_eu-central_{good_ulid[:20]}' OR '1'='1",
        "acc_eu' OR 1=1 --_" + good_ulid,
        f"acc_eu-central_{good_ulid}%",
        "' OR ''='",
        f"acc_eu-central_{good_ulid};SELECT",
        f"acc_eu-central/*_{good_ulid}",
    ],
)
def test_parse_id_rejects_injection_like_text(text: str) -> None:
    assert_invalid(text)


@pytest.mark.parametrize("value", [None, 42, b"acc_eu-central_01JD3Q6W4N8YB5Z2K7T9R1M0XC", [good]])
def test_parse_id_rejects_non_strings(value: object) -> None:
    assert_invalid(value)


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_parse_id_returns_exact_parts_or_rejects(text: str) -> None:
    try:
        parsed: ParsedId | InvalidInput = parse_id(text, "acc", "accountId")
    except InvalidInput as error:
        parsed = error
    if isinstance(parsed, InvalidInput):
        assert parsed.field == "accountId"
    else:
        assert f"{parsed.kind}_{parsed.region}_{parsed.ulid}" == text
        assert text.isascii()
        assert len(text) <= id_length_max


def test_parse_id_rejects_letters_outside_the_ulid_alphabet() -> None:
    from payments.errors import InvalidInput
    from payments.ids import parse_id

    for bad in ("U" * 26, "8" + "0" * 25, "I" * 26):
        with pytest.raises(InvalidInput):
            parse_id(f"acc_eu-central_{bad}", "acc", "f")


def test_new_ulid_refuses_times_beyond_48_bits() -> None:
    from payments.ids import new_ulid

    with pytest.raises(AssertionError):
        new_ulid(now_ms=2**48)
