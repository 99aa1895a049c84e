"""Per server: sequence numbers and the bounded buffer of batches not yet acknowledged.

Batches are kept as their encoded frames: a 30-sample batch is ~5 kB of JSON but tens of kB
as Python objects, and 10,000 of them must fit on a small host. Every frame is decoded once
by the protocol's own parser before it is kept, so a batch the server would refuse (and that
would then be replayed forever) never enters the buffer; a batch over the message cap is split
into several, each with its own seq. Seqs in the buffer are contiguous and increasing: the
oldest are dropped by the cap (counted), the acknowledged ones freed by cumulative acks.

Once the server has said it takes declared series (``use_series``), batches are kept as rows
of series ids (``SeriesIds``); each frame remembers the highest id it uses, so that the
client declares what a connection has not seen before sending it. A server that stops taking
them (an older version after a downgrade) gets the kept frames rewritten in full.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Final, NamedTuple

from ..sample import Sample
from .protocol import (
    MAX_MESSAGE_BYTES,
    MAX_SERIES,
    Batch,
    Declare,
    ProtocolError,
    SeriesDef,
    SeriesTable,
    decode,
    definition,
    encode,
    encode_rows,
)

_LOGGER = logging.getLogger(__name__)

_WIDEST_SEQ: Final = 10**18  # sizes a split chunk for any seq it may get
SERIES_LIMIT: Final = 10_000  # series ids per server; a host has a few hundred series
_DECLARATION_BYTES: Final = MAX_MESSAGE_BYTES // 4  # per series message, with room to spare


class Frame(NamedTuple):
    seq: int
    text: str
    last_series: int = -1  # the highest series id the frame's rows use; -1: no rows


class SeriesIds:
    """The agent's series ids for one server: one per (measurement, tags, field names,
    counters), never reused. A series the server would refuse to declare gets no id, nor do
    new ones past ``limit``: those go in full, as samples (where the outbox's check leaves out
    what the server would refuse, counted)."""

    def __init__(self, limit: int = MAX_SERIES) -> None:
        self.limit = min(limit, MAX_SERIES)
        self.table = SeriesTable()  # the same declarations the server reads the rows with
        self._ids: dict[tuple[object, ...], int] = {}
        self._sizes: list[int] = []  # each declaration's encoded size, by id

    def row(self, sample: Sample) -> list[Any] | None:
        """``[id, time_ns, *values]``, or None: the sample goes in full."""
        fields = sample.fields
        counters = sample.counters
        if type(counters) is not frozenset:  # a collector's set
            counters = frozenset(counters)
        try:
            key = (sample.measurement, *sample.tags.items(), None, *fields, counters)
            sid = self._ids.get(key)
        except TypeError:  # an unhashable tag value: no declaration could carry it
            return None
        if sid is None:
            sid = len(self._ids)
            if sid >= self.limit:
                return None
            try:
                declared, size = definition(sid, sample.measurement, sample.tags, tuple(fields),
                                            counters)  # fmt: skip
            except ProtocolError:
                return None
            self._ids[key] = sid
            self._sizes.append(size)
            self.table.defs[sid] = declared
        return [sid, sample.time_ns, *fields.values()]

    def declarations(self, first: int, last: int) -> list[Declare]:
        """The ``series`` messages for ids ``first`` to ``last``, each well within the
        message cap (a connection after a long outage declares every id at once)."""
        defs = self.table.defs
        messages: list[Declare] = []
        chunk: list[tuple[int, SeriesDef]] = []
        size = 0
        for sid in range(first, last + 1):
            if chunk and size + self._sizes[sid] > _DECLARATION_BYTES:
                messages.append(Declare(tuple(chunk)))
                chunk, size = [], 0
            chunk.append((sid, defs[sid]))
            size += self._sizes[sid] + 1
        if chunk:
            messages.append(Declare(tuple(chunk)))
        return messages


class Outbox:
    """Unacknowledged batches for one server, oldest first, at most ``capacity``."""

    def __init__(
        self,
        capacity: int,
        name: str = "",
        max_bytes: int = MAX_MESSAGE_BYTES,
        series_limit: int = SERIES_LIMIT,
    ) -> None:
        self.capacity = capacity
        self.name = name
        self.max_bytes = max_bytes
        self.next_seq = 1
        self.acked = 0  # highest seq the server has confirmed
        self.dropped = 0  # batches pushed out by the cap before the server had them
        self.bad_samples = 0  # samples left out because no message could carry them
        self.series_limit = series_limit
        self.series: SeriesIds | None = None  # set while the server takes declared series
        self._series_ids: SeriesIds | None = None  # kept across connections: ids are stable
        self._frames: deque[Frame] = deque()
        self._full = False

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def first_seq(self) -> int:
        """The seq of the oldest kept batch (``next_seq`` when empty)."""
        return self._frames[0].seq if self._frames else self.next_seq

    def add(self, time: float, samples: Sequence[Sample]) -> list[int]:
        """Number ``samples`` as one batch (several when too large) and keep it; the seqs."""
        samples = tuple(samples)
        if not samples:
            return []
        if self.series is not None:
            kept = self._add_rows(self.series, time, samples)
            if kept is not None:
                return [kept]
        frame = encode(Batch(self.next_seq, time, samples))
        if len(frame) <= self.max_bytes and self._accepted(frame):  # the usual case
            return [self._keep(frame.decode())]
        return [
            self._keep(encode(Batch(self.next_seq, time, chunk)).decode())
            for chunk in self._chunks(time, samples)
        ]

    def _add_rows(self, series: SeriesIds, time: float, samples: tuple[Sample, ...]) -> int | None:
        """Keep ``samples`` as one frame of rows; None when none has an id or they do not fit
        in one frame (the caller sends them in full, as to a server without series)."""
        rows: list[list[Any]] = []
        rest: list[Sample] = []
        last = -1
        for sample in samples:
            row = series.row(sample)
            if row is None:
                rest.append(sample)
            else:
                rows.append(row)
                last = max(last, row[0])
        if not rows:
            return None
        frame = encode_rows(self.next_seq, time, rows, tuple(rest))
        if len(frame) > self.max_bytes or not self._accepted(frame):
            return None
        return self._keep(frame.decode(), last)

    def use_series(self, taken: bool) -> None:
        """What the server's welcome said about declared series. When it no longer takes
        them, the kept frames of rows are rewritten in full, each with its own seq."""
        if taken:
            ids = self._series_ids
            # Ids are never reused, so a host whose series change keeps using new ones; with
            # nothing kept that refers to the old ones, a new connection may start afresh.
            if ids is None or (not self._frames and len(ids.table) >= ids.limit // 2):
                ids = self._series_ids = SeriesIds(self.series_limit)
            self.series = ids
            return
        self.series = None
        if self._series_ids is None or all(f.last_series < 0 for f in self._frames):
            return
        table = self._series_ids.table
        frames: deque[Frame] = deque()
        for frame in self._frames:
            if frame.last_series < 0:
                frames.append(frame)
                continue
            batch = decode(frame.text, table)
            assert isinstance(batch, Batch)  # it was decoded before it was kept
            text = encode(Batch(frame.seq, batch.time, batch.samples))
            if len(text) > self.max_bytes:
                # A full frame is several times the size of its rows: rare, and counted. An
                # empty batch keeps its seq, so the seqs stay contiguous (``after`` counts on
                # it) and the server sees no gap.
                self.dropped += 1
                _LOGGER.warning(
                    "%s: batch %d too large to send in full; its samples are dropped",
                    self.name,
                    frame.seq,
                )
                text = encode(Batch(frame.seq, batch.time, ()))
            frames.append(Frame(frame.seq, text.decode()))
        self._frames = frames

    def ack(self, seq: int) -> int:
        """Free every batch up to ``seq`` (a cumulative ack or ``welcome.resume_from``)."""
        if seq >= self.next_seq:
            _LOGGER.warning(
                "%s confirmed seq %d but the agent has only sent up to %d",
                self.name,
                seq,
                self.next_seq - 1,
            )
        self.acked = max(self.acked, seq)
        freed = 0
        while self._frames and self._frames[0].seq <= seq:
            self._frames.popleft()
            freed += 1
        if self._full and len(self._frames) < self.capacity:
            self._full = False
        return freed

    def after(self, seq: int) -> Iterator[Frame]:
        """The kept batches with a seq above ``seq``, in order."""
        start = max(0, seq + 1 - self.first_seq)
        return itertools.islice(self._frames, start, None)

    def _keep(self, text: str, last_series: int = -1) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self._frames.append(Frame(seq, text, last_series))
        if len(self._frames) > self.capacity:
            self._frames.popleft()
            self.dropped += 1
            if not self._full:
                self._full = True
                _LOGGER.warning(
                    "%s: %d batches wait for the server; dropping the oldest (counted) until "
                    "it confirms some",
                    self.name,
                    self.capacity,
                )
        return seq

    def _chunks(self, time: float, samples: tuple[Sample, ...]) -> Iterator[tuple[Sample, ...]]:
        """``samples`` in pieces the server accepts: whole when they fit, else halves."""
        if not samples:
            return
        frame = encode(Batch(_WIDEST_SEQ, time, samples))
        if len(frame) <= self.max_bytes and self._accepted(frame):
            yield samples
        elif len(samples) == 1:
            self.bad_samples += 1
            _LOGGER.warning(
                "%s: leaving out a %s sample no message can carry (%d bytes encoded)",
                self.name,
                samples[0].measurement,
                len(frame),
            )
        else:
            middle = len(samples) // 2
            yield from self._chunks(time, samples[:middle])
            yield from self._chunks(time, samples[middle:])

    def _accepted(self, frame: bytes) -> bool:
        try:
            decode(frame, None if self.series is None else self.series.table)
        except ProtocolError:
            return False
        return True
