"""Proxmox hosts in Home Assistant: a real agent client sends ZFS and PVE samples (shaped as
the agent's zfs, pve and pve_backup collectors send them) through HA's HTTP server; the
test reads the entities, devices, events and the guest pick as a user would meet them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from custom_components.fleet_metrics.agents.coordinator import CONF_GUESTS
from custom_components.fleet_metrics.agents.proxmox import (
    EVENT_GUEST_STOPPED,
    EVENT_POOL_DEGRADED,
)
from custom_components.fleet_metrics.agents.sensor import (
    GUEST_SENSORS,
    HOST_SENSORS,
    KEYED,
    POOL_SENSORS,
)
from custom_components.fleet_metrics.const import DOMAIN, SUBENTRY_HOST
from custom_components.fleet_metrics.core.sample import FieldValue, Sample

from .conftest import HOST, T0, AgentRig, host_samples, until

COMPONENT = Path(__file__).parents[3] / "custom_components" / "fleet_metrics"


def proxmox_samples(step: int, web_status: str = "running", tank: str = "ONLINE") -> list[Sample]:
    """The zfs, pve and pve_backup collections at ``T0 + 30 * step``: pools rpool and tank,
    ARC 4 GiB, guests qemu/100 (web) and lxc/101 (dns, stopped), one storage, backups,
    7 pending updates."""
    ns = int((T0 + 30 * step) * 1e9)

    def pool(name: str, health: str, errors: int) -> Sample:
        fields: dict[str, FieldValue] = {
            "size_bytes": 10**12, "allocated_bytes": 4 * 10**11, "free_bytes": 6 * 10**11,
            "fragmentation_ratio": 0.07, "capacity_ratio": 0.4, "dedup_ratio": 1.0,
            "health": health, "errors": errors, "scan": "scrub", "scan_state": "finished",
            "scrub_last_end_timestamp_seconds": T0 - 3600, "stale": 0,
        }  # fmt: skip
        return Sample("zfs_pool", {"pool": name}, fields, ns)

    def guest(gid: str, name: str, kind: str, status: str) -> Sample:
        running = status == "running"
        fields: dict[str, FieldValue] = {
            "up": int(running), "status": status, "name": name, "type": kind, "tags": "",
            "cpu_ratio": 0.125 if running else 0.0, "cpus": 2,
            "memory_usage_bytes": 2**30 if running else 0, "memory_size_bytes": 4 * 2**30,
            "disk_usage_bytes": 3 * 2**30, "disk_size_bytes": 8 * 2**30,
            "uptime_seconds": 100 if running else 0, "stale": 0,
        }  # fmt: skip
        return Sample("pve_guest", {"id": gid}, fields, ns)

    web_running = web_status == "running"
    return [
        pool("rpool", "ONLINE", 0),
        pool("tank", tank, 0 if tank == "ONLINE" else 2),
        Sample("zfs_arc", {}, {"size_bytes": 4 * 2**30, "target_bytes": 6 * 2**30}, ns),
        guest("qemu/100", "web", "qemu", web_status),
        guest("lxc/101", "dns", "lxc", "stopped"),
        Sample("pve_guests", {"status": "running"}, {"count": 1 if web_running else 0}, ns),
        Sample("pve_guests", {"status": "stopped"}, {"count": 1 if web_running else 2}, ns),
        Sample(
            "pve_storage",
            {"storage": "local-zfs", "type": "zfspool"},
            {"active": 1, "enabled": 1, "usage_bytes": 25, "size_bytes": 100, "stale": 0},
            ns,
        ),
        Sample(
            "pve_backup",
            {"id": "qemu/100"},
            {"last_success_timestamp_seconds": T0 - 86_400, "not_backed_up": 0},
            ns,
        ),
        Sample("pve_updates", {}, {"pending": 7}, ns),
    ]


def send(rig_: Any, agent: Any, step: int, **kwargs: str) -> None:
    agent.outbox.add(T0 + 30 * step, host_samples(step) + proxmox_samples(step, **kwargs))
    agent.client.wake()


def state_of(hass: HomeAssistant, domain: str, unique_id: str) -> str | None:
    entity_id = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    if entity_id is None:
        return None
    state = hass.states.get(entity_id)
    return state.state if state else None


async def test_pools_guests_storage_and_updates_become_entities(rig: AgentRig) -> None:
    hass = rig.hass
    agent = rig.start_agent()
    for step in (0, 1):
        send(rig, agent, step)
    await until(hass, lambda: state_of(hass, "sensor", "agent_pve1_updates_pending") == "7")
    host = f"agent_{HOST}"
    expected = {
        ("binary_sensor", f"{host}_pool_problem_rpool"): "off",
        ("binary_sensor", f"{host}_pool_problem_tank"): "off",
        ("sensor", f"{host}_pool_capacity_rpool"): "40.0",
        ("sensor", f"{host}_pool_fragmentation_tank"): "7.0",
        ("sensor", f"{host}_pool_last_scrub_rpool"): "2025-12-31T23:00:00+00:00",
        ("sensor", f"{host}_arc_size"): "4.0",  # GiB, as suggested
        # used = 16 - 4 (available) = 12 GiB, less 4 GiB of ARC: 8 of 16 GiB
        ("sensor", f"{host}_memory_used_without_arc"): "50.0",
        ("sensor", f"{host}_memory_used"): "75.0",
        ("sensor", f"{host}_guests_running"): "1",
        ("sensor", f"{host}_guests_stopped"): "1",
        ("sensor", f"{host}_storage_used_local-zfs"): "25.0",
        ("binary_sensor", f"{host}/guest/qemu/100/running"): "on",
        ("binary_sensor", f"{host}/guest/lxc/101/running"): "off",
        ("sensor", f"{host}/guest/qemu/100/cpu_usage"): "12.5",
        ("sensor", f"{host}/guest/qemu/100/memory_used"): "1.0",
        ("sensor", f"{host}/guest/qemu/100/disk_used"): "3.0",
        ("sensor", f"{host}/guest/qemu/100/last_backup"): "2025-12-31T00:00:00+00:00",
    }
    found = {key: state_of(hass, *key) for key in expected}
    assert found == expected
    assert state_of(hass, "sensor", f"{host}/guest/lxc/101/last_backup") is None  # never
    # Each guest is its own device behind the host's.
    devices = dr.async_get(hass)
    host_device = devices.async_get_device(identifiers={(DOMAIN, host)})
    web = devices.async_get_device(identifiers={(DOMAIN, f"{host}/guest/qemu/100")})
    assert host_device is not None and web is not None
    assert web.via_device_id == host_device.id
    assert (web.name, web.model, web.manufacturer) == ("web (qemu/100)", "Virtual machine",
                                                       "Proxmox VE")  # fmt: skip
    entities = er.async_get(hass)
    pool_entity = entities.async_get(
        entities.async_get_entity_id("sensor", DOMAIN, f"{host}_pool_fragmentation_tank") or ""
    )
    assert pool_entity is not None and pool_entity.entity_category == "diagnostic"
    guest_cpu = entities.async_get(
        entities.async_get_entity_id("sensor", DOMAIN, f"{host}/guest/qemu/100/cpu_usage") or ""
    )
    assert guest_cpu is not None and guest_cpu.device_id == web.id
    # Offline host: its guests' entities go unavailable with it.
    await agent.stop()
    await until(hass, lambda: not rig.hub.hosts[HOST].online)
    await until(
        hass,
        lambda: state_of(hass, "binary_sensor", f"{host}/guest/qemu/100/running") == "unavailable",
    )


async def test_guest_stopped_and_pool_degraded_fire_events_once(rig: AgentRig) -> None:
    hass = rig.hass
    fired: list[Event] = []

    @callback
    def record(event: Event) -> None:
        fired.append(event)

    for name in (EVENT_GUEST_STOPPED, EVENT_POOL_DEGRADED):
        hass.bus.async_listen(name, record)
    agent = rig.start_agent()
    send(rig, agent, 0)
    send(rig, agent, 1)
    await until(hass, lambda: rig.hub.hosts[HOST].last_seq == 2)
    assert fired == []  # first sight is no transition, an unchanged reading neither
    send(rig, agent, 2, web_status="stopped", tank="DEGRADED")
    send(rig, agent, 3, web_status="stopped", tank="DEGRADED")
    await until(hass, lambda: len(fired) >= 2 and rig.hub.hosts[HOST].last_seq == 4)
    await hass.async_block_till_done()
    entry_id = hass.config_entries.async_entries(DOMAIN)[0].entry_id
    payloads = sorted((str(e.event_type), dict(e.data)) for e in fired)
    assert payloads == [
        (EVENT_GUEST_STOPPED, {"entry_id": entry_id, "host": HOST, "id": "qemu/100",
                               "name": "web"}),
        (EVENT_POOL_DEGRADED, {"entry_id": entry_id, "host": HOST, "pool": "tank",
                               "health": "DEGRADED", "errors": 2}),
    ]  # fmt: skip
    await until(
        hass, lambda: state_of(hass, "binary_sensor", f"agent_{HOST}_pool_problem_tank") == "on"
    )
    await agent.stop()


async def test_the_guest_pick_keeps_only_the_picked_guests_devices(rig: AgentRig) -> None:
    hass = rig.hass
    agent = rig.start_agent()
    send(rig, agent, 0)
    dns = f"agent_{HOST}/guest/lxc/101"
    await until(hass, lambda: state_of(hass, "binary_sensor", f"{dns}/running") == "off")
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    subentry = next(s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_HOST)

    async def pick(guests: list[str]) -> None:
        menu = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_HOST),
            context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
        )
        assert menu["type"] is FlowResultType.MENU
        form = await hass.config_entries.subentries.async_configure(
            menu["flow_id"], {"next_step_id": "guests"}
        )
        assert form["step_id"] == "guests"
        done = await hass.config_entries.subentries.async_configure(
            form["flow_id"], {CONF_GUESTS: guests}
        )
        assert done["type"] is FlowResultType.ABORT
        await hass.async_block_till_done()

    devices = dr.async_get(hass)
    await pick(["qemu/100"])
    assert entry.subentries[subentry.subentry_id].data[CONF_GUESTS] == ["qemu/100"]
    assert devices.async_get_device(identifiers={(DOMAIN, dns)}) is None
    assert state_of(hass, "binary_sensor", f"{dns}/running") is None
    send(rig, agent, 1)
    await until(hass, lambda: rig.hub.hosts[HOST].last_seq == 2)
    await hass.async_block_till_done()
    assert devices.async_get_device(identifiers={(DOMAIN, dns)}) is None  # stays out
    web = f"agent_{HOST}/guest/qemu/100"
    assert state_of(hass, "binary_sensor", f"{web}/running") == "on"
    await pick([])  # none picked: every guest again
    await until(hass, lambda: state_of(hass, "binary_sensor", f"{dns}/running") == "off")
    assert devices.async_get_device(identifiers={(DOMAIN, dns)}) is not None
    await agent.stop()


def _translations(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_proxmox_entity_has_its_translation_and_icon() -> None:
    strings = _translations(COMPONENT / "strings.json")
    english = _translations(COMPONENT / "translations" / "en.json")
    icons = _translations(COMPONENT / "icons.json")["entity"]
    sensor_keys = {d.translation_key for d in (*HOST_SENSORS, *POOL_SENSORS, *GUEST_SENSORS)}
    sensor_keys |= {d.translation_key for d, _, _ in KEYED}
    binary_keys = {"pool_problem", "guest_running"}
    for platform, keys in (("sensor", sensor_keys), ("binary_sensor", binary_keys)):
        for key in keys:
            assert key is not None
            assert strings["entity"][platform][key] == english["entity"][platform][key], key
    for key in ("pool_capacity", "storage_used", "arc_size", "guest_last_backup"):
        assert key in icons["sensor"]
    assert "{pool}" in strings["entity"]["sensor"]["pool_capacity"]["name"]
    host_flow = strings["config_subentries"]["host"]["step"]
    assert host_flow == english["config_subentries"]["host"]["step"]
    assert set(host_flow["reconfigure"]["menu_options"]) == {"new_token", "guests"}
    assert "{host}" in host_flow["guests"]["title"]
