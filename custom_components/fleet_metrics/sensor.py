"""Sensor platform: each kind of entry adds its own sensors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import FleetMetricsConfigEntry
from .opendtu.sensor import async_setup_sensors


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    entry.async_on_unload(async_setup_sensors(entry.runtime_data.coordinator, async_add_entities))
