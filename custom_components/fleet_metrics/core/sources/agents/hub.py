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
- with ``deferred_acks`` (the runner) a batch is acked only once it is durable: the owner
  takes a ``checkpoint()``, makes everything applied so far durable (writes the outputs,
  saves the progress) and then calls ``committed``, which acks every host up to its
  checkpointed seq. The welcome's ``resume_from`` is the durable seq, never more, so an
  agent never forgets a batch a crash of the server could still lose;
- caps, each with counted overflow: hosts (from the store), samples per batch, series per
  host;
- what a batch gives the outputs: its readings are kept, the newest per series, for
  ``/metrics`` (``HostsExposition`` maps them when scraped, with every host's status), and
  its telegraf-shaped line protocol samples go to ``emit`` as they arrive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ...agent.protocol import (
    CLOSE_NOT_AUTHORISED,
    CLOSE_REPLACED,
    SERIES,
    Ack,
    Batch,
    Hello,
    SampleData,
    Welcome,
)
from ...exporters.line_protocol import LineEncoder
from ...rejects import Rejects
from ...sample import Sample
from .exposition import Reading, TagKey, shape_of, values_of
from .naming import HostNaming
from .store import HostRecord, Progress
from .tokens import FailureLimiter, check

_LOGGER = logging.getLogger(__name__)

DEFAULT_GRACE = 90.0
GOING_AWAY = 1001  # RFC 6455: the server is going down
TRY_AGAIN_LATER = 1013  # RFC 6455 registry: overloaded; the agent reconnects with backoff
# A batch collected this long before its connection began was buffered through an outage.
REPLAY_SLACK = 5.0


class Refused(Exception):
    """The connection must be closed with ``code``; ``reason`` is for the log only."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Connection(Protocol):
    """What the hub needs of a connection: a way to end it and to ack later."""

    def close(self, code: int, reason: str) -> None:
        """Close soon (from inside the event loop, without waiting)."""

    def send_ack(self, ack: Ack) -> None:
        """Send ``ack`` soon (from inside the event loop, without waiting)."""


class Timer(Protocol):
    def cancel(self) -> None: ...


class CallLater(Protocol):
    """``loop.call_later``'s shape; tests pass a clock they move by hand."""

    def __call__(
        self, delay: float, callback: Callable[[HostState], None], state: HostState, /
    ) -> Timer: ...


@dataclass(frozen=True, slots=True)
class HubLimits:
    grace: float = DEFAULT_GRACE
    max_hosts: int = 10_000
    max_samples_per_batch: int = 5_000
    max_series_per_host: int = 10_000
    # Line protocol lines applied between two checkpoints before the endpoints stop reading
    # (backpressure): half the line protocol output's default buffer, so that a server
    # running behind pauses its agents (they keep their batches) instead of overflowing the
    # output, which would rewind and disconnect every host.
    max_pending_lines: int = 50_000


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
    rewound: int = 0  # batches applied, then lost by an output before they were durable
    throttled: int = 0  # times the endpoints stopped reading until the next checkpoint
    closed_by_code: dict[int, int] = field(default_factory=dict)  # protocol faults, by code

    def closed_with(self, code: int) -> None:
        """Bounded: the codes are the protocol's constants and aiohttp's few."""
        self.closed_by_code[code] = self.closed_by_code.get(code, 0) + 1


@dataclass(slots=True, eq=False)
class HostState:
    """One registered host, as the hub sees it."""

    name: str
    token_hash: str
    boot_id: str = ""
    last_seq: int = 0  # highest seq applied
    acked_seq: int = 0  # highest seq acked: durable (saved, and written by the outputs)
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
    # The newest reading of each series, for /metrics (see ``exposition``): measurement ->
    # tags -> reading (its values, not the decoded dict); ``series_count`` of them, within
    # the cap.
    readings: dict[str, dict[TagKey, Reading]] = field(default_factory=dict)
    series_count: int = 0
    naming: HostNaming = field(init=False)
    offline_timer: Timer | None = None

    def __post_init__(self) -> None:
        self.naming = HostNaming(self.name)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What was applied when the owner began making it durable (see ``Hub.checkpoint``)."""

    marks: tuple[tuple[HostState, str, int], ...]  # (host, boot_id, last applied seq)
    progress: tuple[Progress, ...]


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
        deferred_acks: bool = False,
        call_later: CallLater | None = None,
    ) -> None:
        self._emit: Callable[[Sample], None] = emit or _drop
        self._write_lines: Callable[[list[str]], None] | None = None
        self._encoder = LineEncoder()
        self.rejects = rejects if rejects is not None else Rejects("agents")
        self.limiter = limiter if limiter is not None else FailureLimiter()
        self.limits = limits or HubLimits()
        self._reload_hosts = reload_hosts
        self._clock = clock
        self.deferred_acks = deferred_acks
        self._call_later = call_later
        self.hosts: dict[str, HostState] = {}
        self.stats = HubStats()
        self._dirty: set[str] = set()
        self._on_online: list[HostListener] = []
        self._on_offline: list[HostListener] = []
        self._on_batch: list[BatchListener] = []
        self._last_reload = 0.0
        self.closed = False  # stopping: nothing is applied or acked any more
        self.pending_lines = 0  # lines written since the last checkpoint
        self.throttled = False  # pending_lines reached the cap: wait for ``room``
        self._room: asyncio.Event | None = None
        self._throttle_logged = 0.0
        # Called when the hub becomes throttled: the owner checkpoints at once rather than
        # at its next tick, so the agents wait only as long as the outputs' write takes.
        self.on_throttled: Callable[[], None] | None = None

    def set_emit(
        self,
        emit: Callable[[Sample], None],
        write_lines: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Where applied batches' line protocol goes (a hub may exist before its owner
        starts emitting): as samples to ``emit``, or, given ``write_lines``, as lines the hub
        encodes itself (no ``Sample`` per line: the runner's fast path)."""
        self._emit = emit
        self._write_lines = write_lines

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
                    acked_seq=record.last_seq,  # what was saved is durable
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
            state.acked_seq = 0
        now = self._clock()
        state.connected_at = now
        state.last_seen = now
        state.agent_version = hello.agent_version
        self._dirty.add(state.name)
        if not state.online:
            state.online = True
            _LOGGER.info("host %s online (agent %s)", state.name, hello.agent_version)
            self._notify(self._on_online, state)
        return Welcome(resume_from=state.acked_seq, capabilities=(SERIES,))

    def is_current(self, state: HostState, connection: Connection) -> bool:
        """Whether ``connection`` may still send batches (not replaced, server not stopping)."""
        return state.connection is connection and not self.closed

    def apply(self, state: HostState, connection: Connection, batch: Batch) -> Ack | None:
        """Apply ``batch`` once; the ack to send now, or None: deferred (see ``committed``),
        or the connection is no longer current (``is_current``)."""
        if state.connection is not connection or self.closed:
            return None
        now = self._clock()
        state.last_seen = now
        if batch.seq <= state.last_seq:
            state.batches_duplicate += 1
            self._dirty.add(state.name)  # the next commit acks it
            return None if self.deferred_acks else Ack(state.last_seq)
        if batch.seq > state.last_seq + 1:
            state.seq_gaps += batch.seq - state.last_seq - 1
        samples = batch.readings  # decoded tuples: no ``Sample`` is made on this path
        limit = self.limits.max_samples_per_batch
        if len(samples) > limit:
            state.samples_dropped += len(samples) - limit
            samples = samples[:limit]
        readings = state.readings
        room = self.limits.max_series_per_host - state.series_count
        dropped: list[SampleData] = []
        for sample in samples:
            measurement = sample.measurement
            by_tags = readings.get(measurement)
            if by_tags is None:
                by_tags = readings[measurement] = {}
            key = tuple(sample.tags.items())
            reading = by_tags.get(key)
            fields = sample.fields
            if reading is not None:
                shape = reading.shape
                if shape.names != tuple(fields) or shape.counters is not sample.counters:
                    reading.shape = shape_of(tuple(fields), sample.counters)
                values, kept = values_of(fields), reading.values
                if type(values) is array and type(kept) is array and len(kept) == len(values):
                    kept[:] = values  # in place: a new array per reading scattered the
                    # long-lived ones among each batch's garbage, and the heap could not shrink
                else:
                    reading.values = values
                reading.arrived = now
            elif room > 0:
                room -= 1
                shape = shape_of(tuple(fields), sample.counters)
                by_tags[key] = Reading(shape, values_of(fields), now)
            else:
                dropped.append(sample)
                if not by_tags:
                    del readings[measurement]
        state.series_count = self.limits.max_series_per_host - room
        if dropped:  # over the series cap (rare): only the kept samples become lines
            state.samples_dropped += len(dropped)
            gone = {id(sample) for sample in dropped}
            samples = tuple([sample for sample in samples if id(sample) not in gone])
        if self._write_lines is not None:
            lines: list[str] = []
            state.naming.lines(samples, self._encoder, lines)
            self._write_lines(lines)
            self.pending_lines += len(lines)
            if self.pending_lines >= self.limits.max_pending_lines and not self.throttled:
                self.throttled = True
                self.stats.throttled += 1
                if self.stats.throttled == 1 or time.monotonic() - self._throttle_logged > 60:
                    self._throttle_logged = time.monotonic()
                    _LOGGER.info(
                        "agents: %d lines since the last flush; pausing the agents until the"
                        " next one (%d times so far)",
                        self.pending_lines,
                        self.stats.throttled,
                    )
                if self.on_throttled is not None:
                    self.on_throttled()
        elif self._emit is not _drop:  # Home Assistant's hub has no line protocol output
            out: list[Sample] = []
            for sample in samples:
                state.naming.map(sample, out)
            emit = self._emit
            for line_sample in out:
                emit(line_sample)
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
        if self.deferred_acks:
            return None
        state.acked_seq = batch.seq
        return Ack(batch.seq)

    async def room(self) -> None:
        """Return once the next checkpoint has taken what is pending (see
        ``HubLimits.max_pending_lines``); the endpoint awaits this while ``throttled``, so
        the agents' frames wait in their sockets and in their own buffers."""
        while self.throttled and not self.closed:
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()

    def _make_room(self) -> None:
        self.pending_lines = 0
        self.throttled = False
        if self._room is not None:
            self._room.set()
            self._room = None

    def disconnect(self, state: HostState, connection: Connection) -> None:
        """``connection`` ended; only the host's current connection starts the grace."""
        if state.connection is connection:
            self._disconnected(state)

    def _disconnected(self, state: HostState) -> None:
        state.connection = None
        if state.online and state.offline_timer is None:
            call_later = self._call_later or asyncio.get_running_loop().call_later
            state.offline_timer = call_later(self.limits.grace, self._grace_over, state)

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
        self._make_room()  # throttled endpoints wake up and see the hub closed
        for state in self.hosts.values():
            if state.offline_timer is not None:
                state.offline_timer.cancel()
                state.offline_timer = None
            if state.connection is not None:
                state.connection.close(code, reason)

    # --- what the owner persists and exports ----------------------------------------------

    def reopen(self) -> None:
        """Accept hellos again after ``close_all`` (the owner restarts)."""
        self.closed = False

    def checkpoint(self) -> Checkpoint:
        """What changed since the last checkpoint. The owner makes it durable, then calls
        ``committed`` (acks go out) or, if it could not, ``abandoned`` (tried again next)."""
        marks: list[tuple[HostState, str, int]] = []
        progress: list[Progress] = []
        for name in self._dirty:
            state = self.hosts.get(name)
            if state is None:
                continue
            marks.append((state, state.boot_id, state.last_seq))
            progress.append(
                Progress(name, state.boot_id, state.last_seq, state.last_seen or 0.0,
                         state.agent_version)
            )  # fmt: skip
        self._dirty.clear()
        self._make_room()  # what was pending is the owner's to write now
        return Checkpoint(tuple(marks), tuple(progress))

    def committed(self, checkpoint: Checkpoint) -> None:
        """``checkpoint`` is durable: ack each host up to it on its current connection."""
        for state, boot_id, seq in checkpoint.marks:
            if self.hosts.get(state.name) is not state or state.boot_id != boot_id:
                continue  # removed, or its agent restarted meanwhile: nothing to ack
            if seq > state.acked_seq:
                state.acked_seq = seq
            connection = state.connection
            if connection is not None and state.acked_seq > 0 and not self.closed:
                connection.send_ack(Ack(state.acked_seq))

    def abandoned(self, checkpoint: Checkpoint) -> None:
        """``checkpoint`` could not be made durable: its hosts go into the next one."""
        for state, _, _ in checkpoint.marks:
            if self.hosts.get(state.name) is state:
                self._dirty.add(state.name)

    def rewind(self, checkpoint: Checkpoint) -> None:
        """The outputs lost part of ``checkpoint`` (a buffer overflowed): forget every host's
        unacked batches and close its connection (1013, try again later), so its agent
        reconnects, hears ``resume_from`` = the durable seq, and sends them again."""
        for state, boot_id, _ in checkpoint.marks:
            if self.hosts.get(state.name) is not state or state.boot_id != boot_id:
                continue
            if state.last_seq > state.acked_seq:
                self.stats.rewound += state.last_seq - state.acked_seq
                state.last_seq = state.acked_seq
            self._dirty.add(state.name)
            if state.connection is not None:
                # Detached at once: a batch already on its way must not be applied past
                # the rewound seq (it would count as a gap and arrive out of order).
                state.connection.close(TRY_AGAIN_LATER, "output overloaded; send again")
                self._disconnected(state)

    def unacked(self) -> int:
        """Batches applied and not yet acked, over all hosts."""
        return sum(state.last_seq - state.acked_seq for state in self.hosts.values())

    def progress(self) -> list[Progress]:
        """What changed since the last call, for the store (immediate acks only)."""
        out = [
            Progress(s.name, s.boot_id, s.last_seq, s.last_seen or 0.0, s.agent_version)
            for name in self._dirty
            if (s := self.hosts.get(name)) is not None
        ]
        self._dirty.clear()
        return out

    def online_count(self) -> int:
        return sum(1 for state in self.hosts.values() if state.online)


def _drop(sample: Sample) -> None:
    """No owner emits yet."""
