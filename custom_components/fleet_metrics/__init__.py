"""Fleet Metrics: device fleets (OpenDTU, Tasmota, TickrMeter) and host agents in Home Assistant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.typing import ConfigType

from .agents import AgentsRuntime, async_remove_agents, async_setup_agents
from .agents.server import async_setup_agent_server
from .compat import reload_on_options_change
from .const import CONF_KIND, DOMAIN, KIND_AGENTS, KIND_OPENDTU, KIND_TASMOTA, KIND_TICKRMETER
from .opendtu import OpenDtuRuntime, async_setup_opendtu
from .opendtu.entity import inverter_identifier
from .repairs import ISSUE_BROKER_AUTH, ISSUE_FIRMWARE, issue_id
from .tasmota import TasmotaRuntime, async_setup_tasmota
from .tasmota.entity import device_identifier
from .tickrmeter import TickrMeterRuntime, async_remove_tickrmeter, async_setup_tickrmeter

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

type FleetMetricsRuntime = OpenDtuRuntime | TasmotaRuntime | TickrMeterRuntime | AgentsRuntime
type FleetMetricsConfigEntry = ConfigEntry[FleetMetricsRuntime]

SETUP: dict[str, Callable[[HomeAssistant, ConfigEntry], Awaitable[FleetMetricsRuntime]]] = {
    KIND_OPENDTU: async_setup_opendtu,
    KIND_TASMOTA: async_setup_tasmota,
    KIND_TICKRMETER: async_setup_tickrmeter,
    KIND_AGENTS: async_setup_agents,
}


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """The host agent endpoint is one per HA, whether a "Host agents" entry exists or not."""
    await async_setup_agent_server(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: FleetMetricsConfigEntry) -> bool:
    entry.runtime_data = await SETUP[entry.data[CONF_KIND]](hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if entry.data[CONF_KIND] != KIND_TICKRMETER:  # its options flow applies them in place
        reload_on_options_change(entry)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: FleetMetricsConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: FleetMetricsConfigEntry) -> None:
    """Deleting the "Host agents" entry forgets where its hosts' agents were; deleting a
    TickrMeter fleet deletes its saved statistics; no entry leaves a repair issue behind."""
    for kind in (ISSUE_BROKER_AUTH, ISSUE_FIRMWARE):
        ir.async_delete_issue(hass, DOMAIN, issue_id(kind, entry))
    if entry.data.get(CONF_KIND) == KIND_AGENTS:
        async_remove_agents(hass, entry)
    elif entry.data.get(CONF_KIND) == KIND_TICKRMETER:
        await async_remove_tickrmeter(hass, entry)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: FleetMetricsConfigEntry, device: DeviceEntry
) -> bool:
    """Tasmota devices can be removed; one that still reports comes back.

    An OpenDTU inverter can be removed once the DTU no longer lists it (the DTU and the
    inverters it lists follow the DTU); a TickrMeter fleet is the entry itself; a host goes
    with its subentry (which revokes it).
    """
    runtime = entry.runtime_data
    if isinstance(runtime, OpenDtuRuntime):
        snapshot = runtime.coordinator.data
        listed = {inverter_identifier(serial) for serial in snapshot.inverters}
        inverter = any(i[1].startswith(inverter_identifier("")[1]) for i in device.identifiers)
        return inverter and not listed & device.identifiers
    if not isinstance(runtime, TasmotaRuntime):
        return False
    tracker = runtime.coordinator.tracker
    for topic, state in list(tracker.devices.items()):
        if device_identifier(state) in device.identifiers:
            tracker.forget(topic)
    return all(identifier[0] == DOMAIN for identifier in device.identifiers)
