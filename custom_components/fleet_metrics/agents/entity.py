"""One device per host, its entities available while the host is online."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import AgentsCoordinator, device_identifier
from .readings import HostReadings

# An entity a host's readings call for: its key (unique per host) and how to build it.
Candidate = tuple[str, Callable[[], Entity]]


class AgentEntity(CoordinatorEntity[AgentsCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, coordinator: AgentsCoordinator, host: str, key: str) -> None:
        super().__init__(coordinator)
        self.host = host
        self._attr_unique_id = f"agent_{host}_{key}"
        readings = coordinator.data.get(host)
        self._attr_device_info = DeviceInfo(
            identifiers={device_identifier(host)},
            name=host,
            manufacturer="Fleet Metrics agent",
            model=(readings.os if readings else "") or None,
            sw_version=coordinator.agent_version(host) or None,
        )

    @property
    def readings(self) -> HostReadings | None:
        return self.coordinator.data.get(self.host)

    @property
    def available(self) -> bool:
        return super().available and self.coordinator.online(self.host)


def add_entities_as_they_appear(
    coordinator: AgentsCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[AgentsCoordinator, str, HostReadings], Iterable[Candidate]],
) -> Callable[[], None]:
    """Add each host's entities as its readings bring them, under the host's subentry (so
    removing the host removes its device and entities). ``entities_for`` names the entities a
    host's readings call for by key; only the new ones are built."""
    known: dict[str, set[str]] = {}

    @callback
    def add_new() -> None:
        for host in [host for host in known if host not in coordinator.data]:
            del known[host]
        for host, readings in list(coordinator.data.items()):
            subentry_id = coordinator.subentry_ids.get(host)
            if subentry_id is None:
                continue
            seen = known.setdefault(host, set())
            new: list[Entity] = []
            for key, build in entities_for(coordinator, host, readings):
                if key not in seen:
                    seen.add(key)
                    new.append(build())
            if new:
                async_add_entities(new, config_subentry_id=subentry_id)

    add_new()
    return coordinator.async_add_listener(add_new)
