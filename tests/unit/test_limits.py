"""The token buckets behind the rate limits, on a clock the tests move by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.limits import Buckets, Limiter, Rate, address_of


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


def buckets(per_s: float = 2.0, burst: int = 5, entries_max: int = 100) -> tuple[Buckets, Clock]:
    clock = Clock()
    return Buckets(Rate(per_s, burst), entries_max=entries_max, clock=clock), clock


def test_a_new_caller_has_the_whole_burst() -> None:
    b, _ = buckets(burst=5)
    verdicts = [b.take("k") for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False]
    assert [v.remaining for v in verdicts] == [4, 3, 2, 1, 0, 0]
    assert all(v.limit == 5 for v in verdicts)


def test_refill_at_the_rate_up_to_the_burst() -> None:
    b, clock = buckets(per_s=2.0, burst=5)
    for _ in range(5):
        assert b.take("k").allowed
    clock.now_s += 1.0  # two tokens back
    assert [b.take("k").allowed for _ in range(3)] == [True, True, False]
    clock.now_s += 3600  # a long rest fills the bucket, no more
    assert b.peek("k").remaining == 5
    assert [b.take("k").allowed for _ in range(6)] == [True] * 5 + [False]


def test_retry_after_is_when_a_token_is_back_in_whole_seconds() -> None:
    b, clock = buckets(per_s=0.25, burst=1)  # one token every 4 s
    assert b.take("k").allowed
    refused = b.take("k")
    assert not refused.allowed
    assert refused.retry_after_s == 4
    assert refused.headers()["Retry-After"] == "4"
    clock.now_s += 2.5
    assert b.take("k").retry_after_s == 2  # 1.5 s left, rounded up
    clock.now_s += 1.5
    assert b.take("k").allowed


def test_retry_after_is_at_least_one_second() -> None:
    b, clock = buckets(per_s=1_000.0, burst=1)
    assert b.take("k").allowed
    refused = b.take("k")
    assert not refused.allowed
    assert refused.retry_after_s == 1
    clock.now_s += 0.001
    assert b.take("k").allowed


def test_reset_is_when_the_bucket_is_full_again() -> None:
    b, _ = buckets(per_s=2.0, burst=5)
    assert b.peek("k").reset_s == 0
    assert b.take("k").reset_s == 1  # 0.5 s, rounded up
    for _ in range(4):
        last = b.take("k")
    assert last.allowed
    assert last.remaining == 0
    assert last.reset_s == 3  # 5 tokens at 2 a second: 2.5 s
    assert last.retry_after_s == 0


def test_headers() -> None:
    b, _ = buckets(per_s=1.0, burst=2)
    assert b.take("k").headers() == {
        "RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "1"}
    b.take("k")
    assert b.take("k").headers() == {
        "RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "2",
        "Retry-After": "1"}


def test_a_refused_request_takes_nothing() -> None:
    b, clock = buckets(per_s=1.0, burst=1)
    assert b.take("k").allowed
    for _ in range(100):
        assert not b.take("k").allowed
    clock.now_s += 1.0
    assert b.take("k").allowed


def test_callers_have_their_own_buckets() -> None:
    b, _ = buckets(burst=2)
    assert [b.take("a").allowed for _ in range(3)] == [True, True, False]
    assert b.take("b").allowed


def test_peek_takes_nothing_and_remembers_no_one() -> None:
    b, _ = buckets(burst=1)
    for _ in range(3):
        assert b.peek("stranger").allowed
    assert len(b) == 0
    assert b.take("k").allowed
    assert not b.peek("k").allowed
    assert b.peek("k").retry_after_s >= 1


def test_a_clock_that_steps_back_refills_nothing() -> None:
    b, clock = buckets(per_s=1.0, burst=1)
    assert b.take("k").allowed
    clock.now_s -= 10
    assert not b.take("k").allowed


def test_buckets_are_bounded_and_the_least_recently_used_goes_first() -> None:
    b, _ = buckets(burst=1, entries_max=3)
    for who in ("a", "b", "c"):
        assert b.take(who).allowed
    assert not b.take("a").allowed  # "a" is now the most recently used
    assert b.take("d").allowed  # evicts "b"
    assert len(b) == 3
    assert not b.take("a").allowed  # still remembered
    assert b.take("b").allowed  # forgotten: a full bucket again (evicts "c")
    assert len(b) == 3


def test_eviction_bound_holds_under_many_callers() -> None:
    b, _ = buckets(entries_max=1_000)
    for i in range(10_000):
        b.take(f"caller-{i}")
    assert len(b) == 1_000


def test_keys_and_addresses_are_separate_tables() -> None:
    clock = Clock()
    limiter = Limiter.of(Rate(50.0, 100), Rate(1.0, 2), clock=clock)
    assert [limiter.addresses.take("203.0.113.9").allowed for _ in range(3)] == [
        True, True, False]
    assert limiter.keys.take("203.0.113.9").allowed  # same name, other table
    assert limiter.keys.take("key_eu-central_1").remaining == 99
    assert limiter.addresses.take("203.0.113.10").allowed


@pytest.mark.parametrize(("host", "bucket"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("testclient", "testclient"),
    ("not:an:address", "not:an:address"),
    (None, "unknown"),
    ("", "unknown"),
])
def test_address_buckets(host: str | None, bucket: str) -> None:
    assert address_of(host) == bucket


def test_one_ipv6_subscriber_shares_one_bucket() -> None:
    b, _ = buckets(burst=2)
    hosts = [f"2001:db8:5:6::{i:x}" for i in range(1, 4)]
    assert [b.take(address_of(h)).allowed for h in hosts] == [True, True, False]
    assert b.take(address_of("2001:db8:5:7::1")).allowed


@pytest.mark.parametrize(("per_s", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_rate_must_let_something_through(per_s: float, burst: int) -> None:
    with pytest.raises(AssertionError):
        Rate(per_s, burst)


# --- properties -------------------------------------------------------------------------------

steps = st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.sampled_from("ab")),
                 min_size=1, max_size=200)


@given(per_s=st.floats(0.01, 100), burst=st.integers(1, 50), steps=steps)
def test_never_more_than_the_burst_plus_the_refill(per_s: float, burst: int,
                                                   steps: list[tuple[float, str]]) -> None:
    b, clock = buckets(per_s=per_s, burst=burst)
    start_s = clock.now_s
    allowed: dict[str, int] = {"a": 0, "b": 0}
    for wait_s, who in steps:
        clock.now_s += wait_s
        verdict = b.take(who)
        allowed[who] += verdict.allowed
        assert 0 <= verdict.remaining <= verdict.limit == burst
        assert verdict.reset_s >= 0
        assert verdict.allowed == (verdict.retry_after_s == 0)
        assert verdict.allowed or verdict.retry_after_s >= 1
    ceiling = burst + (clock.now_s - start_s) * per_s + 1e-6
    assert all(n <= ceiling for n in allowed.values()), (allowed, ceiling)


@given(per_s=st.floats(0.001, 1_000), burst=st.integers(1, 50))
def test_retry_after_is_honest(per_s: float, burst: int) -> None:
    """Waiting Retry-After gets through; a second less does not (unless that is no wait)."""
    b, clock = buckets(per_s=per_s, burst=burst)
    for _ in range(burst):
        assert b.take("k").allowed
    refused = b.take("k")
    assert not refused.allowed
    assert 1 <= refused.retry_after_s <= max(1, math.ceil(1 / per_s))
    clock.now_s += refused.retry_after_s - 1
    assert not b.take("k").allowed
    clock.now_s += 1
    assert b.take("k").allowed


@given(entries_max=st.integers(1, 50), names=st.lists(st.integers(0, 200), max_size=500))
def test_the_table_never_outgrows_its_bound(entries_max: int, names: list[int]) -> None:
    b, _ = buckets(entries_max=entries_max)
    for n in names:
        b.take(str(n))
        assert len(b) <= entries_max
