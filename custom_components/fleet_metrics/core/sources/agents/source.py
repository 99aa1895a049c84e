"""The runner's ``agents`` source: the hub, fed by the SQLite store, behind ``/api/agent``.

The source owns the hub for as long as it runs: it loads the registered hosts, notices the
``hosts`` command's changes through ``PRAGMA data_version`` every ``poll_interval`` (so a
removed or rotated host is cut off within about a second). ``exposition`` is what the
runner's ``/metrics`` shows of the hosts (readings and status, mapped when scraped).

Nothing is acked before it is durable (``checkpoint``): the hub's state is snapshotted,
``flush_output`` writes every line the outputs hold (so the batches' lines are out of the
process), then the progress (boot_id, last seq, last seen) is saved in one transaction, and
only then the agents get their acks. A runner killed at any moment has therefore saved
every batch it acked, and an agent keeps every batch that might not have been written. What
a kill can still do: land between the output write and the SQLite commit (a few ms), in
which case those batches are written again after the restart, as identical points (same
series, same timestamp), which InfluxDB stores once. When the output's buffer overflowed
(it dropped lines of batches not yet acked), the hosts of that checkpoint are rewound to what
is durable and disconnected, so that their agents send those batches again. The runner
sets ``flush_output`` and calls ``checkpoint`` after each of its flushes; without it (tests,
Home Assistant) the source checkpoints every ``poll_interval``. Saves go to a worker
thread: the ``hosts`` command may hold the database's write lock for a moment, and the
event loop must not wait.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Literal

import voluptuous as vol

from ...agent.protocol import Batch
from ...source import Emit, Source, SourceContext
from ...validators import integer, positive_seconds
from .exposition import HostsExposition
from .hub import DEFAULT_GRACE, GOING_AWAY, HostState, Hub, HubLimits
from .naming import HELP
from .store import HostRecord, HostStore
from .tokens import FailureLimiter

_LOGGER = logging.getLogger(__name__)

# What became of the lines an output held: all out, some kept for a retry, some dropped.
FlushOutcome = Literal["written", "pending", "lost"]

DEFAULT_DATABASE = "fleet-metrics-agents.sqlite"

SCHEMA: dict[Any, Any] = {
    # Relative to the working directory, for the runner and the ``hosts`` command alike.
    vol.Optional("database", default=DEFAULT_DATABASE): vol.All(str, vol.Length(min=1)),
    vol.Optional("grace", default=DEFAULT_GRACE): positive_seconds,
    vol.Optional("max_hosts", default=10_000): integer(1),
    vol.Optional("max_samples_per_batch", default=5_000): integer(1),
    vol.Optional("max_series_per_host", default=10_000): integer(1),
    # Lines applied between two flushes before the agents are paused (backpressure); keep
    # it below [line_protocol] max_buffer, which drops lines (and so rewinds the agents).
    vol.Optional("max_pending_lines", default=50_000): integer(1),
    vol.Optional("failed_logins_per_minute", default=10): integer(1),
    vol.Optional("poll_interval", default=1.0): positive_seconds,
    # Accepted for configs written before the status was rendered when scraped; unused.
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
        self._checkpoint_lock = asyncio.Lock()
        # Set by the runner: flush every output and say what became of the buffered lines.
        self.flush_output: Callable[[], Awaitable[FlushOutcome]] | None = None
        # Set by the runner: the line protocol output's ``add_lines`` (the hub encodes).
        self.write_lines: Callable[[list[str]], None] | None = None
        self.checkpoints_failed = 0
        self.hub = Hub(
            limits=HubLimits(
                grace=config["grace"],
                max_hosts=config["max_hosts"],
                max_samples_per_batch=config["max_samples_per_batch"],
                max_series_per_host=config["max_series_per_host"],
                max_pending_lines=config["max_pending_lines"],
            ),
            reload_hosts=self._read_hosts,
            rejects=self.rejects,
            limiter=FailureLimiter(limit=config["failed_logins_per_minute"], window=60.0),
            deferred_acks=True,
        )
        self.hub.subscribe(on_batch=self._count_batch)
        self.hub.on_throttled = self._checkpoint_soon
        self._early_checkpoint: asyncio.Task[None] | None = None
        self.exposition = HostsExposition(self.hub)
        self.ready = False

    def _count_batch(self, state: HostState, batch: Batch) -> None:
        self.stats.messages += 1
        self.stats.emitted(len(batch.readings))  # not .samples: no Sample is made

    def _checkpoint_soon(self) -> None:
        """The hub is throttled (the agents wait): checkpoint now, not at the next tick."""
        if self._early_checkpoint is None or self._early_checkpoint.done():
            self._early_checkpoint = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            await self.checkpoint()
        except Exception as err:  # the next tick tries again
            _LOGGER.warning("agents: checkpoint failed: %s", err)

    def _read_hosts(self) -> Mapping[str, HostRecord]:
        """The hosts as stored (a WAL read: it never waits for a writer)."""
        if self._store is None:
            return {}
        with self._store_lock:
            return self._store.hosts()

    async def run(self, emit: Emit) -> None:
        self._store = await asyncio.to_thread(HostStore, self.config["database"])
        self.hub.reopen()  # after a restart by the supervisor
        self.hub.set_emit(emit, self.write_lines)
        version = self._store.data_version()
        self.hub.set_hosts(self._read_hosts())
        self.ready = True
        _LOGGER.info(
            "agents: %d hosts registered in %s", len(self.hub.hosts), self.config["database"]
        )
        while True:
            await asyncio.sleep(self.config["poll_interval"])
            with self._store_lock:
                current = self._store.data_version()
            if current != version:
                version = current
                self.hub.set_hosts(self._read_hosts())
            if self.flush_output is None:
                await self.checkpoint()
            self.stats.parse_errors = self.rejects.total

    async def checkpoint(self) -> None:
        """Make what the hub applied durable, then ack it (see the module docstring).

        The snapshot comes first: a batch applied during the flush is in the next one.
        """
        async with self._checkpoint_lock:
            store = self._store
            if store is None:
                return
            checkpoint = self.hub.checkpoint()
            if not checkpoint.marks:
                if self.flush_output is not None:
                    await self.flush_output()
                return
            try:
                outcome = "written" if self.flush_output is None else await self.flush_output()
                durable = outcome == "written"
                if durable:

                    def save() -> None:
                        with self._store_lock:
                            store.save_progress(checkpoint.progress)

                    await asyncio.to_thread(save)
            except BaseException:
                self.hub.abandoned(checkpoint)
                self.checkpoints_failed += 1
                raise
            if durable:
                self.hub.committed(checkpoint)
                return
            self.checkpoints_failed += 1
            if outcome == "lost":
                # The output dropped lines of unacked batches: the agents send them again.
                self.hub.rewind(checkpoint)
            else:
                self.hub.abandoned(checkpoint)

    async def close(self) -> None:
        """Stop applying, make the last batches durable, close the database."""
        self.ready = False
        self.hub.close_all(GOING_AWAY, "server stopping")
        if self._store is not None:
            try:
                await self.checkpoint()
            except Exception as err:  # the agents send these batches again
                _LOGGER.warning("agents: last progress not saved: %s", err)
            with self._store_lock:
                self._store.close()
            self._store = None
