"""OpenDTU glue: the core collector behind a coordinator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.const import CONF_PASSWORD, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from ..const import CONF_WEBSOCKET
from ..core.rejects import Rejects
from ..core.sources.opendtu.client import OpenDtuClient
from ..core.sources.opendtu.collector import OpenDtuCollector
from .coordinator import OpenDtuCoordinator
from .entity import async_register_dtu

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry


@dataclass(slots=True)
class OpenDtuRuntime:
    coordinator: OpenDtuCoordinator


def client_from_config(hass: HomeAssistant, data: dict[str, str]) -> OpenDtuClient:
    """The client logs in as admin, OpenDTU's only user; a stored username is not used."""
    return OpenDtuClient(
        async_get_clientsession(hass), data[CONF_URL], password=data.get(CONF_PASSWORD) or None
    )


async def async_setup_opendtu(hass: HomeAssistant, entry: ConfigEntry) -> OpenDtuRuntime:
    collector = OpenDtuCollector(client_from_config(hass, dict(entry.data)), Rejects(entry.title))
    coordinator = OpenDtuCoordinator(hass, entry, collector)
    await coordinator.async_config_entry_first_refresh()
    async_register_dtu(hass, coordinator)
    if entry.options.get(CONF_WEBSOCKET, True):
        entry.async_create_background_task(
            hass, coordinator.async_follow_live(), f"fleet_metrics live {entry.title}"
        )
    return OpenDtuRuntime(coordinator)
