"""Host agents glue: the "Host agents" entry, its hosts (subentries) and their entities.

The hub and the endpoint belong to HA as a whole (``server.py``, set up in ``async_setup``);
the entry gives the hub its hosts and turns what they send into devices, entities and events.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .coordinator import AgentsConfigEntry, AgentsCoordinator
from .server import AGENT_SERVER, async_setup_agent_server

__all__ = ["AgentsConfigEntry", "AgentsRuntime", "async_remove_agents", "async_setup_agents"]


@dataclass(slots=True)
class AgentsRuntime:
    coordinator: AgentsCoordinator


async def async_setup_agents(hass: HomeAssistant, entry: ConfigEntry) -> AgentsRuntime:
    """Register the entry's hosts with the hub and follow them."""
    server = await async_setup_agent_server(hass)
    coordinator = AgentsCoordinator(hass, entry, server)
    coordinator.start()
    return AgentsRuntime(coordinator)


def async_remove_agents(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """The entry is deleted: its hosts' resume points go with it."""
    if (server := hass.data.get(AGENT_SERVER)) is not None:
        server.forget_all()
