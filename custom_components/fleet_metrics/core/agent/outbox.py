"""Per server: sequence numbers and the bounded buffer of batches not yet acknowledged.

Batches are kept as their encoded frames: a 30-sample batch is ~5 kB of JSON but tens of kB
as Python objects, and 10,000 of them must fit on a small host. Every frame is decoded once
by the protocol's own parser before it is kept, so a batch the server would refuse (and that
would then be replayed forever) never enters the buffer; a batch over the message cap is split
into several, each with its own seq. Seqs in the buffer are contiguous and increasing: the
oldest are dropped by the cap (counted), the acknowledged ones freed by cumulative acks.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

from ..sample import Sample
from .protocol import MAX_MESSAGE_BYTES, Batch, ProtocolError, decode, encode

_LOGGER = logging.getLogger(__name__)

_WIDEST_SEQ: Final = 10**18  # sizes a split chunk for any seq it may get


class Frame(NamedTuple):
    seq: int
    text: str


class Outbox:
    """Unacknowledged batches for one server, oldest first, at most ``capacity``."""

    def __init__(self, capacity: int, name: str = "", max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.capacity = capacity
        self.name = name
        self.max_bytes = max_bytes
        self.next_seq = 1
        self.acked = 0  # highest seq the server has confirmed
        self.dropped = 0  # batches pushed out by the cap before the server had them
        self.bad_samples = 0  # samples left out because no message could carry them
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
        frame = encode(Batch(self.next_seq, time, samples))
        if len(frame) <= self.max_bytes and self._accepted(frame):  # the usual case
            return [self._keep(frame.decode())]
        return [
            self._keep(encode(Batch(self.next_seq, time, chunk)).decode())
            for chunk in self._chunks(time, samples)
        ]

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

    def _keep(self, text: str) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self._frames.append(Frame(seq, text))
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
            decode(frame)
        except ProtocolError:
            return False
        return True
