"""Keeps one DTU's snapshot current: full polls plus live WebSocket pushes.

Both runners use it: Home Assistant's coordinator and the standalone source.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import orjson

from .client import OpenDtuClient
from .models import DtuSnapshot, Hints, Inverter, LiveData, Totals
from .parser import PayloadError, parse_livedata

_LOGGER = logging.getLogger(__name__)

OnLiveUpdate = Callable[[DtuSnapshot, list[Inverter]], None]


class OpenDtuCollector:
    def __init__(self, client: OpenDtuClient) -> None:
        self.client = client
        self.snapshot: DtuSnapshot | None = None
        self.live_messages = 0
        self.parse_errors = 0

    async def refresh(self) -> DtuSnapshot:
        """Poll system, network and live data; fetch per-inverter detail where needed.

        Firmware since v24.2 sends only summaries in the overview, so each inverter whose
        channels are missing is asked for with ``?inv=``.
        """
        system = await self.client.system_status()
        network = (
            self.snapshot.network
            if self.snapshot and self.snapshot.network
            else await self.client.network_status()
        )
        overview = await self.client.livedata()
        inverters: dict[str, Inverter] = {}
        total, hints = overview.total, overview.hints
        for summary in overview.inverters:
            inverter = summary
            if not summary.has_channels:
                detail = await self.client.livedata(summary.serial)
                match = next((i for i in detail.inverters if i.serial == summary.serial), None)
                if match is not None:
                    inverter = match
                total = detail.total or total
                hints = detail.hints or hints
            inverters[inverter.serial] = inverter
        self.snapshot = DtuSnapshot(
            system=system,
            network=network,
            inverters=inverters,
            total=total or Totals(),
            hints=hints or Hints(),
        )
        return self.snapshot

    def apply_live(self, raw: str | bytes) -> list[Inverter]:
        """Merge one WebSocket push into the snapshot; returns the inverters it updated.

        Pushes that are not OpenDTU live data (the OnBattery fork's extra messages, say)
        update nothing; undecodable ones are counted.
        """
        self.live_messages += 1
        try:
            live = parse_livedata(orjson.loads(raw))
        except (orjson.JSONDecodeError, PayloadError) as err:
            self.parse_errors += 1
            _LOGGER.debug("skipping bad /livedata message: %s", err)
            return []
        if self.snapshot is None:
            return []
        return self._merge(live)

    def _merge(self, live: LiveData) -> list[Inverter]:
        assert self.snapshot is not None
        inverters = dict(self.snapshot.inverters)
        for inverter in live.inverters:
            inverters[inverter.serial] = inverter
        self.snapshot = dataclasses.replace(
            self.snapshot,
            inverters=inverters,
            total=live.total or self.snapshot.total,
            hints=live.hints or self.snapshot.hints,
        )
        return live.inverters

    async def stream(self, on_update: OnLiveUpdate) -> None:
        """Follow ``/livedata`` until it closes; raises the client's errors."""
        async for raw in self.client.live_messages():
            updated = self.apply_live(raw)
            if updated and self.snapshot is not None:
                on_update(self.snapshot, updated)
