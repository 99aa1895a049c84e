"""Tasmota glue: a broker session and the core tracker behind a push coordinator."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from ..broker import async_broker_settings, async_check_broker
from ..const import CONF_DISCOVERY_PREFIX, DEFAULT_DISCOVERY_PREFIX
from ..core.mqtt.session import BrokerSession
from ..core.rejects import Rejects
from ..core.sources.tasmota.tracker import TasmotaTracker
from .coordinator import TasmotaCoordinator


@dataclass(slots=True)
class TasmotaRuntime:
    coordinator: TasmotaCoordinator


async def async_setup_tasmota(hass: HomeAssistant, entry: ConfigEntry) -> TasmotaRuntime:
    """TLS files are read off the event loop; one that does not load stops the entry."""
    settings = await async_broker_settings(hass, dict(entry.data))
    await async_check_broker(settings)
    session = BrokerSession(entry.title, settings)
    tracker = TasmotaTracker(
        entry.data.get(CONF_DISCOVERY_PREFIX, DEFAULT_DISCOVERY_PREFIX),
        rejects=Rejects(entry.title),
    )
    coordinator = TasmotaCoordinator(hass, entry, session, tracker)
    coordinator.start()
    return TasmotaRuntime(coordinator)
