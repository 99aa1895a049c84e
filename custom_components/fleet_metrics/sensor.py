"""Sensor platform: each kind of entry adds its own sensors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import FleetMetricsConfigEntry
from .opendtu.sensor import async_setup_sensors as setup_opendtu
from .platform_setup import setup_for_kind
from .tasmota.sensor import async_setup_sensors as setup_tasmota


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    setup_for_kind(entry, async_add_entities, setup_opendtu, setup_tasmota)
