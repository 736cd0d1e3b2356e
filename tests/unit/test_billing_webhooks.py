"""Webhook signatures, backoff and URL checks (pure; no Redis, no HTTP)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.webhook_delivery import backoff_s
from billing.webhook_signing import (
    SECRET_PREFIX,
    SignatureError,
    new_secret,
    sign,
    verify_signature,
)
from billing.webhooks import Delivery, validate_url

NOW = 1_714_564_800


def test_signature_is_stripes_scheme() -> None:
    secret, body = "whsec_test", b'{"id": "evt_1"}'
    header = sign(secret, body, NOW)
    expected = hmac.new(secret.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature(secret, header, body, now=NOW + 10) == NOW


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=2**40))
def test_sign_then_verify_round_trips(body: bytes, t: int) -> None:
    secret = new_secret()
    assert verify_signature(secret, sign(secret, body, t), body, now=t) == t


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: (h.replace(f"t={NOW}", f"t={NOW + 1}"), b), "does not match"),
        (lambda h, b: (h[:-1] + ("0" if h[-1] != "0" else "1"), b), "does not match"),
        (lambda h, b: (None, b), "no Webhook-Signature"),
        (lambda h, b: ("garbage", b), "malformed"),
        (lambda h, b: (f"t={NOW}", b), "at least one v1"),
        (lambda h, b: (h.replace(f"t={NOW}", "t=soon"), b), "malformed timestamp"),
    ],
)
def test_tampering_is_detected(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    secret, body = new_secret(), b'{"amount": "1.00"}'
    header, changed = mutate(sign(secret, body, NOW), body)
    with pytest.raises(SignatureError, match=message):
        verify_signature(secret, header, changed, now=NOW)


def test_wrong_secret_and_stale_timestamps_are_refused() -> None:
    body = b"{}"
    header = sign("whsec_a", body, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("whsec_b", header, body, now=NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature("whsec_a", header, body, tolerance=300, now=NOW + 301)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature("whsec_a", header, body, tolerance=300, now=NOW - 301)


def test_any_of_several_v1_signatures_may_match() -> None:
    body = b"{}"
    old = sign("whsec_old", body, NOW).split(",")[1]
    new = sign("whsec_new", body, NOW)
    assert verify_signature("whsec_old", f"{new},{old}", body, now=NOW) == NOW


def test_secrets_are_random_and_prefixed() -> None:
    a, b = new_secret(), new_secret()
    assert a != b
    assert a.startswith(SECRET_PREFIX)
    assert len(a) >= len(SECRET_PREFIX) + 40


@given(
    st.integers(min_value=1, max_value=60),
    st.floats(min_value=0.001, max_value=100),
    st.floats(min_value=0.001, max_value=10_000),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_grows_exponentially_within_the_cap(
    attempts: int, base: float, cap: float, r: float
) -> None:
    step = min(cap, base * 2.0 ** (attempts - 1))
    wait = backoff_s(attempts, base, cap, rand=lambda: r)
    assert step / 2 <= wait <= step
    assert wait <= cap


def test_backoff_doubles_and_jitters() -> None:
    assert [backoff_s(n, 1.0, 1000, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 4]
    assert backoff_s(3, 1.0, 1000, rand=lambda: 1.0) == 4.0
    assert backoff_s(30, 1.0, 60, rand=lambda: 0.0) == 30.0


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "example.com/hook", "http:///nohost", "https://" + "a" * 2100],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        validate_url(url)


def test_good_urls_pass_and_deliveries_round_trip() -> None:
    assert validate_url("https://hooks.example.com/codexec?x=1") == (
        "https://hooks.example.com/codexec?x=1"
    )
    d = Delivery("whd_1", "acme", "http://127.0.0.1:9/h", "budget.threshold", '{"a": 1}', 5, 2, "x")
    assert Delivery.from_json(d.to_json()) == d
