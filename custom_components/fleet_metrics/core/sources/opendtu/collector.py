"""Keeps one DTU's snapshot current: full polls plus live WebSocket pushes.

Both runners use it: Home Assistant's coordinator and the standalone source. A push it
cannot read is counted in ``rejects`` and skipped: one bad frame never ends the stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import orjson

from ...rejects import Rejects
from .client import OpenDtuClient
from .models import DtuSnapshot, Hints, Inverter, LiveData, Totals
from .parser import PayloadError, parse_livedata

OnLiveUpdate = Callable[[DtuSnapshot, list[Inverter]], None]

# OpenDTU drives at most 10 inverters (16 on some boards); live pushes naming more serials
# than this are not kept, so a confused DTU cannot grow the snapshot without end.
MAX_INVERTERS = 64


class OpenDtuCollector:
    def __init__(self, client: OpenDtuClient, rejects: Rejects | None = None) -> None:
        self.client = client
        self.rejects = rejects if rejects is not None else Rejects(client.url)
        self.snapshot: DtuSnapshot | None = None
        self.live_messages = 0

    @property
    def parse_errors(self) -> int:
        """Answers and pushes skipped so far, whatever the reason."""
        return self.rejects.total

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
        if len(overview.inverters) > MAX_INVERTERS:
            reason = f"{len(overview.inverters)} inverters, {MAX_INVERTERS} kept"
            self.rejects.reject("cap", reason, "/api/livedata/status")
        for summary in overview.inverters[:MAX_INVERTERS]:
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
        payload = raw.encode(errors="replace") if isinstance(raw, str) else raw
        try:
            live = parse_livedata(orjson.loads(raw))
        except orjson.JSONDecodeError as err:
            self.rejects.reject("json", f"/livedata push is not JSON: {err}"[:300], "", payload)
            return []
        except PayloadError as err:
            self.rejects.reject("shape", f"/livedata push: {err}"[:300], "", payload)
            return []
        except Exception as err:  # the parser's safety net: never end the stream
            reason = f"/livedata push: {type(err).__name__}: {err}"[:300]
            self.rejects.reject("exception", reason, "", payload)
            return []
        if self.snapshot is None:
            return []
        return self._merge(live, payload)

    def _merge(self, live: LiveData, payload: bytes) -> list[Inverter]:
        assert self.snapshot is not None
        inverters = dict(self.snapshot.inverters)
        updated = []
        for inverter in live.inverters:
            if inverter.serial not in inverters and len(inverters) >= MAX_INVERTERS:
                reason = f"inverter {inverter.serial!r} not kept: {MAX_INVERTERS} is the cap"
                self.rejects.reject("cap", reason, "", payload)
                continue
            inverters[inverter.serial] = inverter
            updated.append(inverter)
        self.snapshot = dataclasses.replace(
            self.snapshot,
            inverters=inverters,
            total=live.total or self.snapshot.total,
            hints=live.hints or self.snapshot.hints,
        )
        return updated

    async def stream(
        self, on_update: OnLiveUpdate, on_message: Callable[[], None] | None = None
    ) -> None:
        """Follow ``/livedata`` until it closes; raises the client's errors.

        ``on_message`` runs after every push, used or not (the runner's counters)."""
        async for raw in self.client.live_messages():
            updated = self.apply_live(raw)
            if updated and self.snapshot is not None:
                on_update(self.snapshot, updated)
            if on_message is not None:
                on_message()
