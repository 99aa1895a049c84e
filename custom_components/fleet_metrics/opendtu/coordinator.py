"""Polls the DTU on an interval and merges its live WebSocket pushes in between."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_SCAN_INTERVAL
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from ..const import DEFAULT_OPENDTU_SCAN_INTERVAL, DOMAIN, LIVE_UPDATE_MIN_INTERVAL
from ..core.backoff import Backoff
from ..core.sources.opendtu.client import InvalidAuth, OpenDtuError, UnsupportedFirmware
from ..core.sources.opendtu.collector import OpenDtuCollector
from ..core.sources.opendtu.models import DtuSnapshot, Inverter
from ..repairs import ISSUE_FIRMWARE, async_set_issue
from ..throttle import ThrottledNotifier

_LOGGER = logging.getLogger(__name__)

# A live connection that lasted this long resets the reconnect backoff.
LIVE_HEALTHY_AFTER = 60.0


class OpenDtuCoordinator(DataUpdateCoordinator[DtuSnapshot]):
    config_entry: ConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, collector: OpenDtuCollector
    ) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=timedelta(
                seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_OPENDTU_SCAN_INTERVAL)
            ),
        )
        self.collector = collector
        self.live_connected = False
        # Set once the DTU is in the device registry (entity.async_register_dtu).
        self.dtu_device_id = ""
        self._notify_live = ThrottledNotifier(
            hass, LIVE_UPDATE_MIN_INTERVAL, self.async_update_listeners
        )

    async def _async_update_data(self) -> DtuSnapshot:
        """Firmware without the API we read is a repair issue until an update succeeds."""
        try:
            snapshot = await self.collector.refresh()
        except UnsupportedFirmware as err:
            async_set_issue(self.hass, self.config_entry, ISSUE_FIRMWARE, True, {"error": str(err)})
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        except InvalidAuth as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except OpenDtuError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        async_set_issue(self.hass, self.config_entry, ISSUE_FIRMWARE, False)
        return snapshot

    async def async_follow_live(self) -> None:
        """Follow ``/livedata`` for as long as the entry is loaded, reconnecting with backoff."""
        backoff = Backoff(initial=5.0, maximum=300.0)
        try:
            while True:
                started = time.monotonic()
                try:
                    self.live_connected = True
                    await self.collector.stream(self._on_live)
                    reason = "closed by the DTU"
                except OpenDtuError as err:
                    reason = str(err)
                finally:
                    self.live_connected = False
                if time.monotonic() - started > LIVE_HEALTHY_AFTER:
                    backoff.reset()
                delay = backoff.next_delay()
                _LOGGER.debug(
                    "%s: live updates stopped (%s); retry in %.0f s", self.name, reason, delay
                )
                await asyncio.sleep(delay)
        finally:
            self._notify_live.cancel()

    @callback
    def _on_live(self, snapshot: DtuSnapshot, updated: list[Inverter]) -> None:
        # The poll timer stays as it is (async_set_updated_data would reset it and starve
        # the system data of refreshes); listeners hear of pushes at a throttled rate.
        self.data = snapshot
        self._notify_live()
