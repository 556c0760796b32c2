"""Webhook signatures, the retry schedule, and the endpoint checks.

The signature oracle is written here from API.md (HMAC-SHA256 over ``"<t>." + body``), not taken
from the module, so a change to the wire format fails these tests.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments import webhooks as wh
from payments.errors import InvalidInput

secret = b"whsec_test-secret"
old_secret = b"whsec_old-secret"
now = 1_760_000_000
bodies = st.binary(max_size=2048)
timestamps = st.integers(min_value=0, max_value=10**11)


def oracle(key: bytes, t: int, body: bytes) -> str:
    return hmac.new(key, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


# signatures

@given(body=bodies, t=timestamps)
def test_sign_then_verify_round_trips(body: bytes, t: int) -> None:
    header = wh.sign([secret], t, body)
    assert header == f"t={t},v1={oracle(secret, t, body)}"
    assert wh.verify(secret, header, body, now=t)


@given(body=bodies, extra=st.binary(min_size=1, max_size=16))
def test_a_tampered_body_fails(body: bytes, extra: bytes) -> None:
    header = wh.sign([secret], now, body)
    assert not wh.verify(secret, header, body + extra, now=now)
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert not wh.verify(secret, header, flipped, now=now)


def test_a_tampered_timestamp_fails() -> None:
    header = wh.sign([secret], now, b"{}")
    forged = header.replace(f"t={now}", f"t={now + 1}")
    assert not wh.verify(secret, forged, b"{}", now=now)


def test_the_wrong_secret_fails() -> None:
    assert not wh.verify(b"another", wh.sign([secret], now, b"{}"), b"{}", now=now)
    assert not wh.verify(b"", wh.sign([secret], now, b"{}"), b"{}", now=now)


def test_two_secrets_give_two_signatures_and_each_verifies() -> None:
    event = b'{"id":"evt_1"}'
    header = wh.sign([secret, old_secret], now, event)
    assert header.split(",") == [f"t={now}", f"v1={oracle(secret, now, event)}",
                                 f"v1={oracle(old_secret, now, event)}"]
    assert wh.verify(secret, header, event, now=now)
    assert wh.verify(old_secret, header, event, now=now)
    assert not wh.verify(b"neither", header, event, now=now)


@pytest.mark.parametrize("skew_s", [0, 1, 299, 300, -300])
def test_timestamps_within_tolerance_pass(skew_s: int) -> None:
    assert wh.verify(secret, wh.sign([secret], now, b"x"), b"x", now=now + skew_s)


@pytest.mark.parametrize("skew_s", [301, 3600, -301, -86_400])
def test_old_and_future_timestamps_are_refused(skew_s: int) -> None:
    assert not wh.verify(secret, wh.sign([secret], now, b"x"), b"x", now=now + skew_s)


def test_tolerance_is_a_parameter() -> None:
    header = wh.sign([secret], now, b"x")
    assert not wh.verify(secret, header, b"x", now=now + 10, tolerance_s=5)
    assert wh.verify(secret, header, b"x", now=now + 10, tolerance_s=10)


def test_unknown_schemes_are_skipped_and_spaces_tolerated() -> None:
    digest = oracle(secret, now, b"x")
    assert wh.verify(secret, f"t={now}, v0=abc, v1={digest}", b"x", now=now)
    assert wh.verify(secret, f"t={now},v1={digest.upper()}", b"x", now=now)


good_digest = oracle(secret, now, b"x")


@pytest.mark.parametrize("header", [
    "",
    ",",
    "garbage",
    f"v1={good_digest}",                            # no timestamp
    f"t={now}",                                     # no signature
    f"t={now},t={now},v1={good_digest}",            # two timestamps
    f"t=,v1={good_digest}",
    f"t=-{now},v1={good_digest}",
    f"t=+{now},v1={good_digest}",
    f"t={now}.5,v1={good_digest}",
    f"t=1_760_000_000,v1={good_digest}",
    f"t=\uff11\uff17\uff16,v1={good_digest}",     # fullwidth digits
    f"t={now},v1={good_digest[:-1]}",               # short digest
    f"t={now},v1={good_digest}0",                   # long digest
    f"t={now},v1={good_digest[:-1]}g",              # not hex
    f"t={now},v1",                                  # no value
    f"t={now};v1={good_digest}",                    # wrong separator
    f"t={now},v1={good_digest},x=" + "a" * wh.header_chars_max,  # too long
    f"t={now}," + ",".join([f"v1={good_digest}"] * (wh.signatures_per_header_max + 1)),
])
def test_malformed_headers_are_refused(header: str) -> None:
    assert not wh.verify(secret, header, b"x", now=now)


@given(header=st.text(max_size=200))
def test_arbitrary_headers_never_raise(header: str) -> None:
    assert wh.verify(secret, header, b"x", now=now) in (True, False)


def test_new_secrets_are_prefixed_random_and_url_safe() -> None:
    made = {wh.new_secret() for _ in range(50)}
    assert len(made) == 50
    for s in made:
        token = s.removeprefix("whsec_")
        assert s.startswith("whsec_")
        assert len(token) >= 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_header_name() -> None:
    assert wh.signature_header == "Corridor-Signature"


# retry schedule

def test_backoff_starts_at_ten_seconds_and_doubles() -> None:
    assert [wh.backoff_s(a) for a in range(1, 8)] == [10, 20, 40, 80, 160, 320, 640]


def test_backoff_is_monotone_and_capped() -> None:
    schedule = [wh.backoff_s(a) for a in range(1, 200)]
    assert schedule == sorted(schedule)
    assert max(schedule) == wh.backoff_s_max == 3600
    assert wh.backoff_s(10**9) == 3600


def test_backoff_refuses_attempt_zero() -> None:
    with pytest.raises(AssertionError):
        wh.backoff_s(0)


def test_the_attempts_cover_at_least_24_hours_and_stay_in_the_window() -> None:
    attempts = wh.attempts_for_window()
    starts_s = [sum(wh.backoff_s(a) for a in range(1, n)) for n in range(1, attempts + 2)]
    last_s, next_s = starts_s[attempts - 1], starts_s[attempts]
    assert last_s >= 86_400, "API.md promises retries for at least 24 hours"
    assert last_s <= wh.retry_window_s < next_s
    assert attempts == 33


# event types

def test_known_event_types_pass_in_canonical_order() -> None:
    assert wh.check_event_types(["payout.failed", "payout.created"]) == [
        "payout.created", "payout.failed"]
    assert wh.check_event_types(sorted(wh.event_types)) == sorted(wh.event_types)


def test_star_alone_means_all() -> None:
    assert wh.check_event_types(["*"]) == ["*"]
    assert all(wh.subscribes(["*"], t) for t in wh.event_types)
    assert wh.subscribes(["payout.created"], "payout.created")
    assert not wh.subscribes(["payout.created"], "payout.failed")


@pytest.mark.parametrize("types", [
    [],
    ["payout.exploded"],
    ["payout.created", "payout.created"],
    ["*", "payout.created"],
    ["*", "*"],
    ["Payout.Created"],
    ["payout.created"] + [f"x.{i}" for i in range(20)],
    "payout.created",
])
def test_bad_event_type_lists_are_refused(types: list[str]) -> None:
    with pytest.raises(InvalidInput) as err:
        wh.check_event_types(types)
    assert err.value.field == "events"


def test_at_most_twenty_event_types() -> None:
    with pytest.raises(InvalidInput, match="at most 20"):
        wh.check_event_types([f"payout.{i}" for i in range(21)])


# URLs

@pytest.mark.parametrize("url", [
    "https://example.com/hooks",
    "https://example.com:8443/hooks?tenant=1",
    "https://hooks.example.co.uk./corridor",
    "https://xn--bcher-kva.example/",
    "https://203.0.113.7/hooks",
    "https://[2001:db8::1]:443/hooks",
])
def test_good_live_urls_pass(url: str) -> None:
    assert wh.check_url(url, live=True) == url


def test_http_is_for_test_mode_only() -> None:
    assert wh.check_url("http://localhost:8080/hooks", live=False)
    with pytest.raises(InvalidInput, match="https"):
        wh.check_url("http://example.com/hooks", live=True)


@pytest.mark.parametrize("url", [
    "",
    "example.com/hooks",
    "/hooks",
    "//example.com/hooks",
    "ftp://example.com/hooks",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "https://",
    "https:///hooks",
    "https://user:pw@example.com/hooks",
    "https://user@example.com/hooks",
    "https://@example.com/hooks",
    "https://example.com/hooks#frag",
    "https://example.com/hooks#",
    "https://exa mple.com/hooks",
    "https://example.com/ho oks",
    "https://example.com/\thooks",
    "https://example.com/hooks\n",
    "https://bücher.example/",
    "https://example.com:0/",
    "https://example.com:65536/",
    "https://example.com:http/",
    "https://[::1/",
    "https://[not-ip]/",
    "https://exa_mple..com/",
    "https://-example.com/",
    "https://" + "a" * 64 + ".com/",
    "https://example.com/" + "a" * 2030,
])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        wh.check_url(url, live=False)
    assert err.value.field == "url"


def test_the_url_length_limit_is_inclusive() -> None:
    base = "https://example.com/"
    assert wh.check_url(base + "a" * (wh.url_chars_max - len(base)), live=True)
