"""Pushes what the broker session brings into the tracker, and tells entities (throttled)."""

from __future__ import annotations

import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from ..const import LIVE_UPDATE_MIN_INTERVAL
from ..core.mqtt.session import BrokerSession, ConnectionState
from ..core.sources.tasmota.topics import FullTopic
from ..core.sources.tasmota.tracker import DeviceState, TasmotaTracker
from ..repairs import async_broker_state_changed
from ..throttle import ThrottledNotifier

_LOGGER = logging.getLogger(__name__)


class TasmotaCoordinator(DataUpdateCoordinator[dict[str, DeviceState]]):
    """No polling: data is the tracker's device table, updated by every message.

    Every message goes through ``rejects.guard``: whatever a payload makes the tracker
    raise is counted (and shown in diagnostics), never the end of the entry.
    """

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        session: BrokerSession,
        tracker: TasmotaTracker,
    ) -> None:
        super().__init__(hass, _LOGGER, config_entry=entry, name=entry.title)
        self.session = session
        self.tracker = tracker
        self.rejects = tracker.rejects
        self._handler = self.rejects.guard(self._on_message)
        self.data = tracker.devices
        self._notify = ThrottledNotifier(
            hass, LIVE_UPDATE_MIN_INTERVAL, self.async_update_listeners
        )

    @callback
    def start(self) -> None:
        for topic_filter in self.tracker.filters():
            self.config_entry.async_on_unload(self.session.subscribe(topic_filter, self._handler))
        self.tracker.set_layout_listener(self._subscribe_layout)
        self.session.on_state_change = self._on_state_change
        self.config_entry.async_create_background_task(
            self.hass, self.session.run(), f"fleet_metrics broker {self.config_entry.title}"
        )
        self.config_entry.async_on_unload(self._notify.cancel)

    @callback
    def _subscribe_layout(self, layout: FullTopic) -> None:
        for topic_filter in layout.filters():
            self.config_entry.async_on_unload(self.session.subscribe(topic_filter, self._handler))

    @callback
    def _on_message(self, topic: str, payload: bytes) -> None:
        self.tracker.handle(topic, payload)
        self._notify()

    @callback
    def _on_state_change(self, state: ConnectionState) -> None:
        """Refused credentials raise the repair issue (``repairs``); entities follow the
        connection, so a lost broker shows them unavailable."""
        async_broker_state_changed(self.hass, self.config_entry, state)
        self.last_update_success = state is ConnectionState.CONNECTED
        self.async_update_listeners()
