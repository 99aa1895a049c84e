"""What a source could not use: counted by kind, logged sparingly, handed to a dead-letter sink.

Every source meets hostile or broken input. One ``Rejects`` per source (and per HA entry) is
the single place that decides what happens to it: the message is counted under a kind
(``json``, ``shape``, ``too_large``, ``name``, ``cap``, ``exception``...), logged at most
once per ``log_interval`` per kind, and passed to the sink (the runner's dead-letter file)
with its topic and payload. ``guard`` wraps a message handler so that any exception a
payload provokes (``RecursionError`` from deep nesting, ``TypeError`` from an odd shape)
becomes a counted rejection instead of ending the source or the shared broker session.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

LOG_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Rejected:
    """One message or line that was skipped, and why."""

    source: str
    kind: str
    reason: str
    topic: str = ""
    payload: bytes = b""


RejectSink = Callable[[Rejected], None]
MessageHandler = Callable[[str, bytes], None]


class Rejects:
    def __init__(
        self,
        source: str,
        sink: RejectSink | None = None,
        log_interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = _LOGGER,
    ) -> None:
        self.source = source
        self.sink = sink
        self.by_kind: Counter[str] = Counter()
        self._log_interval = log_interval
        self._clock = clock
        self._logger = logger
        self._logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def reject(self, kind: str, reason: str, topic: str = "", payload: bytes = b"") -> None:
        """Count one rejection; log it unless this kind was logged within the interval."""
        self.by_kind[kind] += 1
        now = self._clock()
        last = self._logged.get(kind)
        if last is None or now - last >= self._log_interval:
            self._logged[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            where = f" on {topic[:200]}" if topic else ""
            self._logger.warning("%s: skipped a message%s: %s%s", self.source, where, reason, more)
        else:
            self._suppressed[kind] += 1
        if self.sink is not None:
            try:
                self.sink(Rejected(self.source, kind, reason, topic, payload))
            except Exception:  # a failing dead-letter file never stops a source
                self._logger.exception("%s: the dead-letter sink failed", self.source)

    def guard(self, handler: MessageHandler) -> MessageHandler:
        """``handler``, with any exception it raises counted as an ``exception`` rejection."""

        def guarded(topic: str, payload: bytes) -> None:
            try:
                handler(topic, payload)
            except Exception as err:
                self.reject("exception", f"{type(err).__name__}: {err}"[:500], topic, payload)

        return guarded
