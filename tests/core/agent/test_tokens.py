"""Host tokens: format, only the hash stored, constant-time compare, a bounded rate limiter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.sources.agents import tokens
from custom_components.fleet_metrics.core.sources.agents.store import HostStore
from custom_components.fleet_metrics.core.sources.agents.tokens import (
    FailureLimiter,
    bearer_token,
    check,
    hash_token,
    make_token,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_the_prefix_and_32_random_bytes_in_base64url() -> None:
    made = {make_token() for _ in range(200)}
    assert len(made) == 200
    for token in made:
        assert token.startswith("fma_")
        body = token.removeprefix("fma_")
        assert "=" not in body and "+" not in body and "/" not in body
        assert len(base64.urlsafe_b64decode(body + "=")) == 32


def test_the_hash_is_sha256_hex() -> None:
    token = make_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()


def test_check_accepts_only_the_matching_hash_and_never_a_missing_host() -> None:
    token = make_token()
    stored = hash_token(token)
    assert check(hash_token(token), stored)
    assert not check(hash_token(make_token()), stored)
    assert not check(hash_token(token), None)
    # A missing host is checked against the dummy hash: even its preimage gets nowhere.
    assert not check(hash_token("no such host"), None)


def test_check_compares_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    token = make_token()
    check(hash_token(token), hash_token(token))
    check(hash_token(token), None)  # an unknown host does the same work
    assert len(calls) == 2


def test_only_the_hash_reaches_the_database(tmp_path: Path) -> None:
    store = HostStore(tmp_path / "hosts.sqlite")
    token = store.add("pve1")
    rotated = store.rotate("pve1")
    store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    for secret in (token, rotated):
        assert secret.encode() not in raw
        assert secret.removeprefix("fma_").encode() not in raw
    with sqlite3.connect(tmp_path / "hosts.sqlite") as db:
        (stored,) = db.execute("SELECT token_hash FROM hosts").fetchone()
    assert stored == hash_token(rotated)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer fma_abc", "fma_abc"),
        ("bearer   fma_abc  ", "fma_abc"),
        ("Basic fma_abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        ("fma_abc", None),
    ],
)
def test_bearer_token(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_bearer_token_never_raises_and_never_returns_blank(header: str) -> None:
    token = bearer_token(header)
    assert token is None or (token.strip() == token and token)


def test_the_limiter_blocks_after_the_limit_until_the_window_ends() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60.0, clock=clock)
    for _ in range(3):
        assert not limiter.blocked("10.0.0.1")
        limiter.failure("10.0.0.1")
    assert limiter.blocked("10.0.0.1")
    assert limiter.blocked("10.0.0.1")
    assert not limiter.blocked("10.0.0.2")  # per address
    assert (limiter.failed, limiter.refused) == (3, 2)
    clock.now += 60.0
    assert not limiter.blocked("10.0.0.1")
    assert len(limiter) == 0


def test_a_success_clears_the_address() -> None:
    limiter = FailureLimiter(limit=2, clock=Clock())
    limiter.failure("a")
    limiter.success("a")
    limiter.failure("a")
    assert not limiter.blocked("a")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=2000), st.integers(1, 64))
def test_the_limiter_map_is_capped_and_evictions_are_counted(
    addresses: list[int], cap: int
) -> None:
    limiter = FailureLimiter(limit=5, max_addresses=cap, clock=Clock())
    for address in addresses:
        limiter.failure(str(address))
        assert len(limiter) <= cap
    distinct_tracked = len(limiter)
    assert limiter.failed == len(addresses)
    # Every address that ever failed is either tracked or was evicted (at least once).
    assert distinct_tracked + limiter.evicted >= len(set(addresses))
    assert distinct_tracked == min(cap, len(set(addresses))) or limiter.evicted > 0


def test_the_most_recent_failures_are_kept_when_the_map_is_full() -> None:
    limiter = FailureLimiter(limit=1, max_addresses=2, clock=Clock())
    for address in ("a", "b", "a", "c"):
        limiter.failure(address)
    assert limiter.evicted == 1
    assert limiter.blocked("a") and limiter.blocked("c")
    assert not limiter.blocked("b")
