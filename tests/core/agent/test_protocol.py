"""The agent protocol: round trips, and decode turns any input into a message or ProtocolError."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent import protocol
from custom_components.fleet_metrics.core.agent.protocol import (
    MAX_MESSAGE_BYTES,
    Ack,
    Batch,
    Hello,
    ProtocolError,
    Welcome,
    decode,
    encode,
)
from custom_components.fleet_metrics.core.sample import Sample

names = st.text(min_size=1, max_size=12)
field_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=8),
)


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    fields = draw(st.dictionaries(names, field_values, min_size=1, max_size=5))
    counters = draw(st.sets(st.sampled_from(sorted(fields))))
    return Sample(
        measurement=draw(names),
        tags=draw(st.dictionaries(names, st.text(max_size=10), max_size=4)),
        fields=fields,
        time_ns=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        counters=frozenset(counters),
    )


messages = st.one_of(
    st.builds(
        Hello,
        host=names,
        agent_version=st.text(max_size=10),
        boot_id=names,
        capabilities=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    ),
    st.builds(Welcome, resume_from=st.integers(min_value=0, max_value=2**63 - 1)),
    st.builds(
        Batch,
        seq=st.integers(min_value=1, max_value=2**63 - 1),
        time=st.floats(allow_nan=False, allow_infinity=False),
        samples=st.lists(samples(), max_size=4).map(tuple),
    ),
    st.builds(Ack, seq=st.integers(min_value=0, max_value=2**63 - 1)),
)


@settings(max_examples=200, deadline=None)
@given(messages)
def test_encode_decode_round_trip(message: protocol.Message) -> None:
    assert decode(encode(message)) == message
    assert decode(encode(message).decode()) == message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["type", "v", "seq", "time", "samples", "host", "agent_version", "boot_id",
     "capabilities", "resume_from", "m", "t", "f", "ts", "c"]
)  # fmt: skip


def _expect_message_or_protocol_error(data: str | bytes) -> None:
    code = 0
    try:
        result = decode(data)
    except ProtocolError as err:
        code = err.code
    if code:
        assert code in protocol.CLOSE_REASONS
    else:
        assert isinstance(result, Hello | Welcome | Batch | Ack)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_of_any_bytes_raises_only_protocol_error(data: bytes) -> None:
    _expect_message_or_protocol_error(data)


@settings(max_examples=300, deadline=None)
@given(messages, st.data())
def test_decode_of_damaged_messages_raises_only_protocol_error(
    message: protocol.Message, data: st.DataObject
) -> None:
    """Replace, drop or add fields at the top and inside samples: every shape fault is caught."""
    raw: dict[str, Any] = orjson.loads(encode(message))
    target = raw
    if raw.get("samples") and data.draw(st.booleans()):
        target = raw["samples"][0]
    action = data.draw(st.sampled_from(["replace", "drop", "add"]))
    key = data.draw(keys)
    if action == "drop":
        target.pop(key, None)
    else:
        target[key] = data.draw(json_values)
    _expect_message_or_protocol_error(json.dumps(raw))  # stdlib: big ints, NaN


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_decode_of_any_json_raises_only_protocol_error(value: Any) -> None:
    _expect_message_or_protocol_error(json.dumps(value))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{", protocol.CLOSE_MALFORMED),
        (b"[]", protocol.CLOSE_MALFORMED),
        (b'{"type": "ack", "seq": 1}', protocol.CLOSE_MALFORMED),
        (b'{"type": "ack", "v": 2, "seq": 1}', protocol.CLOSE_VERSION),
        (b'{"type": "ack", "v": 1, "seq": -1}', protocol.CLOSE_MALFORMED),
        (b'{"type": "ack", "v": 1, "seq": true}', protocol.CLOSE_MALFORMED),
        (b'{"type": "batch", "v": 1, "seq": 0, "time": 1, "samples": []}',
         protocol.CLOSE_MALFORMED),
        (b'{"type": "nope", "v": 1}', protocol.CLOSE_MALFORMED),
        (
            b'{"type": "batch", "v": 1, "seq": 1, "time": 1, "samples": '
            b'[{"m": "cpu", "f": {"user": 1}, "ts": 1, "c": ["idle"]}]}',
            protocol.CLOSE_MALFORMED,
        ),
        (
            b'{"type": "batch", "v": 1, "seq": 1, "time": 1, "samples": '
            b'[{"m": "cpu", "f": {"user": [1]}, "ts": 1}]}',
            protocol.CLOSE_MALFORMED,
        ),
        (b'{"type": "hello", "v": 1, "host": "", "agent_version": "1", "boot_id": "b",'
         b' "capabilities": []}', protocol.CLOSE_MALFORMED),
    ],
)  # fmt: skip
def test_decode_names_the_close_code(data: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(data)
    assert err.value.code == code


@pytest.mark.parametrize("as_text", [False, True])
def test_a_message_over_the_cap_is_too_large_even_when_valid(as_text: bool) -> None:
    sample = Sample("note", {}, {"text": "é" * (MAX_MESSAGE_BYTES // 2)}, time_ns=1)
    frame = encode(Batch(seq=1, time=1.0, samples=(sample,)))
    assert len(frame) > MAX_MESSAGE_BYTES
    with pytest.raises(ProtocolError) as err:
        decode(frame.decode() if as_text else frame)
    assert err.value.code == protocol.CLOSE_TOO_LARGE


def test_a_message_at_the_cap_is_accepted() -> None:
    empty = encode(Batch(seq=1, time=1.0, samples=(Sample("n", {}, {"x": ""}, time_ns=1),)))
    padding = MAX_MESSAGE_BYTES - len(empty)
    frame = encode(Batch(seq=1, time=1.0, samples=(Sample("n", {}, {"x": "a" * padding}, 1),)))
    assert len(frame) == MAX_MESSAGE_BYTES
    assert isinstance(decode(frame), Batch)


def test_wire_form_matches_the_spec() -> None:
    sample = Sample("cpu", {"cpu": "total"}, {"user": 1.5, "idle": 2.0}, 7, frozenset({"user"}))
    wire = orjson.loads(encode(Batch(seq=3, time=2.5, samples=(sample,))))
    assert wire == {
        "type": "batch",
        "v": 1,
        "seq": 3,
        "time": 2.5,
        "samples": [
            {"m": "cpu", "t": {"cpu": "total"}, "f": {"user": 1.5, "idle": 2.0}, "ts": 7,
             "c": ["user"]}
        ],
    }  # fmt: skip
