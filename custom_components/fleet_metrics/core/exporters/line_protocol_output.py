"""Batches encoded lines and writes them to stdout, a file or an InfluxDB write API."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from typing import TextIO

import aiohttp

from ..sample import Sample
from .line_protocol import encode_sample

_LOGGER = logging.getLogger(__name__)


class LineProtocolOutput:
    """Encodes on ``add`` (cheap, no I/O) and writes on ``flush``.

    The buffer is bounded: when a write target is down for long, the oldest lines go first
    and are counted in ``dropped``.
    """

    def __init__(
        self,
        output: str = "stdout",
        max_buffer: int = 100_000,
        token: str = "",
        timeout: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.output = output
        self._buffer: deque[str] = deque(maxlen=max_buffer)
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream = stream
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.lines_written = 0
        self.dropped = 0
        self.write_errors = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def add(self, sample: Sample) -> None:
        if self.output == "none":
            return
        line = encode_sample(sample)
        if line is not None:
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append(line)

    async def flush(self) -> int:
        """Write everything buffered; returns the number of lines written."""
        async with self._lock:
            lines = self._buffer
            if not lines:
                return 0
            self._buffer = deque(maxlen=lines.maxlen)
            try:
                await self._write("\n".join(lines) + "\n")
            except (OSError, aiohttp.ClientError, TimeoutError, WriteRejected) as err:
                self.write_errors += 1
                _LOGGER.warning("line protocol write to %s failed: %s", self.output, err)
                # Put the batch back in front of what arrived meanwhile; oldest go first.
                self.dropped += max(0, len(lines) + len(self._buffer) - (lines.maxlen or 0))
                lines.extend(self._buffer)
                self._buffer = lines
                return 0
            self.lines_written += len(lines)
            return len(lines)

    async def _write(self, payload: str) -> None:
        if self.output == "stdout":
            stream = self._stream or sys.stdout
            stream.write(payload)
            stream.flush()
        elif self.output.startswith("file:"):
            path = self.output[len("file:") :]
            await asyncio.to_thread(_append, path, payload)
        else:
            await self._post(payload)

    async def _post(self, payload: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._token:
            headers["Authorization"] = f"Token {self._token}"
        async with self._session.post(
            self.output, data=payload.encode(), headers=headers, timeout=self._timeout
        ) as response:
            if response.status >= 300:
                body = (await response.text())[:200]
                raise WriteRejected(f"HTTP {response.status}: {body}")

    async def close(self) -> None:
        await self.flush()
        if self._session is not None:
            await self._session.close()
            self._session = None


class WriteRejected(Exception):
    """The write API answered with an error status."""


def _append(path: str, payload: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(payload)
