"""The hub on its own: online/offline with a clock moved by hand, replacement, duplicates,
gaps, caps, and acks that wait until the owner made a batch durable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample as PromSample

from custom_components.fleet_metrics.core.agent.protocol import (
    CLOSE_NOT_AUTHORISED,
    CLOSE_REPLACED,
    Ack,
    Batch,
    Hello,
    decode,
    encode,
)
from custom_components.fleet_metrics.core.exporters.line_protocol import LineEncoder
from custom_components.fleet_metrics.core.exporters.prometheus import format_value
from custom_components.fleet_metrics.core.sample import SINK_LINE_PROTOCOL, Sample
from custom_components.fleet_metrics.core.sources.agents.exposition import (
    HostsExposition,
    Reading,
    _value,
)
from custom_components.fleet_metrics.core.sources.agents.hub import (
    HostState,
    Hub,
    HubLimits,
    Refused,
)
from custom_components.fleet_metrics.core.sources.agents.store import HostRecord
from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token


class Timers:
    """``call_later`` on a clock that moves only when the test says so."""

    @dataclass
    class Handle:
        when: float
        callback: Callable[[HostState], None]
        state: HostState
        cancelled: bool = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[Timers.Handle] = []

    def __call__(
        self, delay: float, callback: Callable[[HostState], None], state: HostState, /
    ) -> Timers.Handle:
        handle = Timers.Handle(self.now + delay, callback, state)
        self.pending.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [h for h in self.pending if h.when <= self.now and not h.cancelled]
        self.pending = [h for h in self.pending if h.when > self.now and not h.cancelled]
        for handle in sorted(due, key=lambda h: h.when):
            handle.callback(handle.state)


@dataclass(eq=False)
class Conn:
    closed: list[tuple[int, str]] = field(default_factory=list)
    acks: list[int] = field(default_factory=list)

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def send_ack(self, ack: Ack) -> None:
        self.acks.append(ack.seq)


TOKENS = {"alpha": "fma_alpha", "beta": "fma_beta"}


def records(names: list[str] | None = None, last_seq: int = 0) -> dict[str, HostRecord]:
    return {
        name: HostRecord(name, hash_token(f"fma_{name}"), 0.0, boot_id="boot", last_seq=last_seq)
        for name in (names or list(TOKENS))
    }


@dataclass
class Rig:
    hub: Hub
    timers: Timers
    emitted: list[Sample]
    events: list[tuple[str, str]]


def rig(grace: float = 90.0, deferred: bool = False, **limits: int) -> Rig:
    timers = Timers()
    emitted: list[Sample] = []
    events: list[tuple[str, str]] = []
    hub = Hub(
        emitted.append,
        HubLimits(grace=grace, **limits),
        deferred_acks=deferred,
        call_later=timers,
    )
    hub.subscribe(
        on_online=lambda s: events.append(("online", s.name)),
        on_offline=lambda s: events.append(("offline", s.name)),
    )
    hub.set_hosts(records())
    return Rig(hub, timers, emitted, events)


def hello(host: str = "alpha", boot: str = "boot") -> Hello:
    return Hello(host, "1.0", boot, ())


def join(r: Rig, host: str = "alpha", boot: str = "boot") -> tuple[HostState, Conn]:
    state = r.hub.authenticate(hello(host, boot), hash_token(f"fma_{host}"))
    conn = Conn()
    r.hub.connect(state, conn, hello(host, boot))
    return state, conn


def batch(seq: int, samples: int = 1, when: float | None = None) -> Batch:
    return Batch(
        seq,
        time.time() if when is None else when,
        tuple(Sample("load", {"n": str(i)}, {"load1": float(seq)}, 1) for i in range(samples)),
    )


def data(emitted: list[Sample]) -> list[Sample]:
    """What the hub emitted: line protocol only (``/metrics`` maps its readings)."""
    assert all(s.sink == SINK_LINE_PROTOCOL for s in emitted)
    return emitted


def scraped(r: Rig, name: str, ttl: float = 300.0, now: float | None = None) -> list[PromSample]:
    clock = time.time if now is None else (lambda: now)
    text = HostsExposition(r.hub, ttl=ttl, clock=clock).render()
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def up(r: Rig) -> dict[str, float]:
    return {s.labels["host"]: s.value for s in scraped(r, "fleet_agent_up")}


def test_every_host_starts_offline() -> None:
    r = rig()
    assert [s.online for s in r.hub.hosts.values()] == [False, False]
    assert r.hub.online_count() == 0
    assert up(r) == {"alpha": 0.0, "beta": 0.0}


def test_offline_only_after_the_grace_period() -> None:
    r = rig(grace=90.0)
    state, conn = join(r)
    assert r.events == [("online", "alpha")]
    r.hub.disconnect(state, conn)
    r.timers.advance(89.9)
    assert state.online and r.events == [("online", "alpha")]
    r.timers.advance(0.2)
    assert not state.online
    assert r.events == [("online", "alpha"), ("offline", "alpha")]
    assert up(r)["alpha"] == 0.0


def test_a_quick_reconnect_does_not_flap() -> None:
    r = rig(grace=90.0)
    state, conn = join(r)
    r.hub.disconnect(state, conn)
    r.timers.advance(30)
    join(r)
    r.timers.advance(1000)
    assert state.online
    assert r.events == [("online", "alpha")]


def test_a_second_connection_replaces_the_first_and_the_old_end_is_not_the_hosts() -> None:
    r = rig(grace=10.0)
    state, old = join(r)
    _, new = join(r)
    assert old.closed == [(CLOSE_REPLACED, "replaced by a newer connection")]
    assert r.hub.stats.replaced == 1
    assert r.hub.apply(state, old, batch(1)) is None  # the old one applies nothing
    assert not r.hub.is_current(state, old) and r.hub.is_current(state, new)
    r.hub.disconnect(state, old)  # the seed's race: the old one closes after the new hello
    r.timers.advance(100)
    assert state.online and r.events == [("online", "alpha")]
    assert r.hub.apply(state, new, batch(1)) == Ack(1)


def test_unknown_host_wrong_token_and_removed_host_are_refused_alike() -> None:
    r = rig()
    refusals = []
    for name, token in (("nobody", "fma_nobody"), ("alpha", "fma_beta")):
        with pytest.raises(Refused) as err:
            r.hub.authenticate(hello(name), hash_token(token))
        refusals.append((err.value.code, str(err.value).split(":")[-1]))
    r.hub.set_hosts(records(["beta"]))
    with pytest.raises(Refused) as err:
        r.hub.authenticate(hello("alpha"), hash_token("fma_alpha"))
    refusals.append((err.value.code, str(err.value).split(":")[-1]))
    assert len(set(refusals)) == 1 and refusals[0][0] == CLOSE_NOT_AUTHORISED
    assert r.hub.stats.auth_failures == 3


def test_a_removed_host_is_cut_and_offline_at_once() -> None:
    r = rig()
    _, conn = join(r)
    r.hub.set_hosts(records(["beta"]))
    assert conn.closed == [(CLOSE_NOT_AUTHORISED, "not authorised")]
    assert r.events == [("online", "alpha"), ("offline", "alpha")]
    assert r.hub.stats.revoked == 1 and "alpha" not in r.hub.hosts


def test_a_rotated_token_cuts_the_connection_and_the_old_token_stops_working() -> None:
    r = rig(grace=5.0)
    state, conn = join(r)
    rotated = dict(records())
    rotated["alpha"] = HostRecord("alpha", hash_token("fma_new"), 0.0, boot_id="boot")
    r.hub.set_hosts(rotated)
    assert conn.closed and r.hub.stats.revoked == 1
    with pytest.raises(Refused):
        r.hub.authenticate(hello(), hash_token("fma_alpha"))
    assert r.hub.authenticate(hello(), hash_token("fma_new")) is state
    r.timers.advance(6)
    assert not state.online  # no new connection within the grace


def test_duplicates_are_acked_and_not_applied_again() -> None:
    r = rig()
    state, conn = join(r)
    assert [r.hub.apply(state, conn, batch(seq)) for seq in (1, 2, 3)] == [Ack(1), Ack(2), Ack(3)]
    applied = len(data(r.emitted))
    assert r.hub.apply(state, conn, batch(2)) == Ack(3)
    assert r.hub.apply(state, conn, batch(3)) == Ack(3)
    assert len(data(r.emitted)) == applied
    assert (state.batches_received, state.batches_duplicate, state.seq_gaps) == (3, 2, 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 60), max_size=60))
def test_gaps_count_exactly_the_batches_never_received(seqs: list[int]) -> None:
    r = rig()
    state, conn = join(r)
    for seq in seqs:
        r.hub.apply(state, conn, batch(seq))
    applied = []
    top = 0
    for seq in seqs:
        if seq > top:
            applied.append(seq)
            top = seq
    assert state.batches_received == len(applied)
    assert state.batches_duplicate == len(seqs) - len(applied)
    assert state.seq_gaps == top - len(applied)
    assert [s.fields["load1"] for s in data(r.emitted)] == [float(seq) for seq in applied]


def test_a_new_boot_starts_again_from_one_and_resumes_a_known_boot() -> None:
    r = rig()
    r.hub.set_hosts({})
    r.hub.set_hosts(records(last_seq=41))
    state = r.hub.hosts["alpha"]
    conn = Conn()
    assert r.hub.connect(state, conn, hello(boot="boot")).resume_from == 41
    assert r.hub.apply(state, conn, batch(42)) == Ack(42)
    assert r.hub.connect(state, Conn(), hello(boot="other")).resume_from == 0
    assert state.last_seq == 0


def test_replayed_batches_are_those_collected_before_the_connection() -> None:
    r = rig()
    state, conn = join(r)
    r.hub.apply(state, conn, batch(1, when=time.time() - 600))
    r.hub.apply(state, conn, batch(2))
    assert (state.batches_received, state.batches_replayed) == (2, 1)


def test_the_host_cap_is_counted() -> None:
    r = rig(max_hosts=2)
    r.hub.set_hosts(records(["a", "b", "c", "d"]))
    assert sorted(r.hub.hosts) == ["a", "b"]
    assert r.hub.stats.hosts_over_cap == 2
    with pytest.raises(Refused):
        r.hub.authenticate(hello("d"), hash_token("fma_d"))
    r.hub.set_hosts(records(["a"]))
    assert r.hub.stats.hosts_over_cap == 0


def test_samples_per_batch_and_series_per_host_caps_are_counted() -> None:
    r = rig(max_samples_per_batch=5, max_series_per_host=8)
    state, conn = join(r)
    r.hub.apply(state, conn, batch(1, samples=7))  # 2 over the batch cap
    r.hub.apply(state, conn, batch(2, samples=5))  # the same 5 series again: all kept
    assert state.samples_dropped == 2 and state.series_count == 5
    big = Batch(3, time.time(), tuple(Sample("load", {"n": f"x{i}"}, {"load1": 1.0}, 1)
                                      for i in range(5)))  # fmt: skip
    r.hub.apply(state, conn, big)
    assert state.series_count == 8 and state.samples_dropped == 4


def test_deferred_acks_wait_for_the_commit() -> None:
    r = rig(deferred=True)
    state, conn = join(r)
    assert [r.hub.apply(state, conn, batch(seq)) for seq in (1, 2, 3)] == [None, None, None]
    assert r.hub.is_current(state, conn)
    assert conn.acks == [] and r.hub.unacked() == 3
    checkpoint = r.hub.checkpoint()
    assert [(p.name, p.last_seq) for p in checkpoint.progress] == [("alpha", 3)]
    r.hub.apply(state, conn, batch(4))  # after the snapshot: not in this commit
    # A reconnect before the commit resumes from what is durable, not from what is applied.
    _, again = join(r)
    assert r.hub.connect(state, again, hello()).resume_from == 0
    r.hub.committed(checkpoint)
    assert again.acks == [3] and state.acked_seq == 3
    # The duplicate of 4 is acked by the next commit, once 4 is durable.
    assert r.hub.apply(state, again, batch(4)) is None
    r.hub.committed(r.hub.checkpoint())
    assert again.acks == [3, 4] and r.hub.unacked() == 0


def test_an_abandoned_checkpoint_is_retried_and_a_stale_one_acks_nothing() -> None:
    r = rig(deferred=True)
    state, conn = join(r)
    r.hub.apply(state, conn, batch(1))
    first = r.hub.checkpoint()
    r.hub.abandoned(first)
    assert conn.acks == []
    second = r.hub.checkpoint()
    assert [p.last_seq for p in second.progress] == [1]
    r.hub.connect(state, conn, hello(boot="rebooted"))  # the agent restarted meanwhile
    r.hub.committed(second)
    assert conn.acks == [] and state.acked_seq == 0
    r.hub.set_hosts({})
    r.hub.committed(second)  # a removed host gets nothing either
    assert conn.acks == []


def test_close_all_stops_applying_and_reopen_starts_again() -> None:
    r = rig()
    state, conn = join(r)
    r.hub.close_all()
    assert conn.closed[-1][0] == 1001
    assert r.hub.apply(state, conn, batch(1)) is None
    with pytest.raises(Refused):
        r.hub.authenticate(hello(), hash_token("fma_alpha"))
    r.hub.reopen()
    assert r.hub.authenticate(hello(), hash_token("fma_alpha")) is state


def test_a_rewind_forgets_the_unacked_batches_and_has_them_sent_again() -> None:
    r = rig(deferred=True, grace=30.0)
    state, conn = join(r)
    r.hub.apply(state, conn, batch(1))
    r.hub.committed(r.hub.checkpoint())
    for seq in (2, 3, 4):
        r.hub.apply(state, conn, batch(seq))
    r.hub.rewind(r.hub.checkpoint())  # the output dropped lines of 2..4
    assert conn.closed == [(1013, "output overloaded; send again")]
    assert r.hub.stats.rewound == 3 and state.last_seq == 1 and state.acked_seq == 1
    assert r.hub.apply(state, conn, batch(5)) is None  # the old connection is detached
    assert state.seq_gaps == 0 and state.online  # within the grace: no flap
    _, again = join(r)
    assert r.hub.connect(state, again, hello()).resume_from == 1
    for seq in (2, 3, 4, 5):
        r.hub.apply(state, again, batch(seq))
    r.hub.committed(r.hub.checkpoint())
    assert again.acks == [5] and state.seq_gaps == 0 and state.batches_duplicate == 0
    loads = [s.fields["load1"] for s in data(r.emitted)]
    assert loads == [1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 4.0, 5.0]  # 2..4 applied again


def test_readings_are_scraped_until_their_ttl_and_a_removed_host_goes_at_once() -> None:
    r = rig()
    state, conn = join(r)
    r.hub.apply(state, conn, batch(1, samples=2))
    now = time.time()
    # Two readings whose tags node_load1 does not keep: one series.
    assert [s.value for s in scraped(r, "node_load1", ttl=60.0, now=now)] == [1.0]
    assert scraped(r, "node_load1", ttl=60.0, now=now + 61.0) == []  # expired: forgotten
    assert state.series_count == 0 and not state.readings
    r.hub.apply(state, conn, batch(2, samples=1))
    assert [(s.labels, s.value) for s in scraped(r, "node_load1")] == [({"host": "alpha"}, 2.0)]
    r.hub.set_hosts(records(["beta"]))
    assert scraped(r, "node_load1") == [] and set(up(r)) == {"beta"}


def test_lines_written_directly_are_those_the_emitted_samples_encode_to() -> None:
    readings = (
        Sample("cpu", {"cpu": "total"}, {"user": 1.5, "idle": 7.0}, 5, frozenset({"user"})),
        Sample("network", {"device": "eth0"}, {"receive_bytes": 10, "transmit_bytes": 3}, 5),
        Sample("memory", {}, {"total_bytes": 100, "available_bytes": 40}, 5),
        Sample("zfs_pool", {"pool": "rpool"}, {"size_bytes": 5, "health": "ONLINE"}, 5),
    )
    slow, fast = rig(), rig()
    written: list[str] = []
    fast.hub.set_emit(fast.emitted.append, written.extend)
    for r in (slow, fast):
        state, conn = join(r)
        for seq in (1, 2):  # the second reading has telegraf's CPU usage
            r.hub.apply(state, conn, Batch(seq, time.time(), readings))
    assert fast.emitted == []
    encoder = LineEncoder()
    assert written == [line for s in data(slow.emitted) if (line := encoder.encode(s))]
    assert len(written) == 8


@settings(max_examples=300, deadline=None)
@given(st.floats() | st.integers(-(2**70), 2**70).map(float) | st.sampled_from([1e6, 1234567.0]))
def test_values_are_written_as_prometheus_client_writes_them(value: float) -> None:
    assert _value(value) == format_value(value)  # prometheus_client.utils.floatToGoString


async def test_a_server_behind_its_outputs_stops_reading_until_the_next_checkpoint() -> None:
    """Backpressure: past ``max_pending_lines`` lines since the last checkpoint the hub is
    throttled and ``room`` waits; the checkpoint (the owner is about to write those lines)
    lets every waiter go, and so does stopping."""
    r = rig(deferred=True, max_pending_lines=10)
    written: list[str] = []
    r.hub.set_emit(r.emitted.append, written.extend)
    state, conn = join(r)
    seq = 0
    while not r.hub.throttled:
        seq += 1
        r.hub.apply(state, conn, batch(seq, samples=3))
    assert r.hub.pending_lines == len(written) >= 10 and r.hub.stats.throttled == 1
    waiters = [asyncio.create_task(r.hub.room()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    r.hub.committed(r.hub.checkpoint())
    await asyncio.wait_for(asyncio.gather(*waiters), 1.0)
    assert not r.hub.throttled and r.hub.pending_lines == 0 and conn.acks == [seq]
    # Throttled again, then stopping: the waiter returns and the endpoint sees the hub closed.
    while not r.hub.throttled:
        seq += 1
        r.hub.apply(state, conn, batch(seq, samples=3))
    waiter = asyncio.create_task(r.hub.room())
    await asyncio.sleep(0.01)
    r.hub.close_all()
    await asyncio.wait_for(waiter, 1.0)
    assert not r.hub.is_current(state, conn)


def test_a_decoded_batch_is_applied_as_the_batch_it_was_encoded_from() -> None:
    """The runner applies decoded batches (``WireSample`` tuples, no ``Sample``): the lines
    and the readings are the same as for the agent's own ``Sample`` objects."""
    readings = (
        Sample("cpu", {"cpu": "total"}, {"user": 1.5, "idle": 7.0}, 5, frozenset({"user"})),
        Sample(
            "network",
            {"device": "eth0"},
            {"receive_bytes": 10, "transmit_bytes": 3},
            5,
            frozenset({"receive_bytes", "transmit_bytes"}),
        ),
        Sample("disk", {"device": "sda"}, {"read_bytes": 7, "io_time_seconds": 1.25}, 5),
        Sample("memory", {}, {"total_bytes": 100, "available_bytes": 40}, 5),
        Sample("collector", {"collector": "cpu"}, {"success": 1, "duration_seconds": 0.1}, 5),
    )
    direct, decoded = rig(), rig()
    lines: dict[str, list[str]] = {"direct": [], "decoded": []}
    direct.hub.set_emit(direct.emitted.append, lines["direct"].extend)
    decoded.hub.set_emit(decoded.emitted.append, lines["decoded"].extend)
    joined = {id(r): join(r) for r in (direct, decoded)}
    for seq in (1, 2):  # the second batch has telegraf's CPU usage (from the previous one)
        original = Batch(seq, 1000.0 + seq, readings)
        wire = decode(encode(original))
        assert isinstance(wire, Batch) and wire == original
        for r, applied in ((direct, original), (decoded, wire)):
            r.hub.apply(*joined[id(r)], applied)
    assert lines["decoded"] == lines["direct"] and len(lines["direct"]) == 10
    assert up(decoded) == up(direct)
    assert scraped(decoded, "node_network_receive_bytes_total") == scraped(
        direct, "node_network_receive_bytes_total"
    )


_FIELD_VALUES = (
    st.integers(-(2**63), 2**64 - 1)  # what orjson decodes
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.text(max_size=5)
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _FIELD_VALUES, min_size=1),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.frozensets(st.sampled_from(["a", "b"])), min_size=4, max_size=4),
)
def test_a_stored_reading_gives_each_field_as_metrics_writes_it(
    batches: list[dict[str, int | float | bool | str]], counters: list[frozenset[str]]
) -> None:
    """A series' newest reading is kept as shared field names and compact values, not the
    decoded dict: each batch's fields come back as ``/metrics`` writes them (strings as
    they are, numbers as ``float``), whichever fields and counters the batch before had."""
    r = rig()
    state, conn = join(r)
    for seq, fields in enumerate(batches, 1):
        names = counters[seq - 1] & fields.keys()
        sample = Sample("thing", {"n": "1"}, fields, 5, frozenset(names))
        r.hub.apply(state, conn, Batch(seq, time.time(), (sample,)))
        reading = state.readings["thing"][(("n", "1"),)]
        assert isinstance(reading, Reading) and reading.shape.counters == names
        for key, value in fields.items():
            kept = reading.get(key)
            if isinstance(value, str):
                assert kept == value
            else:
                assert type(kept) is not str and float(kept) == float(value)  # type: ignore[arg-type]
        assert [key for key, _ in reading.items()] == list(fields)
        assert all(reading.get(key) is None for key in {"a", "b", "c", "d"} - fields.keys())
    assert state.series_count == 1


def test_readings_of_one_shape_share_it_and_a_new_field_set_is_exposed_as_sent() -> None:
    r = rig()
    state, conn = join(r)
    loads = tuple(Sample("load", {"n": str(i)}, {"load1": 1.0, "load5": 2.0}, 1) for i in (0, 1))
    r.hub.apply(state, conn, Batch(1, time.time(), loads))
    first, second = state.readings["load"].values()
    assert first.shape is second.shape
    swapped = Sample("load", {"n": "0"}, {"load15": 3.0, "load1": 4}, 1, frozenset({"load1"}))
    r.hub.apply(state, conn, Batch(2, time.time(), (swapped,)))
    assert first.shape is not second.shape and first.shape.names == ("load15", "load1")
    assert [s.value for s in scraped(r, "node_load15")] == [3.0]
    assert [s.value for s in scraped(r, "node_load5")] == [2.0]  # the other series' own
    # Two readings give one label set for node_load1: the first (n=0, now 4) wins.
    assert [s.value for s in scraped(r, "node_load1")] == [4.0]
