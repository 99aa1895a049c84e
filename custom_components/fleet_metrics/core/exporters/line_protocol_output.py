"""Batches encoded lines and writes them to stdout, a file or an InfluxDB write API.

What a failure means, per target:
- HTTP: lines go in chunks (``batch_lines`` / ``batch_bytes``, counted in characters). A
  chunk the server finds too large (413) is split in halves down to one line; lines the
  server refuses (another 4xx, or the bad lines of a partial write) are dropped, counted in
  ``lines_rejected`` and handed to ``on_rejected``; the endpoint's own trouble (5xx,
  timeouts, connection errors) keeps the chunk in front and retries it with backoff, behind
  a circuit breaker. Nothing after a refused chunk waits for it.
- stdout: a reader that went away (EPIPE) raises ``OutputClosed`` once; the runner ends.
- file: an error keeps the lines for the next flush.
The buffer is bounded: the oldest lines go first and are counted in ``dropped``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import TextIO

from ..backoff import Backoff
from ..rejects import Rejected, RejectSink
from ..sample import Sample
from .circuit_breaker import CircuitBreaker, State
from .http_writer import Answer, HttpWriter
from .line_protocol import LineEncoder

_LOGGER = logging.getLogger(__name__)

SOURCE = "line_protocol"


class OutputClosed(Exception):
    """The output cannot be written any more (stdout's reader is gone): stop the process."""


class LineProtocolOutput:
    """Encodes on ``add`` (cheap, no I/O) and writes on ``flush``."""

    def __init__(
        self,
        output: str = "stdout",
        max_buffer: int = 100_000,
        token: str = "",
        timeout: float = 10.0,
        stream: TextIO | None = None,
        batch_lines: int = 5_000,
        batch_bytes: int = 1_000_000,
        on_rejected: RejectSink | None = None,
        breaker: CircuitBreaker | None = None,
        backoff: Backoff | None = None,
        username: str = "",
        password: str = "",
    ) -> None:
        self.output = output
        self._buffer: deque[str] = deque()
        self.max_buffer = max_buffer
        self.batch_lines = batch_lines
        self.batch_bytes = batch_bytes
        self.on_rejected = on_rejected
        self._stream = stream
        self._encoder = LineEncoder()
        self._http = (
            HttpWriter(output, token, timeout, username, password)
            if output.startswith(("http:", "https:"))
            else None
        )
        self.breaker = breaker or CircuitBreaker()
        self._backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self._retry_at = 0.0
        self._lock = asyncio.Lock()
        self._closed = False
        self.lines_written = 0
        self.lines_rejected = 0
        self.dropped = 0
        self.write_errors = 0
        self.retries = 0
        self.splits = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def breaker_state(self) -> State:
        return self.breaker.state

    @property
    def unencodable(self) -> int:
        """Samples that no line can carry (empty measurement, series key over the limit)."""
        return self._encoder.skipped

    def add(self, sample: Sample) -> None:
        if self.output == "none" or self._closed:
            return
        line = self._encoder.encode(sample)
        if line is not None:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(line)

    def add_lines(self, lines: Iterable[str]) -> None:
        """Lines encoded by a source itself (with this module's ``LineEncoder``), so that a
        source with its own shapes makes no ``Sample`` per line; the buffer's cap applies."""
        if self.output == "none" or self._closed:
            return
        buffer = self._buffer
        buffer.extend(lines)
        excess = len(buffer) - self.max_buffer
        if excess > 0:
            for _ in range(excess):
                buffer.popleft()
            self.dropped += excess

    async def flush(self, deadline: float | None = None) -> int:
        """Write what is buffered; returns the number of lines written.

        ``deadline`` (``time.monotonic()``): stop trying then, keeping what is left.
        """
        async with self._lock:
            if not self._buffer or self._closed:
                return 0
            if self._http is not None:
                return await self._flush_http(deadline)
            lines = list(self._buffer)
            self._buffer.clear()
            payload = "\n".join(lines) + "\n"
            try:
                if self.output == "stdout":
                    self._write_stdout(payload)
                else:
                    await asyncio.to_thread(_append, self.output.removeprefix("file:"), payload)
            except OSError as err:
                self.write_errors += 1
                _LOGGER.warning("line protocol write to %s failed: %s", self.output, err)
                self._put_back(lines)
                return 0
            self.lines_written += len(lines)
            return len(lines)

    def _write_stdout(self, payload: str) -> None:
        stream = self._stream
        try:
            if stream is None:
                sys.stdout.buffer.write(payload.encode(errors="replace"))
                sys.stdout.buffer.flush()
            else:
                stream.write(payload)
                stream.flush()
        except BrokenPipeError as err:
            self._stdout_gone(stream or sys.stdout)
            raise OutputClosed(
                "stdout was closed by its reader; nothing more can be written"
            ) from err
        except OSError as err:
            if err.errno != errno.EPIPE:
                raise
            self._stdout_gone(stream or sys.stdout)
            raise OutputClosed(
                "stdout was closed by its reader; nothing more can be written"
            ) from err

    def _stdout_gone(self, stream: TextIO) -> None:
        """Stop for good, and point the stream's fd at /dev/null so that the interpreter's
        own flush at exit does not print "Exception ignored ... BrokenPipeError"."""
        self._closed = True
        self.dropped += len(self._buffer)
        self._buffer.clear()
        try:
            fd = stream.fileno()
        except (OSError, ValueError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)

    def _put_back(self, lines: list[str]) -> None:
        """Lines that failed go in front of what arrived meanwhile; the oldest go first."""
        self._buffer.extendleft(reversed(lines))
        excess = len(self._buffer) - self.max_buffer
        for _ in range(max(0, excess)):
            self._buffer.popleft()
        self.dropped += max(0, excess)

    def _take_chunk(self) -> list[str]:
        chunk: list[str] = []
        size = 0
        buffer = self._buffer
        while buffer and len(chunk) < self.batch_lines:
            size += len(buffer[0]) + 1
            if chunk and size > self.batch_bytes:
                break
            chunk.append(buffer.popleft())
        return chunk

    async def _flush_http(self, deadline: float | None) -> int:
        if deadline is None and time.monotonic() < self._retry_at:
            return 0  # backing off after a failure
        written_before = self.lines_written
        while self._buffer and self.breaker.allow():
            if deadline is not None and time.monotonic() >= deadline:
                break
            chunk = self._take_chunk()
            try:
                left, failure = await self._send(chunk, deadline)
            except asyncio.CancelledError:
                # Cancelled mid-request (the runner stops its periodic flush at shutdown):
                # the server may or may not have the chunk, so it goes back for the closing
                # flush. Sending a line twice is harmless, as InfluxDB keeps one point per
                # series and time (and a half already written after a split is counted
                # again); dropping it would lose data.
                self._put_back(chunk)
                raise
            if failure is not None:
                self._put_back(left)
                self.write_errors += 1
                self.retries += 1
                self.breaker.failure()
                self._retry_at = time.monotonic() + self._backoff.next_delay()
                _LOGGER.warning(
                    "line protocol write to %s failed, %d lines kept for a retry: %s",
                    self._public_url,
                    len(self._buffer),
                    failure,
                )
                break
            self.breaker.success()
            self._backoff.reset()
        return self.lines_written - written_before

    @property
    def _public_url(self) -> str:
        return self._http.public_url if self._http is not None else self.output

    async def _send(self, lines: list[str], deadline: float | None) -> tuple[list[str], str | None]:
        """Write ``lines``; (lines left to retry, why) when the endpoint failed."""
        assert self._http is not None
        seconds = None if deadline is None else deadline - time.monotonic()
        if seconds is not None and seconds <= 0:
            return lines, "the shutdown deadline passed"
        answer = await self._http.post(lines, seconds)
        if answer.verdict == "written":
            self.lines_written += len(lines)
        elif answer.verdict == "retry":
            status = f"HTTP {answer.status}: " if answer.status else ""
            return lines, f"{status}{answer.reason}"
        elif answer.verdict == "too_large" and len(lines) > 1:
            self.splits += 1
            middle = len(lines) // 2
            left, failure = await self._send(lines[:middle], deadline)
            if failure is not None:
                return left + lines[middle:], failure
            return await self._send(lines[middle:], deadline)
        elif answer.verdict == "partial":
            self._partial(lines, answer)
        else:  # rejected, or one line that is too large on its own
            self._reject(lines, answer)
        return [], None

    def _partial(self, lines: list[str], answer: Answer) -> None:
        bad = [lines[index] for index in sorted(answer.bad_lines)]
        self._reject(bad, answer)
        self.lines_rejected += answer.unnamed_dropped
        if answer.unnamed_dropped:
            self._dead_letter(answer, b"")  # InfluxDB counts these but does not say which
        self.lines_written += max(0, len(lines) - len(bad) - answer.unnamed_dropped)

    def _reject(self, lines: list[str], answer: Answer) -> None:
        if not lines:
            return
        self.lines_rejected += len(lines)
        _LOGGER.warning(
            "%s refused %d lines (HTTP %d): %s",
            self._public_url,
            len(lines),
            answer.status,
            answer.reason[:200],
        )
        for line in lines:
            self._dead_letter(answer, line.encode(errors="replace"))

    def _dead_letter(self, answer: Answer, payload: bytes) -> None:
        if self.on_rejected is None:
            return
        rejected = Rejected(
            SOURCE, f"http_{answer.status}", answer.reason, self._public_url, payload
        )
        try:
            self.on_rejected(rejected)
        except Exception:  # a failing dead-letter sink never stops the output
            _LOGGER.exception("the dead-letter sink failed")

    async def close(self, flush_seconds: float = 5.0) -> None:
        """Flush for at most ``flush_seconds`` (a down endpoint must not hold up shutdown),
        then close the HTTP session. ``OutputClosed`` from this last flush propagates: the
        caller still has to know that stdout's reader went away."""
        try:
            if self._http is not None:
                self._retry_at = 0.0
                await self.flush(time.monotonic() + flush_seconds)
            else:
                async with asyncio.timeout(flush_seconds):
                    await self.flush()
        except TimeoutError:
            pass
        finally:
            if self._buffer:
                _LOGGER.warning(
                    "line protocol: %d lines not written at shutdown", len(self._buffer)
                )
            if self._http is not None:
                await self._http.close()


def _append(path: str, payload: str) -> None:
    with open(path, "a", encoding="utf-8", errors="replace") as handle:
        handle.write(payload)
