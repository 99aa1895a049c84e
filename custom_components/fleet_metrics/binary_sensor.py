"""Binary sensor platform: each kind of entry adds its own binary sensors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import FleetMetricsConfigEntry
from .opendtu.binary_sensor import async_setup_binary_sensors


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    coordinator = entry.runtime_data.coordinator
    entry.async_on_unload(async_setup_binary_sensors(coordinator, async_add_entities))
