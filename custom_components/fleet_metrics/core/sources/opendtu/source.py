"""OpenDTU as a runner source: poll, follow the live WebSocket, fall back to polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, ClassVar

import aiohttp
import voluptuous as vol

from ...source import Emit, Source, SourceContext
from ...validators import http_url, positive_seconds
from .client import BadResponse, DtuBusy, OpenDtuClient, OpenDtuError
from .collector import OpenDtuCollector
from .models import DtuSnapshot, Inverter
from .samples import HELP, down_sample, snapshot_samples

_LOGGER = logging.getLogger(__name__)

SCHEMA: dict[Any, Any] = {
    vol.Required("url"): http_url,
    vol.Optional("username", default="admin"): str,
    vol.Optional("password", default=""): str,
    vol.Optional("interval", default=10.0): positive_seconds,
    vol.Optional("timeout", default=10.0): positive_seconds,
    vol.Optional("websocket", default=True): bool,
    # While the WebSocket is live, a full poll only refreshes system data and totals.
    vol.Optional("live_poll_interval", default=60.0): positive_seconds,
    vol.Optional("websocket_retry", default=300.0): positive_seconds,
}


class OpenDtuSource(Source):
    kind = "opendtu"
    HELP: ClassVar[dict[str, str]] = HELP

    def __init__(self, name: str, config: Any, context: SourceContext | None = None) -> None:
        super().__init__(name, config, context)
        self.connected: bool | None = None
        self._polls = 0

    async def run(self, emit: Emit) -> None:
        cfg = self.config
        async with aiohttp.ClientSession() as session:
            client = OpenDtuClient(
                session, cfg["url"], cfg["username"], cfg["password"] or None, cfg["timeout"]
            )
            collector = OpenDtuCollector(client, self.rejects)
            live: asyncio.Task[None] | None = None
            next_live_attempt = 0.0

            def on_live(snapshot: DtuSnapshot, updated: list[Inverter]) -> None:
                self._emit_all(emit, snapshot_samples(self.name, snapshot, updated))

            try:
                while True:
                    delay = await self._poll(collector, emit)
                    if (
                        cfg["websocket"]
                        and self.connected
                        and live is None
                        and time.monotonic() >= next_live_attempt
                    ):
                        live = asyncio.create_task(
                            collector.stream(on_live, lambda: self._count(collector))
                        )
                    if live is not None:
                        delay = max(delay, cfg["live_poll_interval"])
                        done, _ = await asyncio.wait({live}, timeout=delay)
                        if done:
                            self._log_live_end(live)
                            live = None
                            next_live_attempt = time.monotonic() + cfg["websocket_retry"]
                    else:
                        await asyncio.sleep(delay)
            finally:
                if live is not None:
                    live.cancel()
                    with contextlib.suppress(asyncio.CancelledError, OpenDtuError):
                        await live

    def _emit_all(self, emit: Emit, samples: list[Any]) -> None:
        for sample in samples:
            emit(sample)
        self.stats.emitted(len(samples))

    def _count(self, collector: OpenDtuCollector) -> None:
        self.stats.messages = self._polls + collector.live_messages
        self.stats.parse_errors = self.rejects.total

    async def _poll(self, collector: OpenDtuCollector, emit: Emit) -> float:
        """One full poll; returns how long to wait before the next one."""
        interval: float = self.config["interval"]
        self._polls += 1
        try:
            snapshot = await collector.refresh()
        except DtuBusy as err:
            _LOGGER.warning("%s: %s", self.name, err)
            return max(interval, err.retry_after or 60.0)
        except OpenDtuError as err:
            if self.connected is not False:
                _LOGGER.warning("%s: DTU unavailable: %s", self.name, err)
            if isinstance(err, BadResponse):
                self.rejects.reject(err.kind, str(err)[:300], collector.client.url)
                self._count(collector)
            self.connected = False
            emit(down_sample(self.name))
            return interval
        if self.connected is not True:
            _LOGGER.info(
                "%s: connected to %s (%s, %d inverters)",
                self.name,
                collector.client.url,
                snapshot.system.firmware or "unknown firmware",
                len(snapshot.inverters),
            )
        self.connected = True
        self._emit_all(emit, snapshot_samples(self.name, snapshot))
        self._count(collector)
        return interval

    def _log_live_end(self, live: asyncio.Task[None]) -> None:
        err = live.exception()
        cfg = self.config
        _LOGGER.warning(
            "%s: live WebSocket ended (%s); polling every %.0f s, next try in %.0f s",
            self.name,
            err or "closed by the DTU",
            cfg["interval"],
            cfg["websocket_retry"],
        )
