"""Runs each source as its own task and restarts it with backoff when it fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .backoff import Backoff
from .errors import describe_error
from .log_context import context_for
from .source import Emit, Source

_LOGGER = logging.getLogger(__name__)

# A source that ran this long before failing is considered healthy again: backoff resets.
HEALTHY_AFTER = 60.0


@dataclass(slots=True)
class Supervised:
    source: Source
    backoff: Backoff
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = None


class Supervisor:
    """Keeps one task per source alive; a crash in one never reaches another."""

    def __init__(
        self,
        emit: Emit,
        backoff_factory: Callable[[], Backoff] | None = None,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self._emit = emit
        self._backoff_factory = backoff_factory or (lambda: Backoff(initial=1.0, maximum=60.0))
        self._healthy_after = healthy_after
        self._entries: dict[str, Supervised] = {}

    @property
    def entries(self) -> dict[str, Supervised]:
        return self._entries

    def start(self, source: Source) -> None:
        if source.name in self._entries:
            raise ValueError(f"source {source.name!r} is already running")
        entry = Supervised(source, self._backoff_factory())
        # Everything the source logs, and every task it starts, is tagged with its name.
        entry.task = asyncio.create_task(
            self._keep_alive(entry),
            name=f"source:{source.name}",
            context=context_for(source=source.name),
        )
        self._entries[source.name] = entry

    async def _keep_alive(self, entry: Supervised) -> None:
        source = entry.source
        while True:
            started = time.monotonic()
            try:
                await source.run(self._emit)
                _LOGGER.info("source %s finished", source.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                text, name = describe_error(err), type(err).__name__
                entry.last_error = name if text == name else f"{name}: {text}"
                if time.monotonic() - started >= self._healthy_after:
                    entry.backoff.reset()
                delay = entry.backoff.next_delay()
                entry.restarts += 1
                _LOGGER.error(
                    "source %s failed (%s); restart %d in %.1f s",
                    source.name,
                    entry.last_error,
                    entry.restarts,
                    delay,
                    exc_info=_LOGGER.isEnabledFor(logging.DEBUG),
                )
            finally:
                with contextlib.suppress(Exception):
                    await source.close()
            await asyncio.sleep(delay)

    async def stop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is None or entry.task is None:
            return
        entry.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await entry.task

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(name) for name in list(self._entries)))
