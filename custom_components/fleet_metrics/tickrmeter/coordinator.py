"""Messages go straight into the core tracker; entities see a snapshot every few seconds."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from ..const import EVENT_SYMBOL_DEGRADED, EVENT_SYMBOL_RECOVERED
from ..core.mqtt.session import BrokerSession, ConnectionState
from ..core.sources.tickrmeter.health import SymbolHealth, Transition
from ..core.sources.tickrmeter.snapshot import FleetSnapshot, SnapshotTaker
from ..repairs import async_broker_state_changed
from .options import interval_from_options, symbols_from_options, thresholds_from_options

_LOGGER = logging.getLogger(__name__)


class TickrMeterCoordinator(DataUpdateCoordinator[FleetSnapshot]):
    """The update interval is the throttle: state is written once per interval, however
    many messages arrived, and each message costs only the tracker's work. Whatever a
    payload makes the tracker raise is counted in ``rejects``, never the end of the entry."""

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        session: BrokerSession,
        snapshots: SnapshotTaker,
        health: SymbolHealth,
        interval: timedelta,
    ) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=entry.title,  # "TickrMeter fleet" unless renamed: the kind is in it
            update_interval=interval,
        )
        self.session = session
        self.snapshots = snapshots
        self.tracker = snapshots.tracker
        self.health = health
        self.rejects = self.tracker.rejects
        # Set by the sensor platform: shows sensors for exactly these symbols.
        self.show_symbols: Callable[[list[str]], None] | None = None

    async def async_apply_options(self, options: Mapping[str, Any]) -> None:
        """New thresholds, symbols and interval take effect on the running fleet: no
        reload, so nothing the tracker knows (devices, counters, windows) is lost."""
        self.health.thresholds = thresholds_from_options(options)
        self.update_interval = interval_from_options(options)
        if self.show_symbols is not None:
            self.show_symbols(symbols_from_options(options))
        await self.async_refresh()  # at once, and the next refresh on the new interval

    @callback
    def start(self) -> None:
        handler = self.rejects.guard(self._on_message)
        for topic_filter in self.tracker.topics.filters():
            self.config_entry.async_on_unload(self.session.subscribe(topic_filter, handler))
        self.session.on_state_change = self._on_state_change
        self.config_entry.async_create_background_task(
            self.hass, self.session.run(), f"fleet_metrics broker {self.config_entry.title}"
        )

    @callback
    def _on_message(self, topic: str, payload: bytes) -> None:
        self.tracker.handle(topic, payload)

    async def _async_update_data(self) -> FleetSnapshot:
        snapshot = self.snapshots.take()
        for transition in self.health.update(snapshot):
            self._fire(transition)
        return snapshot

    @callback
    def _fire(self, transition: Transition) -> None:
        thresholds = self.health.thresholds
        event = EVENT_SYMBOL_DEGRADED if transition.degraded else EVENT_SYMBOL_RECOVERED
        if transition.degraded:
            _LOGGER.warning(
                "%s: symbol %s degraded (%s)",
                self.config_entry.title,
                transition.symbol,
                ", ".join(transition.reasons),
            )
        self.hass.bus.async_fire(
            event,
            {
                "entry_id": self.config_entry.entry_id,
                "symbol": transition.symbol,
                "reasons": list(transition.reasons),
                "timeout_ratio": transition.timeout_ratio,
                "p95_latency_seconds": transition.p95_seconds,
                "timeout_ratio_threshold": thresholds.timeout_ratio,
                "p95_latency_threshold_seconds": thresholds.p95_seconds,
            },
        )

    @callback
    def _on_state_change(self, state: ConnectionState) -> None:
        """Refused credentials raise the repair issue (``repairs``); listeners re-read the
        connection state."""
        async_broker_state_changed(self.hass, self.config_entry, state)
        self.async_update_listeners()
