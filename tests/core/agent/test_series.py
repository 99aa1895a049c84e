"""Declared series: rows decode to the very samples a full batch carries; any fault in a
declaration or a row is a ProtocolError; the outbox keeps rows and rewrites them in full for a
server that stops taking them."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent import protocol
from custom_components.fleet_metrics.core.agent.outbox import Outbox, SeriesIds
from custom_components.fleet_metrics.core.agent.protocol import (
    CLOSE_MALFORMED,
    MAX_MESSAGE_BYTES,
    MAX_SERIES,
    Batch,
    Declare,
    ProtocolError,
    SeriesTable,
    Welcome,
    decode,
    encode,
    encode_rows,
)
from custom_components.fleet_metrics.core.sample import Sample

from .test_protocol import json_values, samples

T = 1_700_000_000.0


def _declared(ids: SeriesIds) -> SeriesTable:
    """The server's table after the agent declared every id it has."""
    table = SeriesTable()
    if ids.table.defs:
        for declaration in ids.declarations(0, max(ids.table.defs)):
            frame = encode(declaration)
            assert len(frame) <= MAX_MESSAGE_BYTES
            message = decode(frame)
            assert isinstance(message, Declare)
            table.declare(message)
    return table


@settings(max_examples=200, deadline=None)
@given(st.lists(samples(), min_size=1, max_size=6), st.integers(0, 3))
def test_rows_decode_to_the_samples_a_full_batch_carries(
    batch: list[Sample], ids_left: int
) -> None:
    """Also when the ids run out part way: the rest travel in full in the same batch."""
    ids = SeriesIds(limit=ids_left)
    rows, rest = [], []
    for sample in batch:
        row = ids.row(sample)
        rows.append(row) if row is not None else rest.append(sample)
    frame = encode_rows(7, T, rows, tuple(rest))
    decoded = decode(frame, _declared(ids))
    assert isinstance(decoded, Batch)
    full = decode(encode(Batch(7, T, (*rest, *[s for s in batch if s not in rest]))))
    assert sorted(map(repr, decoded.samples)) == sorted(map(repr, full.samples))  # type: ignore[union-attr]
    in_rows = [s for s in batch if s not in rest]
    keys = {(s.measurement, *s.tags.items(), None, *s.fields, s.counters) for s in in_rows}
    assert len(ids.table) == len(keys)  # one id per series, however often it comes


def test_the_same_series_keeps_its_id_and_a_new_field_set_gets_a_new_one() -> None:
    ids = SeriesIds()
    first = ids.row(Sample("net", {"device": "eth0"}, {"rx": 1, "tx": 2}, 1, frozenset({"rx"})))
    again = ids.row(Sample("net", {"device": "eth0"}, {"rx": 5, "tx": 6}, 2, frozenset({"rx"})))
    wider = ids.row(Sample("net", {"device": "eth0"}, {"rx": 5, "tx": 6, "e": 0}, 2))
    other = ids.row(Sample("net", {"device": "eth1"}, {"rx": 5, "tx": 6}, 2, frozenset({"rx"})))
    assert first is not None and again is not None and wider is not None and other is not None
    assert first[0] == again[0] == 0
    assert [wider[0], other[0]] == [1, 2]
    assert again == [0, 2, 5, 6]


def _frame(declarations: list[Any], rows: list[Any]) -> tuple[SeriesTable, bytes]:
    table = SeriesTable()
    message = decode(orjson.dumps({"type": "series", "v": 1, "series": declarations}))
    assert isinstance(message, Declare)
    table.declare(message)
    return table, orjson.dumps({"type": "batch", "v": 1, "seq": 1, "time": T, "rows": rows})


GOOD = [0, "load", {"host": "a"}, ["load1", "load5"], []]


@pytest.mark.parametrize(
    "row",
    [
        [1, 10, 1.0, 2.0],  # an id never declared
        ["0", 10, 1.0, 2.0],  # an id that is not an integer
        [0, -1, 1.0, 2.0],  # a time before 1970
        [0, 10.5, 1.0, 2.0],  # a time that is not an integer
        [0, 10, 1.0],  # too few values
        [0, 10, 1.0, 2.0, 3.0],  # too many
        [0, 10, 1.0, None],  # a value that is no field value
        [0, 10, 1.0, [2.0]],
        [0, 10],  # no values at all
        {"id": 0},  # not a list
    ],
)
def test_a_bad_row_is_malformed(row: Any) -> None:
    table, frame = _frame([GOOD], [row])
    with pytest.raises(ProtocolError) as raised:
        decode(frame, table)
    assert raised.value.code == CLOSE_MALFORMED
    decode(orjson.dumps(orjson.loads(frame) | {"rows": [[0, 10, 1.0, 2.0]]}), table)  # fine


@pytest.mark.parametrize(
    "declaration",
    [
        [MAX_SERIES, "load", {}, ["a"], []],  # an id past the cap
        [-1, "load", {}, ["a"], []],
        [0, "", {}, ["a"], []],  # no measurement
        [0, "load", {"k": 1}, ["a"], []],  # a tag value that is not a string
        [0, "load", {}, [], []],  # no fields
        [0, "load", {}, ["a", "a"], []],  # a field twice
        [0, "load", {}, ["a", 1], []],
        [0, "load", {}, ["a"], ["b"]],  # a counter that is not a field
        [0, "load", {}, ["a"], "a"],
        [0, "load", {}, ["a"]],  # too short
    ],
)
def test_a_bad_declaration_is_malformed(declaration: Any) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode(orjson.dumps({"type": "series", "v": 1, "series": [declaration]}))
    assert raised.value.code == CLOSE_MALFORMED


def test_rows_without_a_table_are_malformed() -> None:
    _, frame = _frame([GOOD], [[0, 10, 1.0, 2.0]])
    with pytest.raises(ProtocolError, match="without declared series"):
        decode(frame)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_rows_and_declarations_raise_only_protocol_error(data: st.DataObject) -> None:
    table, frame = _frame([GOOD, [1, "cpu", {}, ["user"], ["user"]]], [[0, 10, 1.0, 2.0]])
    raw = orjson.loads(frame)
    declaration = {"type": "series", "v": 1, "series": [list(GOOD)]}
    target = data.draw(st.sampled_from([raw["rows"][0], declaration["series"][0]]))
    target[data.draw(st.integers(0, len(target) - 1))] = data.draw(json_values)
    for message in (raw, declaration):
        code = 0
        try:
            result = decode(json.dumps(message), table)
        except ProtocolError as err:
            code = err.code
        if code:
            assert code in protocol.CLOSE_REASONS
        else:
            assert isinstance(result, Batch | Declare)


def test_welcome_carries_the_servers_capabilities_and_an_old_welcome_has_none() -> None:
    assert decode(encode(Welcome(3, ("series",)))) == Welcome(3, ("series",))
    assert decode(b'{"type":"welcome","v":1,"resume_from":3}') == Welcome(3, ())


def _sample(index: int) -> Sample:
    return Sample("disk", {"device": f"sd{index % 3}"}, {"read": index, "busy": 0.5}, index)


def test_the_outbox_keeps_rows_once_the_server_takes_series() -> None:
    outbox = Outbox(100)
    outbox.add(T, [_sample(0)])  # before any welcome: in full
    outbox.use_series(True)
    outbox.add(T + 1, [_sample(1), _sample(2)])
    outbox.add(T + 2, [_sample(3)])
    frames = list(outbox.after(0))
    assert [f.last_series for f in frames] == [-1, 1, 2]  # sd1, sd2, then sd0 got ids
    assert "rows" not in orjson.loads(frames[0].text)
    assert orjson.loads(frames[2].text)["rows"] == [[2, 3, 3, 0.5]]
    assert outbox.series is not None
    table = _declared(outbox.series)
    decoded = [decode(f.text, table) for f in frames]
    assert [[s.fields["read"] for s in b.samples] for b in decoded] == [[0], [1, 2], [3]]  # type: ignore[union-attr]


def test_a_server_that_stops_taking_series_gets_the_kept_frames_in_full() -> None:
    outbox = Outbox(100)
    outbox.use_series(True)
    for i in range(4):
        outbox.add(T + i, [_sample(i), _sample(i + 10)])
    outbox.ack(1)
    outbox.use_series(False)
    frames = list(outbox.after(0))
    assert [f.seq for f in frames] == [2, 3, 4]
    assert all(f.last_series == -1 and "rows" not in orjson.loads(f.text) for f in frames)
    reads = [[s.fields["read"] for s in decode(f.text).samples] for f in frames]  # type: ignore[union-attr]
    assert reads == [[1, 11], [2, 12], [3, 13]]
    outbox.add(T + 9, [_sample(9)])  # and new batches go in full too
    assert "samples" in orjson.loads(next(iter(outbox.after(4))).text)


def test_ids_that_ran_out_start_afresh_once_no_kept_batch_uses_them() -> None:
    outbox = Outbox(100, series_limit=4)
    outbox.use_series(True)
    for index in range(6):  # six series, four ids: the last two go in full
        outbox.add(T + index, [Sample("temp", {"sensor": str(index)}, {"c": 1.0}, index)])
    kinds = ["rows" in orjson.loads(f.text) for f in outbox.after(0)]
    assert kinds == [True, True, True, True, False, False]
    outbox.use_series(True)  # a reconnect with batches still kept: the ids stay
    assert outbox.series is not None and len(outbox.series.table) == 4
    outbox.ack(6)
    outbox.use_series(True)  # nothing kept refers to them: a fresh table
    assert outbox.series is not None and len(outbox.series.table) == 0
    outbox.add(T + 9, [Sample("temp", {"sensor": "9"}, {"c": 1.0}, 9)])
    assert orjson.loads(next(iter(outbox.after(6))).text)["rows"] == [[0, 9, 1.0]]


@pytest.mark.parametrize(
    "bad",
    [
        Sample("load", {}, {"load1": 1.0}, 1, frozenset({"missing"})),  # a counter of no field
        Sample("load", {"n": 5}, {"load1": 1.0}, 1),  # type: ignore[dict-item]  # not a string
        Sample("", {}, {"load1": 1.0}, 1),  # no measurement
        Sample("load", {}, {}, 1),  # no field
        Sample("load", {"t": "x" * 20_000}, {"load1": 1.0}, 1),  # a declaration over its cap
    ],
)
def test_a_series_the_server_would_refuse_never_blocks_the_others(bad: Sample) -> None:
    """It gets no id (the server would refuse its declaration and the agent would reconnect
    and replay forever): it goes in full, where the outbox's own check decides."""
    outbox = Outbox(100)
    outbox.use_series(True)
    good = Sample("load", {}, {"load1": 2.0}, 1)
    outbox.add(T, [good, bad])
    outbox.add(T + 1, [good])
    assert outbox.series is not None
    table = _declared(outbox.series)  # every declaration the server would get, accepted
    kept = [decode(frame.text, table) for frame in outbox.after(0)]
    loads = [s.fields.get("load1") for b in kept for s in b.samples]  # type: ignore[union-attr]
    assert loads.count(2.0) == 2
    assert len(outbox.series.table) == 1


def test_declarations_of_every_id_stay_within_the_message_cap() -> None:
    ids = SeriesIds()
    for index in range(ids.limit):
        tags = {"device": f"tap{index}i0", "bridge": "vmbr0" * 20}
        assert ids.row(Sample("network", tags, {f"f{n}": n for n in range(8)}, 1)) is not None
    messages = ids.declarations(0, ids.limit - 1)
    assert len(messages) > 1
    assert [sid for m in messages for sid, _ in m.series] == list(range(ids.limit))
    assert all(len(encode(message)) <= MAX_MESSAGE_BYTES // 2 for message in messages)


def test_a_kept_batch_too_large_in_full_keeps_its_seq_empty_after_a_downgrade() -> None:
    """The seqs stay contiguous, so every batch after it is still found and sent."""
    wide = {f"a_rather_long_field_name_{n:02d}": n for n in range(30)}
    outbox = Outbox(100, max_bytes=700)
    outbox.use_series(True)
    for index in range(4):
        small = Sample("load", {}, {"load1": float(index)}, index)
        outbox.add(T + index, [Sample("wide", {}, wide, index)] if index == 1 else [small])
    outbox.use_series(False)
    assert outbox.dropped == 1
    assert [f.seq for f in outbox.after(0)] == [1, 2, 3, 4]
    for seq in range(5):
        assert [f.seq for f in outbox.after(seq)] == list(range(seq + 1, 5))
    empty = decode(next(iter(outbox.after(1))).text)
    assert isinstance(empty, Batch) and empty.samples == ()
