"""The host agent: collector tiers on their intervals, one outbox and client per server.

Each tier (fast, medium, slow) runs its collectors in a worker thread (psutil and statvfs
block; a hung NFS mount must not stop the event loop) and turns one run into one batch that
every server's outbox numbers on its own. A tier whose previous run has not finished skips its
turn, so a stuck collector never piles up threads.

``boot_id`` is a random UUID per agent start, not the kernel's boot id: seq numbers live in
memory and start at 1 with every start, so a restarted agent on a host that did not reboot
must not look like the same stream to the server, which would skip its first batches as
already seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Final

from ..sample import Sample
from .client import AgentClient, ClientTiming
from .collectors import TIERS, CollectorRun, Tier, build
from .config import AgentConfig
from .outbox import Outbox
from .protocol import SERIES, Hello

_LOGGER = logging.getLogger(__name__)

CAPABILITIES: Final = ("split_batches", SERIES)


def new_boot_id() -> str:
    return str(uuid.uuid4())


def collect(runs: list[CollectorRun], time_ns: int) -> list[Sample]:
    """One tier's readings, each collector's own ``collector`` sample included."""
    samples: list[Sample] = []
    for run in runs:
        samples += run(time_ns)
    return samples


class HostAgent:
    """Everything one ``fleet-metrics agent`` process runs."""

    def __init__(
        self,
        config: AgentConfig,
        agent_version: str,
        *,
        boot_id: str | None = None,
        timing: Callable[[], ClientTiming] = ClientTiming,
    ) -> None:
        self.config = config
        self.boot_id = boot_id or new_boot_id()
        self.hello = Hello(config.host, agent_version, self.boot_id, CAPABILITIES)
        self.tiers = build(dict(config.collectors), config.settings)
        self.outboxes = [Outbox(config.buffer_batches, server.name) for server in config.servers]
        self.clients: list[AgentClient] = []
        self.skipped: dict[Tier, int] = dict.fromkeys(TIERS, 0)
        self._timing = timing
        self._busy: set[Tier] = set()
        self._runs: set[asyncio.Task[None]] = set()  # strong references until done

    def publish(self, time_s: float, samples: list[Sample]) -> None:
        """Hand one tier's run to every server's outbox."""
        for outbox in self.outboxes:
            outbox.add(time_s, samples)
        for client in self.clients:
            client.wake()

    async def run_tier(self, tier: Tier) -> None:
        """Collect ``tier`` once in a worker thread and publish it."""
        if tier in self._busy:
            self.skipped[tier] += 1
            _LOGGER.warning("the %s collectors are still running; skipping this turn", tier)
            return
        self._busy.add(tier)
        try:
            now = time.time()
            samples = await asyncio.to_thread(collect, self.tiers[tier], int(now * 1e9))
        finally:
            self._busy.discard(tier)
        self.publish(now, samples)

    async def _schedule(self, tier: Tier, interval: float) -> None:
        """Run ``tier`` now and then every ``interval`` seconds on a fixed grid."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        turn = 0
        while True:
            task = asyncio.create_task(self.run_tier(tier))
            self._runs.add(task)
            task.add_done_callback(self._done)
            turn = max(turn + 1, int((loop.time() - start) / interval) + 1)
            await asyncio.sleep(max(0.0, start + turn * interval - loop.time()))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._runs.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("a collector tier failed", exc_info=err)

    async def run(self) -> int:
        """Until cancelled (0 is never returned then); 1 when every server refused for good."""
        intervals: Mapping[Tier, float] = self.config.intervals
        self.clients = [
            AgentClient(server, outbox, self.hello, self._timing())
            for server, outbox in zip(self.config.servers, self.outboxes, strict=True)
        ]
        _LOGGER.info(
            "agent for host %s: %d collectors, reporting to %s",
            self.config.host,
            sum(len(runs) for runs in self.tiers.values()),
            ", ".join(server.name for server in self.config.servers),
        )
        schedules = [
            asyncio.create_task(self._schedule(tier, intervals[tier]))
            for tier in TIERS
            if self.tiers[tier]
        ]
        try:
            await asyncio.gather(*(client.run() for client in self.clients))
        finally:
            for task in (*schedules, *self._runs):
                task.cancel()
            await asyncio.gather(*schedules, *self._runs, return_exceptions=True)
        return 1
