"""Fleet Metrics: device fleets (OpenDTU, and more kinds to come) as Home Assistant devices."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant

from .const import CONF_KIND, KIND_OPENDTU
from .opendtu import OpenDtuRuntime, async_setup_opendtu

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]

type FleetMetricsRuntime = OpenDtuRuntime
type FleetMetricsConfigEntry = ConfigEntry[FleetMetricsRuntime]


async def async_setup_entry(hass: HomeAssistant, entry: FleetMetricsConfigEntry) -> bool:
    if entry.data[CONF_KIND] == KIND_OPENDTU:
        entry.runtime_data = await async_setup_opendtu(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: FleetMetricsConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def _async_options_updated(hass: HomeAssistant, entry: FleetMetricsConfigEntry) -> None:
    await hass.config_entries.async_reload(entry.entry_id)
