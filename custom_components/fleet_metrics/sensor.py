"""Sensor platform: each kind of entry adds its own sensors."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import FleetMetricsConfigEntry
from .agents import AgentsRuntime
from .agents.sensor import async_setup_sensors as setup_agents
from .opendtu import OpenDtuRuntime
from .opendtu.sensor import async_setup_sensors as setup_opendtu
from .platform_setup import KindSetup, setup_for_kind
from .tasmota import TasmotaRuntime
from .tasmota.sensor import async_setup_sensors as setup_tasmota
from .tickrmeter import TickrMeterRuntime
from .tickrmeter.sensor import async_setup_sensors as setup_tickrmeter

# Entities are pushed to, never polled: no limit on parallel updates.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    setups: dict[type, KindSetup] = {
        OpenDtuRuntime: setup_opendtu,
        TasmotaRuntime: setup_tasmota,
        TickrMeterRuntime: setup_tickrmeter,
        AgentsRuntime: setup_agents,
    }
    setup_for_kind(entry, async_add_entities, setups)
