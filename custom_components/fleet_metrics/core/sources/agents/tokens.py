"""Host tokens: made once, stored only as a SHA-256 hash, compared in constant time.

A token is ``fma_`` + URL-safe base64 of 32 random bytes: the prefix makes a leaked token
easy to recognise (secret scanners, logs), the 256 random bits make guessing pointless, so a
plain SHA-256 (no salt, no slow hash) is enough to make a stolen database useless.
``check`` answers the same for an unknown host and a wrong token, and takes the same path
for both (a digest compare against a dummy hash), so neither the answer nor its time tells
which hosts exist. ``FailureLimiter`` slows down whoever keeps trying.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "fma_"
TOKEN_BYTES = 32
_DUMMY_HASH = hashlib.sha256(b"no such host").hexdigest()


def make_token() -> str:
    """A new token; shown once to the user, never stored."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hash_token(token: str) -> str:
    """The hex SHA-256 of ``token``, which is all the store keeps."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check(token_hash: str, stored_hash: str | None) -> bool:
    """Whether a presented token (by its hash) matches a host's stored hash.

    ``stored_hash`` None (no such host, or revoked) compares against a dummy hash, so the
    work and the answer are those of a wrong token.
    """
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    matches = hmac.compare_digest(token_hash.encode("ascii"), expected.encode("ascii"))
    return matches and stored_hash is not None


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


@dataclass(slots=True)
class _Failures:
    count: int
    window_start: float


class FailureLimiter:
    """Failed attempts per client address: beyond ``limit`` within ``window`` seconds the
    address is refused until the window ends.

    Bounded: at most ``max_addresses`` addresses are tracked; past that the least recently
    failing one is forgotten and counted in ``evicted`` (an attacker with that many
    addresses gains at most a fresh allowance per address, never memory). ``refused``
    counts attempts turned away.
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self.failed = 0
        self.refused = 0
        self.evicted = 0

    def blocked(self, address: str) -> bool:
        """Whether ``address`` must be refused now (counted in ``refused``)."""
        entry = self._failures.get(address)
        if entry is None:
            return False
        if self._clock() - entry.window_start >= self.window:
            del self._failures[address]
            return False
        if entry.count >= self.limit:
            self.refused += 1
            return True
        return False

    def failure(self, address: str) -> None:
        self.failed += 1
        now = self._clock()
        entry = self._failures.get(address)
        if entry is None or now - entry.window_start >= self.window:
            entry = _Failures(0, now)
        entry.count += 1
        self._failures[address] = entry
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
            self.evicted += 1

    def success(self, address: str) -> None:
        self._failures.pop(address, None)

    def __len__(self) -> int:
        return len(self._failures)
