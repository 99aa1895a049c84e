"""Every host's live state, behind both servers: who is online, what was applied, the caps.

The hub knows nothing of HTTP, SQLite or Home Assistant. Its owner (the runner's source, or
Home Assistant's entry) gives it the registered hosts (``set_hosts``), persists what it
reports in ``progress()``, and listens through ``subscribe`` (online, offline, batch). The
WebSocket endpoint drives it: ``authenticate`` → ``connect`` → ``apply``... → ``disconnect``.

Rules (issue 9):
- every host starts offline; a hello accepted makes it online; it goes offline only after
  ``grace`` seconds without a connection, so a quick reconnect does not flap;
- a second connection of a host replaces the first (closed with 4002); the old one's end
  is not the host's, because ``disconnect`` only counts for the host's current connection;
- a batch at or below the last applied seq of the same boot_id is acked, counted as a
  duplicate and not applied again; a jump in seq counts the missing batches as gaps;
- caps, each with counted overflow: hosts (from the store), samples per batch, series per
  host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ...agent.protocol import CLOSE_NOT_AUTHORISED, CLOSE_REPLACED, Ack, Batch, Hello, Welcome
from ...rejects import Rejects
from ...sample import SINK_PROMETHEUS, Sample
from .naming import HostNaming
from .store import HostRecord, Progress
from .tokens import FailureLimiter, check

_LOGGER = logging.getLogger(__name__)

DEFAULT_GRACE = 90.0
GOING_AWAY = 1001  # RFC 6455: the server is going down
# A batch collected this long before its connection began was buffered through an outage.
REPLAY_SLACK = 5.0


class Refused(Exception):
    """The connection must be closed with ``code``; ``reason`` is for the log only."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Connection(Protocol):
    """What the hub needs of a connection: a way to end it."""

    def close(self, code: int, reason: str) -> None:
        """Close soon (from inside the event loop, without waiting)."""


@dataclass(frozen=True, slots=True)
class HubLimits:
    grace: float = DEFAULT_GRACE
    max_hosts: int = 10_000
    max_samples_per_batch: int = 5_000
    max_series_per_host: int = 10_000


@dataclass(slots=True)
class HubStats:
    """Counters the runner exports; rejected messages by kind live in ``Hub.rejects``."""

    connections: int = 0
    auth_failures: int = 0  # unknown host, wrong token, revoked: one count
    missing_token: int = 0
    token_in_url: int = 0
    rate_limited: int = 0
    replaced: int = 0
    revoked: int = 0  # live connections cut because the host was removed or rotated
    hosts_over_cap: int = 0


@dataclass(slots=True, eq=False)
class HostState:
    """One registered host, as the hub sees it."""

    name: str
    token_hash: str
    boot_id: str = ""
    last_seq: int = 0
    last_seen: float | None = None  # unix seconds of the last accepted hello or batch
    agent_version: str = ""
    online: bool = False
    connection: Connection | None = None
    connected_at: float = 0.0
    batches_received: int = 0
    batches_replayed: int = 0
    batches_duplicate: int = 0
    seq_gaps: int = 0
    samples_dropped: int = 0
    series: set[tuple[object, ...]] = field(default_factory=set)
    naming: HostNaming = field(init=False)
    offline_timer: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.naming = HostNaming(self.name)


HostListener = Callable[[HostState], None]
BatchListener = Callable[[HostState, Batch], None]


class Hub:
    def __init__(
        self,
        emit: Callable[[Sample], None] | None = None,
        limits: HubLimits | None = None,
        reload_hosts: Callable[[], Mapping[str, HostRecord]] | None = None,
        rejects: Rejects | None = None,
        limiter: FailureLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._emit: Callable[[Sample], None] = emit or _drop
        self.rejects = rejects if rejects is not None else Rejects("agents")
        self.limiter = limiter if limiter is not None else FailureLimiter()
        self.limits = limits or HubLimits()
        self._reload_hosts = reload_hosts
        self._clock = clock
        self.hosts: dict[str, HostState] = {}
        self.stats = HubStats()
        self._dirty: set[str] = set()
        self._on_online: list[HostListener] = []
        self._on_offline: list[HostListener] = []
        self._on_batch: list[BatchListener] = []
        self._last_reload = 0.0
        self.closed = False  # stopping: nothing is applied or acked any more

    def set_emit(self, emit: Callable[[Sample], None]) -> None:
        """Where applied samples go (a hub may exist before its owner starts emitting)."""
        self._emit = emit

    # --- the registered hosts ------------------------------------------------------------

    def set_hosts(self, records: Mapping[str, HostRecord]) -> None:
        """The hosts now registered. A removed host is cut off and offline at once; a
        rotated one is cut off (its agent must come back with the new token)."""
        names = sorted(records)
        if len(names) > self.limits.max_hosts:
            self.stats.hosts_over_cap = len(names) - self.limits.max_hosts
            names = names[: self.limits.max_hosts]
        else:
            self.stats.hosts_over_cap = 0
        wanted = set(names)
        for name in [name for name in self.hosts if name not in wanted]:
            gone = self.hosts.pop(name)
            self._cut(gone, "host removed")
            self._dirty.discard(name)
            if gone.offline_timer is not None:
                gone.offline_timer.cancel()
            if gone.online:
                gone.online = False
                self._notify(self._on_offline, gone)
        for name in names:
            record = records[name]
            state = self.hosts.get(name)
            if state is None:
                self.hosts[name] = HostState(
                    name=name,
                    token_hash=record.token_hash,
                    boot_id=record.boot_id,
                    last_seq=record.last_seq,
                    last_seen=record.last_seen,
                    agent_version=record.agent_version,
                )
            elif state.token_hash != record.token_hash:
                state.token_hash = record.token_hash
                self._cut(state, "token rotated")
                self._disconnected(state)

    def _cut(self, state: HostState, why: str) -> None:
        if state.connection is not None:
            self.stats.revoked += 1
            _LOGGER.info("host %s: %s; closing its connection", state.name, why)
            state.connection.close(CLOSE_NOT_AUTHORISED, "not authorised")

    # --- listeners ------------------------------------------------------------------------

    def subscribe(
        self,
        on_online: HostListener | None = None,
        on_offline: HostListener | None = None,
        on_batch: BatchListener | None = None,
    ) -> Callable[[], None]:
        """Listen to hosts coming online, going offline, and batches applied; returns the
        function that stops listening. Listeners run in the event loop and must not block."""
        pairs: list[tuple[list[HostListener], HostListener]] = []
        if on_online is not None:
            pairs.append((self._on_online, on_online))
        if on_offline is not None:
            pairs.append((self._on_offline, on_offline))
        for listeners, listener in pairs:
            listeners.append(listener)
        if on_batch is not None:
            self._on_batch.append(on_batch)

        def unsubscribe() -> None:
            for listeners, listener in pairs:
                if listener in listeners:
                    listeners.remove(listener)
            if on_batch is not None and on_batch in self._on_batch:
                self._on_batch.remove(on_batch)

        return unsubscribe

    def _notify(self, listeners: list[HostListener], state: HostState) -> None:
        for listener in list(listeners):
            try:
                listener(state)
            except Exception:
                _LOGGER.exception("host listener failed")
        self._emit_status(state)

    # --- a connection's life --------------------------------------------------------------

    def authenticate(self, hello: Hello, token_hash: str) -> HostState:
        """The host ``hello`` names, if the token is its own; ``Refused`` (4001) otherwise,
        the same for an unknown host and a wrong token. A miss reads the hosts again first
        (at most once a second), so a host just added or rotated works at once."""
        if self.closed:
            raise Refused(GOING_AWAY, "server stopping")
        state = self.hosts.get(hello.host)
        if state is not None and check(token_hash, state.token_hash):
            return state
        now = time.monotonic()
        if self._reload_hosts is not None and now - self._last_reload >= 1.0:
            self._last_reload = now
            self.set_hosts(self._reload_hosts())
            state = self.hosts.get(hello.host)
            if state is not None and check(token_hash, state.token_hash):
                return state
        else:
            check(token_hash, None)  # the same work as a comparison that fails
        self.stats.auth_failures += 1
        raise Refused(CLOSE_NOT_AUTHORISED, f"host {hello.host!r}: unknown host or wrong token")

    def connect(self, state: HostState, connection: Connection, hello: Hello) -> Welcome:
        """Make ``connection`` the host's one connection; the welcome to send."""
        self.stats.connections += 1
        previous = state.connection
        if previous is not None and previous is not connection:
            self.stats.replaced += 1
            previous.close(CLOSE_REPLACED, "replaced by a newer connection")
        state.connection = connection
        if state.offline_timer is not None:
            state.offline_timer.cancel()
            state.offline_timer = None
        if hello.boot_id != state.boot_id:
            state.boot_id = hello.boot_id
            state.last_seq = 0
        now = self._clock()
        state.connected_at = now
        state.last_seen = now
        state.agent_version = hello.agent_version
        self._dirty.add(state.name)
        if not state.online:
            state.online = True
            _LOGGER.info("host %s online (agent %s)", state.name, hello.agent_version)
            self._notify(self._on_online, state)
        return Welcome(resume_from=state.last_seq)

    def apply(self, state: HostState, connection: Connection, batch: Batch) -> Ack | None:
        """Apply ``batch`` once; the ack to send, or None if the connection was replaced."""
        if state.connection is not connection or self.closed:
            return None
        now = self._clock()
        state.last_seen = now
        if batch.seq <= state.last_seq:
            state.batches_duplicate += 1
            return Ack(state.last_seq)
        if batch.seq > state.last_seq + 1:
            state.seq_gaps += batch.seq - state.last_seq - 1
        samples = batch.samples
        limit = self.limits.max_samples_per_batch
        if len(samples) > limit:
            state.samples_dropped += len(samples) - limit
            samples = samples[:limit]
        out: list[Sample] = []
        series = state.series
        max_series = self.limits.max_series_per_host
        naming = state.naming
        for sample in samples:
            if len(series) >= max_series:
                key = (sample.measurement, *sample.tags.items())
                if key not in series:
                    state.samples_dropped += 1
                    continue
            else:
                series.add((sample.measurement, *sample.tags.items()))
            naming.map(sample, out)
        emit = self._emit
        for sample in out:
            emit(sample)
        state.last_seq = batch.seq
        state.batches_received += 1
        if batch.time < state.connected_at - REPLAY_SLACK:
            state.batches_replayed += 1
        self._dirty.add(state.name)
        for listener in self._on_batch:
            try:
                listener(state, batch)
            except Exception:
                _LOGGER.exception("batch listener failed")
        return Ack(batch.seq)

    def disconnect(self, state: HostState, connection: Connection) -> None:
        """``connection`` ended; only the host's current connection starts the grace."""
        if state.connection is connection:
            self._disconnected(state)

    def _disconnected(self, state: HostState) -> None:
        state.connection = None
        if state.online and state.offline_timer is None:
            loop = asyncio.get_running_loop()
            state.offline_timer = loop.call_later(self.limits.grace, self._grace_over, state)

    def _grace_over(self, state: HostState) -> None:
        state.offline_timer = None
        if state.connection is None and state.online and self.hosts.get(state.name) is state:
            state.online = False
            _LOGGER.info("host %s offline", state.name)
            self._notify(self._on_offline, state)

    def close_all(self, code: int = 1001, reason: str = "server stopping") -> None:
        """Stop: close every connection; from now on nothing is applied (so what the owner
        saves next is final) and no hello is accepted."""
        self.closed = True
        for state in self.hosts.values():
            if state.offline_timer is not None:
                state.offline_timer.cancel()
                state.offline_timer = None
            if state.connection is not None:
                state.connection.close(code, reason)

    # --- what the owner persists and exports ----------------------------------------------

    def progress(self) -> list[Progress]:
        """What changed since the last call, for the store."""
        out = [
            Progress(s.name, s.boot_id, s.last_seq, s.last_seen or 0.0, s.agent_version)
            for name in self._dirty
            if (s := self.hosts.get(name)) is not None
        ]
        self._dirty.clear()
        return out

    def online_count(self) -> int:
        return sum(1 for state in self.hosts.values() if state.online)

    def status_samples(self) -> list[Sample]:
        """fleet_agent_* for every registered host (offline ones too: up is 0)."""
        return [self._status(state) for state in self.hosts.values()]

    def _emit_status(self, state: HostState) -> None:
        self._emit(self._status(state))

    def _status(self, state: HostState) -> Sample:
        fields: dict[str, float | int | bool | str] = {
            "up": 1 if state.online else 0,
            "batches_received": state.batches_received,
            "batches_replayed": state.batches_replayed,
            "batches_duplicate": state.batches_duplicate,
            "seq_gaps": state.seq_gaps,
            "samples_dropped": state.samples_dropped,
        }
        if state.last_seen is not None:
            fields["last_seen_timestamp_seconds"] = state.last_seen
        return Sample(
            "fleet_agent",
            {"host": state.name},
            fields,
            counters=_STATUS_COUNTERS,
            sink=SINK_PROMETHEUS,
        )


def _drop(sample: Sample) -> None:
    """No owner emits yet."""


_STATUS_COUNTERS = frozenset(
    {"batches_received", "batches_replayed", "batches_duplicate", "seq_gaps", "samples_dropped"}
)
