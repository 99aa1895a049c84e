"""The fleet's statistics outlive HA restarts: saved in HA's ``Store``, restored at setup.

Saved every ``SAVE_INTERVAL``, when the entry unloads (a reload, a reconfigure) and when HA
stops (written at HA's final write, after the last messages). What a restore finds unusable
(a corrupt file, another format or version) is logged once and the fleet starts empty: a
lost statistic is never a reason for the entry not to start.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store

from ..const import DOMAIN
from ..core.sources.tickrmeter.health import REASON_LATENCY, REASON_TIMEOUTS, SymbolHealth
from ..core.sources.tickrmeter.names import valid_symbol
from ..core.sources.tickrmeter.state import export_state, restore_state
from ..core.sources.tickrmeter.tracker import FleetTracker

_LOGGER = logging.getLogger(__name__)

STORE_VERSION = 1
SAVE_INTERVAL = timedelta(minutes=5)
_REASONS = frozenset({REASON_TIMEOUTS, REASON_LATENCY})


def store_key(entry_id: str) -> str:
    return f"{DOMAIN}.tickrmeter.{entry_id}"


class FleetStore:
    """The tracker's state and which symbols were degraded (so a restart does not announce
    a degradation again that automations already saw)."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, tracker: FleetTracker, health: SymbolHealth
    ) -> None:
        self._hass = hass
        self._entry = entry
        self._tracker = tracker
        self._health = health
        self._store: Store[dict[str, Any]] = Store(hass, STORE_VERSION, store_key(entry.entry_id))

    def data(self) -> dict[str, Any]:
        return {
            "fleet": export_state(self._tracker),
            "degraded": {symbol: list(r) for symbol, r in self._health.degraded.items()},
        }

    async def async_restore(self) -> None:
        """Before the first message: what the store holds goes into the empty tracker."""
        title = self._entry.title
        try:
            stored = await self._store.async_load()
        except (HomeAssistantError, NotImplementedError, ValueError) as err:
            # NotImplementedError: a store written by a newer major version of this code.
            _LOGGER.warning("%s: saved statistics unreadable, starting afresh: %s", title, err)
            return
        if stored is None:
            return
        if type(stored) is not dict:
            _LOGGER.warning("%s: saved statistics are not ours, starting afresh", title)
            return
        result = restore_state(self._tracker, stored.get("fleet"))
        if result.ignored:
            _LOGGER.warning("%s: saved statistics ignored (%s)", title, result.ignored)
            return
        if result.skipped:
            _LOGGER.warning("%s: %d saved entries were unusable", title, result.skipped)
        degraded = stored.get("degraded")
        if type(degraded) is dict:
            for symbol, reasons in degraded.items():
                if (
                    symbol in self._tracker.correlator.symbols
                    and valid_symbol(symbol)
                    and type(reasons) is list
                    and reasons
                    and set(reasons) <= _REASONS
                ):
                    self._health.degraded[symbol] = tuple(reasons)
        _LOGGER.debug("%s: restored %d devices, %d symbols", title, result.devices, result.symbols)

    @callback
    def start(self) -> None:
        """Save periodically and at HA's stop; both end with the entry."""
        entry = self._entry

        @callback
        def save_soon(_now: object = None) -> None:
            # Outside stopping this writes at once (serialised off the event loop); while HA
            # stops it writes at the final write, with the state of that moment.
            self._store.async_delay_save(self.data, 0)

        @callback
        def on_stop(_event: Event) -> None:
            save_soon()

        entry.async_on_unload(async_track_time_interval(self._hass, save_soon, SAVE_INTERVAL))
        entry.async_on_unload(self._hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, on_stop))

    async def async_save(self) -> None:
        await self._store.async_save(self.data())

    @staticmethod
    async def async_remove(hass: HomeAssistant, entry: ConfigEntry) -> None:
        """The entry is deleted: so are its statistics."""
        await Store[dict[str, Any]](hass, STORE_VERSION, store_key(entry.entry_id)).async_remove()
