"""Each host's online state: the one entity every host has from the moment it is added."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AgentsCoordinator
from .entity import AgentEntity, Candidate, add_entities_as_they_appear
from .readings import HostReadings


class HostOnlineSensor(AgentEntity, BinarySensorEntity):
    """On from an accepted hello until the grace period after the last connection ended.

    Available whenever the entry is loaded: saying "offline" is its job."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_translation_key = "host_online"

    def __init__(self, coordinator: AgentsCoordinator, host: str) -> None:
        super().__init__(coordinator, host, "online")

    @property
    def available(self) -> bool:
        return self.host in self.coordinator.data

    @property
    def is_on(self) -> bool:
        return self.coordinator.online(self.host)


def _binary_sensors(
    coordinator: AgentsCoordinator, host: str, readings: HostReadings
) -> Iterator[Candidate]:
    yield "online", partial(HostOnlineSensor, coordinator, host)


def async_setup_binary_sensors(
    coordinator: AgentsCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    return add_entities_as_they_appear(coordinator, async_add_entities, _binary_sensors)
