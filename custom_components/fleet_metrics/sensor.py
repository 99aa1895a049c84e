"""Sensor platform: each kind of entry adds its own sensors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import FleetMetricsConfigEntry
from .opendtu import OpenDtuRuntime
from .opendtu.sensor import async_setup_sensors as setup_opendtu
from .tasmota.sensor import async_setup_sensors as setup_tasmota


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    runtime = entry.runtime_data
    if isinstance(runtime, OpenDtuRuntime):
        entry.async_on_unload(setup_opendtu(runtime.coordinator, async_add_entities))
    else:
        entry.async_on_unload(setup_tasmota(runtime.coordinator, async_add_entities))
