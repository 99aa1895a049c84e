"""Each host's online state (the one entity every host has from the moment it is added),
each ZFS pool's problem state, and whether each picked Proxmox guest runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AgentsCoordinator
from .entity import AgentEntity, Candidate, GuestEntity, add_entities_as_they_appear, pool_of
from .proxmox import Guest
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


class PoolProblemSensor(AgentEntity, BinarySensorEntity):
    """On while the pool is not ONLINE (DEGRADED, FAULTED...) or has read, write or
    checksum errors; its health and errors are attributes."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM
    _attr_translation_key = "pool_problem"

    def __init__(self, coordinator: AgentsCoordinator, host: str, pool: str) -> None:
        super().__init__(coordinator, host, f"pool_problem_{pool}")
        self._pool = pool
        self._attr_translation_placeholders = {"pool": pool}

    @property
    def available(self) -> bool:
        """Unavailable once zpool no longer lists the pool (exported, destroyed)."""
        return super().available and pool_of(self.readings, self._pool) is not None

    @property
    def is_on(self) -> bool | None:
        pool = pool_of(self.readings, self._pool)
        return pool.problem if pool else None

    @property
    def extra_state_attributes(self) -> dict[str, str | int | None]:
        pool = pool_of(self.readings, self._pool)
        if pool is None:
            return {}
        return {"health": pool.health, "errors": pool.errors}


class GuestRunningSensor(GuestEntity, BinarySensorEntity):
    _attr_device_class = BinarySensorDeviceClass.RUNNING
    _attr_translation_key = "guest_running"

    def __init__(self, coordinator: AgentsCoordinator, host: str, guest: Guest) -> None:
        super().__init__(coordinator, host, guest, "running")

    @property
    def is_on(self) -> bool | None:
        guest = self.guest
        return guest.running if guest else None


def _binary_sensors(
    coordinator: AgentsCoordinator, host: str, readings: HostReadings
) -> Iterator[Candidate]:
    yield "online", partial(HostOnlineSensor, coordinator, host)
    for pool in readings.proxmox.pools:
        yield f"pool_problem_{pool}", partial(PoolProblemSensor, coordinator, host, pool)
    for guest_id, guest in readings.proxmox.guests.items():
        if coordinator.shows_guest(host, guest_id):
            yield f"guest/{guest_id}/running", partial(GuestRunningSensor, coordinator, host, guest)


def async_setup_binary_sensors(
    coordinator: AgentsCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    return add_entities_as_they_appear(coordinator, async_add_entities, _binary_sensors)
