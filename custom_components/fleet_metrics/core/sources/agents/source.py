"""The runner's ``agents`` source: the hub, fed by the SQLite store, behind ``/api/agent``.

The source owns the hub for as long as it runs: it loads the registered hosts, notices the
``hosts`` command's changes through ``PRAGMA data_version`` every ``poll_interval`` (so a
removed or rotated host is cut off within about a second), saves what the hub reached
(boot_id, last seq, last seen) on the same beat and when it stops, and re-emits every
host's ``fleet_agent_*`` status every ``status_interval`` so that no status series ever
reaches the Prometheus TTL. Writes go to a worker thread: the ``hosts`` command may hold the
database's write lock for a moment, and the event loop must not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import voluptuous as vol

from ...agent.protocol import Batch
from ...source import Emit, Source, SourceContext
from ...validators import integer, positive_seconds
from .hub import DEFAULT_GRACE, GOING_AWAY, HostState, Hub, HubLimits
from .naming import HELP
from .store import HostRecord, HostStore
from .tokens import FailureLimiter

_LOGGER = logging.getLogger(__name__)

DEFAULT_DATABASE = "fleet-metrics-agents.sqlite"

SCHEMA: dict[Any, Any] = {
    # Relative to the working directory, for the runner and the ``hosts`` command alike.
    vol.Optional("database", default=DEFAULT_DATABASE): vol.All(str, vol.Length(min=1)),
    vol.Optional("grace", default=DEFAULT_GRACE): positive_seconds,
    vol.Optional("max_hosts", default=10_000): integer(1),
    vol.Optional("max_samples_per_batch", default=5_000): integer(1),
    vol.Optional("max_series_per_host", default=10_000): integer(1),
    vol.Optional("failed_logins_per_minute", default=10): integer(1),
    vol.Optional("poll_interval", default=1.0): positive_seconds,
    vol.Optional("status_interval", default=15.0): positive_seconds,
}


class AgentsSource(Source):
    kind = "agents"
    HELP: ClassVar[Mapping[str, str]] = HELP

    def __init__(
        self, name: str, config: Mapping[str, Any], context: SourceContext | None = None
    ) -> None:
        super().__init__(name, config, context)
        self._store: HostStore | None = None
        self._store_lock = threading.Lock()
        self.hub = Hub(
            limits=HubLimits(
                grace=config["grace"],
                max_hosts=config["max_hosts"],
                max_samples_per_batch=config["max_samples_per_batch"],
                max_series_per_host=config["max_series_per_host"],
            ),
            reload_hosts=self._read_hosts,
            rejects=self.rejects,
            limiter=FailureLimiter(limit=config["failed_logins_per_minute"], window=60.0),
        )
        self.hub.subscribe(on_batch=self._count_batch)
        self.ready = False

    def _count_batch(self, state: HostState, batch: Batch) -> None:
        self.stats.messages += 1
        self.stats.emitted(len(batch.samples))

    def _read_hosts(self) -> Mapping[str, HostRecord]:
        """The hosts as stored (a WAL read: it never waits for a writer)."""
        if self._store is None:
            return {}
        with self._store_lock:
            return self._store.hosts()

    async def run(self, emit: Emit) -> None:
        self._store = await asyncio.to_thread(HostStore, self.config["database"])
        self.hub.set_emit(emit)
        version = self._store.data_version()
        self.hub.set_hosts(self._read_hosts())
        self.ready = True
        _LOGGER.info(
            "agents: %d hosts registered in %s", len(self.hub.hosts), self.config["database"]
        )
        loop = asyncio.get_running_loop()
        next_status = loop.time()
        while True:
            if loop.time() >= next_status:
                for sample in self.hub.status_samples():
                    emit(sample)
                next_status = loop.time() + self.config["status_interval"]
            await asyncio.sleep(self.config["poll_interval"])
            with self._store_lock:
                current = self._store.data_version()
            if current != version:
                version = current
                self.hub.set_hosts(self._read_hosts())
            await self._save()
            self.stats.parse_errors = self.rejects.total

    async def _save(self) -> None:
        progress = self.hub.progress()
        store = self._store
        if progress and store is not None:

            def save() -> None:
                with self._store_lock:
                    store.save_progress(progress)

            await asyncio.to_thread(save)

    async def close(self) -> None:
        self.ready = False
        self.hub.close_all(GOING_AWAY, "server stopping")
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._save()
            with self._store_lock:
                self._store.close()
            self._store = None
