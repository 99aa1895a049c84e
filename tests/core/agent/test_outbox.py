"""Outbox: seqs, cumulative acks, the cap that drops the oldest, and splitting big batches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent.outbox import Outbox
from custom_components.fleet_metrics.core.agent.protocol import Batch, decode
from custom_components.fleet_metrics.core.sample import Sample

T = 1_700_000_000.0


def sample(index: int, width: int = 1) -> Sample:
    fields = {f"f{n}": float(index + n) for n in range(width)}
    return Sample("load", {"n": str(index)}, fields, 1_700_000_000_000_000_000 + index)


def batches(outbox: Outbox, after: int = 0) -> list[Batch]:
    out = []
    for frame in outbox.after(after):
        batch = decode(frame.text)
        assert isinstance(batch, Batch)
        assert batch.seq == frame.seq
        out.append(batch)
    return out


def test_seqs_start_at_one_and_acks_free_cumulatively() -> None:
    outbox = Outbox(100)
    assert [outbox.add(T + i, [sample(i)]) for i in range(5)] == [[1], [2], [3], [4], [5]]
    assert [b.seq for b in batches(outbox)] == [1, 2, 3, 4, 5]
    assert [b.seq for b in batches(outbox, after=3)] == [4, 5]
    assert outbox.ack(3) == 3
    assert outbox.acked == 3
    assert [b.seq for b in batches(outbox)] == [4, 5]
    assert outbox.ack(2) == 0  # an old ack frees nothing and does not go back
    assert outbox.acked == 3
    assert outbox.ack(5) == 2
    assert len(outbox) == 0
    assert outbox.add(T, [sample(9)]) == [6]
    assert batches(outbox)[0].samples == (sample(9),)


def test_resume_from_drops_what_the_server_has() -> None:
    outbox = Outbox(100)
    for i in range(10):
        outbox.add(T, [sample(i)])
    outbox.ack(7)  # welcome.resume_from
    assert [b.seq for b in batches(outbox, after=7)] == [8, 9, 10]
    assert [b.seq for b in batches(outbox, after=0)] == [8, 9, 10]


def test_the_cap_drops_the_oldest_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(4, name="ws://x/api/agent")
    for i in range(10):
        outbox.add(T, [sample(i)])
    assert len(outbox) == 4
    assert outbox.dropped == 6
    assert [b.seq for b in batches(outbox)] == [7, 8, 9, 10]
    assert [b.samples[0].tags["n"] for b in batches(outbox)] == ["6", "7", "8", "9"]
    assert len([r for r in caplog.records if "dropping the oldest" in r.getMessage()]) == 1
    outbox.ack(8)
    for i in range(4):
        outbox.add(T, [sample(i)])
    assert outbox.dropped == 8
    assert len([r for r in caplog.records if "dropping the oldest" in r.getMessage()]) == 2


def test_a_batch_over_the_cap_is_split_in_order_and_every_piece_fits() -> None:
    outbox = Outbox(100, max_bytes=4096)
    samples = [sample(i, width=8) for i in range(200)]
    seqs = outbox.add(T, samples)
    assert len(seqs) >= 4
    assert seqs == list(range(1, len(seqs) + 1))
    frames = list(outbox.after(0))
    assert all(len(frame.text.encode()) <= 4096 for frame in frames)
    rebuilt = [s for batch in batches(outbox) for s in batch.samples]
    assert rebuilt == samples
    assert all(batch.time == T for batch in batches(outbox))
    assert outbox.bad_samples == 0


def test_a_sample_no_message_can_carry_is_left_out_alone() -> None:
    outbox = Outbox(100, max_bytes=2048)
    huge = Sample("host", {"os": "x" * 5000}, {"cpus": 4}, 1)
    outbox.add(T, [sample(1), huge, sample(2)])
    assert outbox.bad_samples == 1
    assert [s for b in batches(outbox) for s in b.samples] == [sample(1), sample(2)]


def test_a_sample_the_server_would_refuse_never_enters_the_buffer() -> None:
    outbox = Outbox(100)
    bad = [
        Sample("load", {}, {}, 1),  # no field
        Sample("load", {}, {"a": 1}, 1, frozenset({"b"})),  # counter that is no field
        Sample("", {}, {"a": 1}, 1),  # no measurement
        Sample("load", {}, {"a": 1}, -5),  # negative time
    ]
    good = [sample(i) for i in range(6)]
    mixed = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3], good[4], good[5]]
    outbox.add(T, mixed)
    assert outbox.bad_samples == 4
    assert [s for b in batches(outbox) for s in b.samples] == good


def test_nothing_to_send_takes_no_seq() -> None:
    outbox = Outbox(10)
    assert outbox.add(T, []) == []
    assert outbox.next_seq == 1


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 3)),
        st.tuples(st.just("ack"), st.integers(0, 40)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops=operations, capacity=st.integers(1, 8))
def test_the_outbox_keeps_the_newest_unacked_seqs_in_order(
    ops: list[tuple[str, int]], capacity: int
) -> None:
    outbox = Outbox(capacity, max_bytes=400)
    kept: list[int] = []
    next_seq, acked, dropped = 1, 0, 0
    for op, value in ops:
        if op == "add":
            # ``value`` samples of ~100 bytes each: up to 3 per message at max_bytes=400
            seqs = outbox.add(T, [sample(i) for i in range(value)])
            assert seqs == list(range(next_seq, next_seq + len(seqs)))
            next_seq += len(seqs)
            kept += seqs
            while len(kept) > capacity:
                kept.pop(0)
                dropped += 1
        else:
            value = min(value, next_seq - 1)  # a server acks only what it was sent
            outbox.ack(value)
            acked = max(acked, value)
            kept = [seq for seq in kept if seq > value]
        assert [frame.seq for frame in outbox.after(0)] == kept
        assert [frame.seq for frame in outbox.after(acked)] == kept
        assert outbox.dropped == dropped
        assert outbox.next_seq == next_seq
