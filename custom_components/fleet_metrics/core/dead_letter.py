"""The dead-letter file: every message a source rejected and every line an output refused.

One JSON object per line (time, source, kind, reason, topic, payload), so ``jq`` and a log
shipper read it as it is. Bounded: past ``max_bytes`` the file is rotated (path -> path.1 ...
up to ``backups``), and each payload is cut to ``payload_limit`` bytes and stored as text
(invalid UTF-8 replaced) with ``payload_bytes`` (its full size), ``truncated`` and ``utf8``
(whether the kept bytes were UTF-8 text, a character cut at the limit aside).

Records are buffered and written in one batch per ``flush_delay`` (or at once when
``batch_bytes`` are waiting): a flood of garbage then costs one small append per interval on
the event loop instead of a system call per message. Appends to the page cache take
microseconds and there is no fsync, so writing on the loop is cheaper than a thread hop. A
disk error never reaches the caller: it is counted in ``errors`` and logged once; what waits
beyond ``max_pending`` bytes is counted in ``dropped``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson

from .rejects import Rejected

_LOGGER = logging.getLogger(__name__)

MiB = 1024 * 1024


def _utf8(window: bytes, total: int) -> bool:
    """Whether the kept bytes, and the character the cut goes through, are UTF-8."""
    try:
        window.decode()
    except UnicodeDecodeError as err:
        return len(window) < total and err.reason == "unexpected end of data"
    return True


class DeadLetterFile:
    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = 10 * MiB,
        backups: int = 1,
        payload_limit: int = 4096,
        flush_delay: float = 1.0,
        batch_bytes: int = 64 * 1024,
        max_pending: int = 1 * MiB,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.payload_limit = payload_limit
        self.flush_delay = flush_delay
        self.batch_bytes = batch_bytes
        self.max_pending = max_pending
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._size: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.records = 0
        self.dropped = 0
        self.errors = 0
        self._error_logged = False

    def record(self, rejected: Rejected) -> None:
        """Queue one record; never raises (this is the RejectSink)."""
        try:
            line = self._line(rejected)
        except Exception:  # orjson refuses nothing we build, but a sink must not raise
            self._failed("could not encode a record")
            return
        if self._pending_bytes + len(line) > self.max_pending:
            self.dropped += 1
            return
        self._pending.append(line)
        self._pending_bytes += len(line)
        self.records += 1
        if self._pending_bytes >= self.batch_bytes:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a script, a test): write at once
                self.flush()
                return
            self._timer = loop.call_later(self.flush_delay, self.flush)

    def _line(self, rejected: Rejected) -> bytes:
        raw = rejected.payload
        truncated = len(raw) > self.payload_limit
        cut = raw[: self.payload_limit]
        text = cut.decode(errors="replace")
        utf8 = _utf8(raw[: self.payload_limit + 3], len(raw))
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "source": rejected.source,
            "kind": rejected.kind,
            "reason": rejected.reason[:1000],
            "topic": rejected.topic[:1000],
            "payload": text,
            "payload_bytes": len(raw),
            "truncated": truncated,
            "utf8": utf8,
        }
        try:
            return orjson.dumps(record) + b"\n"
        except orjson.JSONEncodeError:  # a lone surrogate in a reason or topic
            clean = {
                key: value.encode(errors="replace").decode() if isinstance(value, str) else value
                for key, value in record.items()
            }
            return orjson.dumps(clean) + b"\n"

    def flush(self) -> None:
        """Write what waits; the runner calls it at shutdown too."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        try:
            if self._size is None:
                self._size = self.path.stat().st_size if self.path.exists() else 0
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            with self.path.open("ab") as handle:
                handle.write(data)
            self._size += len(data)
        except OSError as err:
            self._size = None
            self._failed(f"{type(err).__name__}: {err}")

    def _rotate(self) -> None:
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._size = 0

    def _failed(self, why: str) -> None:
        self.errors += 1
        if not self._error_logged:
            self._error_logged = True
            _LOGGER.error(
                "dead-letter file %s cannot be written (%s); counting further failures",
                self.path,
                why,
            )

    def close(self) -> None:
        self.flush()
