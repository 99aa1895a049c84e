"""The agent protocol: five JSON messages over one WebSocket, shared by agent and servers.

``hello {host, agent_version, boot_id, capabilities}`` → ``welcome {resume_from, capabilities}``;
then ``batch {seq, time, samples}`` → cumulative ``ack {seq}``. When both sides list the
``series`` capability, the agent declares each series once per connection
(``series {series: [[id, measurement, tags, field names, counters], ...]}``, not acked) and its
batches carry ``rows: [[id, time_ns, value, ...], ...]``: the names and tags that were most of
every batch's bytes and of the server's parsing travel once. Every frame is a JSON object with
``"type"`` and ``"v"`` (the protocol version). The token is never part of a message: it travels
in the ``Authorization: Bearer`` header of the upgrade request, and the server checks it
against the stored hash of the host the hello names.

``decode`` is the only parser: whatever the bytes, it returns one of the messages or raises
``ProtocolError`` carrying the close code the server answers with, so no unchecked value ever
travels past it. A decoded batch's samples are checked ``WireSample`` tuples (the server's
hot path); ``Batch.samples`` makes ``Sample`` objects of them for whoever needs those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import orjson

from ..sample import FieldValue, Sample

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 1_048_576  # a batch bigger than this is split by the agent
SERIES: Final = "series"  # the capability: declared series and batches of rows
MAX_SERIES: Final = 10_000  # series ids are 0 .. MAX_SERIES - 1 (bounds a connection's table)
MAX_DECLARED_BYTES: Final = 4 * MAX_MESSAGE_BYTES  # declarations one connection may send
MAX_DEFINITION_BYTES: Final = 16_384  # one series' declaration, encoded

# WebSocket close codes (4000-4999 are free for applications, RFC 6455 7.4.2).
CLOSE_MALFORMED: Final = 4000
CLOSE_NOT_AUTHORISED: Final = 4001  # unknown host, wrong token and revoked host alike
CLOSE_REPLACED: Final = 4002  # a newer connection of the same host took over
CLOSE_TOO_LARGE: Final = 4003
CLOSE_RATE_LIMITED: Final = 4008
CLOSE_VERSION: Final = 4010

CLOSE_REASONS: Final[Mapping[int, str]] = {
    CLOSE_MALFORMED: "malformed message",
    CLOSE_NOT_AUTHORISED: "not authorised",
    CLOSE_REPLACED: "replaced by a newer connection",
    CLOSE_TOO_LARGE: "message too large",
    CLOSE_RATE_LIMITED: "too many failed attempts",
    CLOSE_VERSION: "protocol version not supported",
}


class ProtocolError(Exception):
    """A frame that breaks the protocol; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hello:
    host: str
    agent_version: str
    boot_id: str
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Welcome:
    """``resume_from``: highest seq applied for this host and boot_id (0 for none).

    The agent drops buffered batches with ``seq <= resume_from`` and sends the rest in order.
    """

    resume_from: int
    capabilities: tuple[str, ...] = ()


class SeriesDef(NamedTuple):
    """What a series id stands for on one connection."""

    measurement: str
    tags: Mapping[str, str]
    names: tuple[str, ...]
    counters: frozenset[str]


@dataclass(frozen=True, slots=True)
class Declare:
    """``series``: ids and what they stand for from now on, on this connection."""

    series: tuple[tuple[int, SeriesDef], ...]


class SeriesTable:
    """One connection's declared series. Ids are bounded by ``MAX_SERIES``, so is this."""

    __slots__ = ("defs",)

    def __init__(self) -> None:
        self.defs: dict[int, SeriesDef] = {}

    def declare(self, declare: Declare) -> None:
        self.defs.update(declare.series)

    def __len__(self) -> int:
        return len(self.defs)


class SampleData(Protocol):
    """What a server reads of a batch's sample: ``Sample`` and ``WireSample`` alike."""

    @property
    def measurement(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def fields(self) -> Mapping[str, FieldValue]: ...
    @property
    def time_ns(self) -> int: ...
    @property
    def counters(self) -> frozenset[str]: ...


class WireSample(NamedTuple):
    """A sample as ``decode`` checked it: a plain tuple, about six times cheaper to make than
    a ``Sample`` (a frozen dataclass), which matters at a thousand batches of forty samples
    a second. ``Batch.samples`` turns them into ``Sample`` objects for whoever asks."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int
    counters: frozenset[str]


class Batch:
    """``seq`` starts at 1 per (server, boot_id) and never repeats; ``time`` is unix seconds.

    Immutable by convention (slots, no setters are used after construction). A decoded batch
    holds ``WireSample`` tuples in ``readings`` and makes its ``Sample`` objects only when
    ``samples`` is first read (Home Assistant reads them; the runner's hub reads
    ``readings``); a batch built from samples (the agent) has them as its ``readings`` too.
    """

    __slots__ = ("_samples", "readings", "seq", "time")

    def __init__(self, seq: int, time: float, samples: tuple[Sample, ...]) -> None:
        self.seq = seq
        self.time = time
        self._samples: tuple[Sample, ...] | None = samples
        self.readings: tuple[SampleData, ...] = samples

    @classmethod
    def decoded(cls, seq: int, time: float, readings: tuple[WireSample, ...]) -> Batch:
        batch = cls.__new__(cls)
        batch.seq = seq
        batch.time = time
        batch._samples = None
        batch.readings = readings
        return batch

    @property
    def samples(self) -> tuple[Sample, ...]:
        samples = self._samples
        if samples is None:
            samples = self._samples = tuple(
                [Sample(r.measurement, r.tags, r.fields, r.time_ns, r.counters)
                 for r in self.readings]
            )  # fmt: skip
        return samples

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return (self.seq, self.time, self.samples) == (other.seq, other.time, other.samples)

    def __hash__(self) -> int:
        return hash((self.seq, self.time, len(self.readings)))

    def __repr__(self) -> str:
        return f"Batch(seq={self.seq!r}, time={self.time!r}, samples={len(self.readings)})"


@dataclass(frozen=True, slots=True)
class Ack:
    """Cumulative: every batch with ``seq`` at or below this one is applied."""

    seq: int


Message = Hello | Welcome | Batch | Ack | Declare


def encode(message: Message) -> bytes:
    """The JSON text frame of ``message``."""
    if isinstance(message, Batch):
        return orjson.dumps(
            {
                "type": "batch",
                "v": PROTOCOL_VERSION,
                "seq": message.seq,
                "time": message.time,
                "samples": [_sample_to_wire(sample) for sample in message.samples],
            }
        )
    if isinstance(message, Ack):
        return orjson.dumps({"type": "ack", "v": PROTOCOL_VERSION, "seq": message.seq})
    if isinstance(message, Declare):
        return orjson.dumps(
            {
                "type": "series",
                "v": PROTOCOL_VERSION,
                "series": [
                    [sid, d.measurement, dict(d.tags), list(d.names), sorted(d.counters)]
                    for sid, d in message.series
                ],
            }
        )
    if isinstance(message, Hello):
        return orjson.dumps(
            {
                "type": "hello",
                "v": PROTOCOL_VERSION,
                "host": message.host,
                "agent_version": message.agent_version,
                "boot_id": message.boot_id,
                "capabilities": list(message.capabilities),
            }
        )
    welcome: dict[str, Any] = {
        "type": "welcome",
        "v": PROTOCOL_VERSION,
        "resume_from": message.resume_from,
    }
    if message.capabilities:
        welcome["capabilities"] = list(message.capabilities)
    return orjson.dumps(welcome)


def encode_rows(seq: int, time: float, rows: list[list[Any]], samples: tuple[Sample, ...]) -> bytes:
    """A batch of declared series' ``rows`` (``[id, time_ns, *values]``) and, for series
    without an id, ``samples`` in full."""
    batch: dict[str, Any] = {"type": "batch", "v": PROTOCOL_VERSION, "seq": seq, "time": time}
    if samples:
        batch["samples"] = [_sample_to_wire(sample) for sample in samples]
    batch["rows"] = rows
    return orjson.dumps(batch)


def _sample_to_wire(sample: Sample) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "m": sample.measurement,
        "t": dict(sample.tags),
        "f": dict(sample.fields),
        "ts": sample.time_ns,
    }
    if sample.counters:
        wire["c"] = sorted(sample.counters)
    return wire


def decode(data: str | bytes, table: SeriesTable | None = None) -> Message:
    """Parse one frame; raises ``ProtocolError`` and nothing else. A batch's ``rows`` are
    read with the connection's ``table`` (a batch with rows and no table is malformed); a
    ``series`` message is returned, not applied: the caller declares it in its table."""
    if _size(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(CLOSE_TOO_LARGE, f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        raw = orjson.loads(data)
    except (ValueError, TypeError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise ProtocolError(CLOSE_MALFORMED, f"not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ProtocolError(CLOSE_MALFORMED, "message is not a JSON object")
    version = raw.get("v")
    if type(version) is not int:
        raise ProtocolError(CLOSE_MALFORMED, "missing protocol version 'v'")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(CLOSE_VERSION, f"protocol version {version} not supported")
    kind = raw.get("type")
    try:
        if kind == "batch":
            seq, time = _int(raw, "seq", 1), _number(raw, "time")
            rows = raw.get("rows")
            if rows is None:
                return Batch.decoded(seq, time, tuple([_sample(i) for i in _list(raw, "samples")]))
            if table is None:
                raise _Bad("'rows' without declared series")
            samples = raw.get("samples")
            readings = [] if samples is None else [_sample(i) for i in _list(raw, "samples")]
            defs = table.defs
            readings.extend([_row(item, defs) for item in _list(raw, "rows")])
            return Batch.decoded(seq, time, tuple(readings))
        if kind == "series":
            return Declare(tuple([_declared(item) for item in _list(raw, "series")]))
        if kind == "ack":
            return Ack(seq=_int(raw, "seq", 0))
        if kind == "hello":
            return Hello(
                host=_text(raw, "host", nonempty=True),
                agent_version=_text(raw, "agent_version"),
                boot_id=_text(raw, "boot_id", nonempty=True),
                capabilities=tuple(_texts(_list(raw, "capabilities"), "capabilities")),
            )
        if kind == "welcome":
            offered = raw.get("capabilities")
            return Welcome(
                resume_from=_int(raw, "resume_from", 0),
                capabilities=()
                if offered is None
                else tuple(_texts(_list(raw, "capabilities"), "capabilities")),
            )
    except _Bad as err:
        raise ProtocolError(CLOSE_MALFORMED, f"{kind}: {err}") from None
    raise ProtocolError(CLOSE_MALFORMED, f"unknown message type {kind!r}")


def _size(data: str | bytes) -> int:
    """Bytes on the wire; a str is encoded only when its length alone cannot decide."""
    if isinstance(data, bytes) or len(data) * 4 <= MAX_MESSAGE_BYTES:
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


class _Bad(Exception):
    """A field with the wrong shape; turned into ``ProtocolError`` by ``decode``."""


def _int(raw: Mapping[str, Any], key: str, minimum: int) -> int:
    value = raw.get(key)
    if type(value) is not int or value < minimum:
        raise _Bad(f"{key!r} must be an integer >= {minimum}")
    return value


def _number(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key)
    if type(value) is int:
        return float(value)
    if type(value) is not float or not math.isfinite(value):
        raise _Bad(f"{key!r} must be a number")
    return value


def _text(raw: Mapping[str, Any], key: str, nonempty: bool = False) -> str:
    value = raw.get(key)
    if type(value) is not str or (nonempty and not value):
        raise _Bad(f"{key!r} must be a {'non-empty ' if nonempty else ''}string")
    return value


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if type(value) is not list:
        raise _Bad(f"{key!r} must be a list")
    return value


def _texts(values: list[Any], key: str) -> list[str]:
    for value in values:
        if type(value) is not str:
            raise _Bad(f"{key!r} must hold strings")
    return values


_FIELD_TYPES: Final = frozenset((int, float, bool, str))
_TAG_TYPES: Final = frozenset((str,))
_EMPTY_TAGS: Final[dict[str, str]] = {}
_new_tuple = tuple.__new__


def _sample(item: Any) -> WireSample:
    """The hot path of a batch (every sample of every batch): type tests run in C
    (``issuperset`` over ``map(type, ...)``), no Python loop over the values.

    No finiteness test: orjson refuses NaN and Infinity and numbers that overflow a double.
    """
    if type(item) is not dict:
        raise _Bad("a sample must be an object")
    measurement = item.get("m")
    if type(measurement) is not str or not measurement:
        raise _Bad("sample 'm' must be a non-empty string")
    tags = item.get("t")
    if tags is None:
        tags = _EMPTY_TAGS
    elif type(tags) is not dict or not _TAG_TYPES.issuperset(map(type, tags.values())):
        raise _Bad("sample 't' must map names to strings")
    fields = item.get("f")
    if type(fields) is not dict or not fields:
        raise _Bad("sample 'f' must be a non-empty object")
    if not _FIELD_TYPES.issuperset(map(type, fields.values())):
        raise _Bad("sample field values must be numbers, booleans or strings")
    time_ns = item.get("ts")
    if type(time_ns) is not int or time_ns < 0:
        raise _Bad("sample 'ts' must be an integer >= 0 (unix nanoseconds)")
    counters = item.get("c")
    if counters:
        if type(counters) is not list:
            raise _Bad("sample 'c' must be a list of field names")
        names = _counter_names(counters)
        if not fields.keys() >= names:
            raise _Bad("sample 'c' must name fields of the sample")
    elif counters is None or counters == []:
        names = _NO_COUNTERS
    else:
        raise _Bad("sample 'c' must be a list of field names")
    return _new_tuple(WireSample, (measurement, tags, fields, time_ns, names))


def _row(item: Any, defs: Mapping[int, SeriesDef]) -> WireSample:
    """One row of a declared series, checked like a sample (the series was when declared)."""
    if type(item) is not list or len(item) < 3:
        raise _Bad("a row must be [id, time_ns, value, ...]")
    declared = defs.get(item[0]) if type(item[0]) is int else None
    if declared is None:
        raise _Bad("a row's id must be a declared series")
    time_ns = item[1]
    if type(time_ns) is not int or time_ns < 0:
        raise _Bad("a row's time must be an integer >= 0 (unix nanoseconds)")
    values = item[2:]
    names = declared.names
    if len(values) != len(names):
        raise _Bad(f"a row of series {item[0]} must have {len(names)} values")
    if not _FIELD_TYPES.issuperset(map(type, values)):
        raise _Bad("row values must be numbers, booleans or strings")
    fields = dict(zip(names, values))  # noqa: B905 - the lengths were compared above
    return _new_tuple(
        WireSample, (declared.measurement, declared.tags, fields, time_ns, declared.counters)
    )


def definition(
    sid: int, measurement: str, tags: Mapping[str, str], names: Sequence[str], counters: Any
) -> tuple[SeriesDef, int]:
    """A series as the server will read its declaration, and the declaration's encoded size;
    ``ProtocolError`` when the server would refuse it (the agent then sends it in full)."""
    try:
        wire = [sid, measurement, dict(tags), list(names), sorted(counters)]
        size = len(orjson.dumps(wire))
        if size > MAX_DEFINITION_BYTES:
            raise _Bad(f"a series' declaration must stay within {MAX_DEFINITION_BYTES} bytes")
        return _declared(wire)[1], size
    except (_Bad, TypeError, orjson.JSONEncodeError) as err:
        raise ProtocolError(CLOSE_MALFORMED, f"series: {err}") from None


def _declared(item: Any) -> tuple[int, SeriesDef]:
    if type(item) is not list or len(item) != 5:
        raise _Bad("a series must be [id, measurement, tags, field names, counters]")
    sid, measurement, tags, names, counters = item
    if type(sid) is not int or not 0 <= sid < MAX_SERIES:
        raise _Bad(f"a series id must be an integer from 0 to {MAX_SERIES - 1}")
    if type(measurement) is not str or not measurement:
        raise _Bad("a series' measurement must be a non-empty string")
    if type(tags) is not dict or not _TAG_TYPES.issuperset(map(type, tags.values())):
        raise _Bad("a series' tags must map names to strings")
    if type(names) is not list or not names or not _TAG_TYPES.issuperset(map(type, names)):
        raise _Bad("a series' field names must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise _Bad("a series' field names must differ")
    if type(counters) is not list:
        raise _Bad("a series' counters must be a list of field names")
    counter_names = _counter_names(counters) if counters else _NO_COUNTERS
    if not counter_names <= frozenset(names):
        raise _Bad("a series' counters must name its fields")
    return sid, SeriesDef(measurement, _shared_tags(tags), _shared_names(names), counter_names)


# Every connection declares its series; most hosts' series share their tags (``device=vmbr0``)
# and field names. One object each, shared by every connection's table (and by the hub's
# readings, which keep them), instead of one per declaration: 10 MB for 1,000 hosts otherwise.
# Bounded like ``_COUNTER_SETS``.
_TAG_SETS: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
_NAME_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}
_MAX_SHARED_CHARS: Final = 1024
_K = TypeVar("_K")
_V = TypeVar("_V")


def _shared_tags(tags: dict[str, str]) -> Mapping[str, str]:
    if not tags:
        return _EMPTY_TAGS
    if sum(len(key) + len(value) for key, value in tags.items()) > _MAX_SHARED_CHARS:
        return tags  # bounded in size too: a huge one is not kept for others
    return _shared(_TAG_SETS, tuple(tags.items()), tags)


def _shared_names(names: list[str]) -> tuple[str, ...]:
    key = tuple(names)
    return key if sum(map(len, key)) > _MAX_SHARED_CHARS else _shared(_NAME_TUPLES, key, key)


def _shared(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """``cache``'s object for ``key``, else ``value``, kept (bounded: a flood of made-up keys
    only costs a refill)."""
    shared = cache.get(key)
    if shared is None:
        if len(cache) >= _MAX_COUNTER_SETS:
            cache.clear()
        shared = cache[key] = value
    return shared


_NO_COUNTERS: Final[frozenset[str]] = frozenset()
# A host sends the same few counter lists in every batch: one frozenset each, shared by every
# sample (and by the hub's readings, which keep them), instead of one per sample.
_COUNTER_SETS: dict[tuple[str, ...], frozenset[str]] = {}
_MAX_COUNTER_SETS: Final = 4096


def _counter_names(counters: list[Any]) -> frozenset[str]:
    """``counters`` as a shared frozenset; ``_Bad`` unless it holds only strings."""
    key = tuple(counters)
    try:
        names = _COUNTER_SETS.get(key)
    except TypeError:  # an unhashable item (a list, an object)
        raise _Bad("sample 'c' must be a list of field names") from None
    if names is None:
        if not all(type(name) is str for name in counters):
            raise _Bad("sample 'c' must be a list of field names")
        if len(_COUNTER_SETS) >= _MAX_COUNTER_SETS:
            _COUNTER_SETS.clear()  # bounded: a flood of made-up lists only costs a refill
        names = _COUNTER_SETS[key] = frozenset(counters)
    return names
