"""Proxmox hosts in Home Assistant: a real agent client sends ZFS and PVE samples (shaped as
the agent's zfs, pve and pve_backup collectors send them, and in one test made by those
collectors run against fake zpool/pvesh) through HA's HTTP server; the tests read the
entities, devices, events and the guest pick as a user would meet them."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST
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
from custom_components.fleet_metrics.const import CONF_TOKEN_HASH, DOMAIN, SUBENTRY_HOST
from custom_components.fleet_metrics.core.sample import FieldValue, Sample
from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token
from tests.fixtures.proxmox.fake_commands import (
    FIXTURES,
    pve_collector_runs,
)

from .conftest import HOST, T0, AgentRig, host_samples, open_guest_pick, until

COMPONENT = Path(__file__).parents[3] / "custom_components" / "fleet_metrics"
STORAGE_TOTAL = {
    entry["storage"]: entry["total"]
    for entry in json.loads((FIXTURES / "pvesh_storage.json").read_text(encoding="utf-8"))
}


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
        form = await open_guest_pick(hass, entry, subentry.subentry_id)
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


def end_of_runs(step: int) -> list[Sample]:
    """The ``collector`` samples the agent sends after each collector's samples."""
    ns = int((T0 + 30 * step) * 1e9)
    return [
        Sample("collector", {"collector": name}, {"success": 1, "duration_seconds": 0.1}, ns)
        for name in ("zfs", "pve", "pve_backup")
    ]


async def test_a_wild_timestamp_breaks_no_host_s_updates(rig: AgentRig) -> None:
    """A scrub end of 1e20 s, a backup at -1e15 s and a boot time of 1e20 s from one agent:
    that host's other values and another host's values keep updating."""
    hass = rig.hass
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    other, other_token = "pve2", "fma_" + "B" * 43
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType({CONF_HOST: other, CONF_TOKEN_HASH: hash_token(other_token)}),
            subentry_type=SUBENTRY_HOST,
            title=other,
            unique_id=other,
        ),
    )
    await hass.async_block_till_done()
    wild, calm = rig.start_agent(), rig.start_agent(token=other_token, host=other)
    ns = int((T0 + 30) * 1e9)
    odd = [
        Sample("zfs_pool", {"pool": "tank"}, {"scrub_last_end_timestamp_seconds": 1e20}, ns),
        Sample("pve_backup", {"id": "qemu/100"}, {"last_success_timestamp_seconds": -1e15}, ns),
        Sample("host", {}, {"boot_time_seconds": 1e20}, ns),
        Sample("pve_updates", {}, {"pending": 8}, ns),
    ]
    send(rig, wild, 0)
    wild.outbox.add(T0 + 30, odd)
    wild.client.wake()
    calm.outbox.add(T0, host_samples(0) + proxmox_samples(0))
    calm.client.wake()
    await until(hass, lambda: state_of(hass, "sensor", f"agent_{other}_updates_pending") == "7")
    await until(hass, lambda: state_of(hass, "sensor", f"agent_{HOST}_updates_pending") == "8")
    host = f"agent_{HOST}"
    assert state_of(hass, "sensor", f"{host}_pool_last_scrub_tank") == "2025-12-31T23:00:00+00:00"
    assert state_of(hass, "sensor", f"{host}/guest/qemu/100/last_backup") == (
        "2025-12-31T00:00:00+00:00"
    )
    # both hosts go on updating
    calm.outbox.add(T0 + 60, [Sample("pve_updates", {}, {"pending": 9}, int((T0 + 60) * 1e9))])
    calm.client.wake()
    send(rig, wild, 3)
    await until(hass, lambda: state_of(hass, "sensor", f"agent_{other}_updates_pending") == "9")
    await until(hass, lambda: state_of(hass, "sensor", f"{host}_updates_pending") == "7")
    await wild.stop()
    await calm.stop()


async def test_what_pve_and_zpool_no_longer_list_goes_away(rig: AgentRig) -> None:
    """Guest lxc/101 deleted in PVE: its device goes; pool tank exported and storage
    local-zfs removed: their entities go unavailable. Nothing else changes."""
    hass = rig.hass
    agent = rig.start_agent()
    agent.outbox.add(T0, host_samples(0) + proxmox_samples(0) + end_of_runs(0))
    agent.client.wake()
    host = f"agent_{HOST}"
    dns = f"{host}/guest/lxc/101"
    await until(hass, lambda: state_of(hass, "binary_sensor", f"{dns}/running") == "off")
    devices = dr.async_get(hass)
    assert devices.async_get_device(identifiers={(DOMAIN, dns)}) is not None
    later = [
        s
        for s in proxmox_samples(1)
        if s.tags.get("id") != "lxc/101"
        and s.tags.get("pool") != "tank"
        and s.measurement != "pve_storage"
        and s.tags.get("status") != "stopped"
    ]
    ns = int((T0 + 30) * 1e9)
    later.append(Sample("pve_guests", {"status": "stopped"}, {"count": 0}, ns))
    agent.outbox.add(T0 + 30, host_samples(1) + later + end_of_runs(1))
    agent.client.wake()
    await until(hass, lambda: devices.async_get_device(identifiers={(DOMAIN, dns)}) is None)
    await until(
        hass, lambda: state_of(hass, "sensor", f"{host}_pool_capacity_tank") == "unavailable"
    )
    assert state_of(hass, "binary_sensor", f"{dns}/running") is None
    assert state_of(hass, "binary_sensor", f"{host}_pool_problem_tank") == "unavailable"
    assert state_of(hass, "sensor", f"{host}_storage_used_local-zfs") == "unavailable"
    assert state_of(hass, "sensor", f"{host}_pool_capacity_rpool") == "40.0"
    assert state_of(hass, "binary_sensor", f"{host}/guest/qemu/100/running") == "on"
    await agent.stop()


async def test_the_guest_pick_lists_guests_by_type_and_vmid(rig: AgentRig) -> None:
    hass = rig.hass
    agent = rig.start_agent()
    ns = int(T0 * 1e9)
    ids = ["qemu/1000", "lxc/101", "qemu/99", "qemu/100", "lxc/9"]
    agent.outbox.add(T0, [Sample("pve_guest", {"id": gid}, {"up": 1}, ns) for gid in ids])
    agent.client.wake()
    await until(
        hass, lambda: state_of(hass, "binary_sensor", "agent_pve1/guest/lxc/9/running") == "on"
    )
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    subentry = next(s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_HOST)
    form = await open_guest_pick(hass, entry, subentry.subentry_id)
    schema = form["data_schema"]
    assert schema is not None
    selector = schema.schema[CONF_GUESTS]
    values = [option["value"] for option in selector.config["options"]]
    assert values == ["lxc/9", "lxc/101", "qemu/99", "qemu/100", "qemu/1000"]
    await agent.stop()


async def test_the_real_collectors_feed_home_assistant(
    rig: AgentRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zfs, pve and pve_backup collectors run against fake zpool/pvesh printing the
    fixtures, and their samples are what the agent sends: a field renamed on either side
    leaves an entity missing or wrong here."""
    path, runs = pve_collector_runs(tmp_path / "bin")
    monkeypatch.setenv("PATH", path)
    hass = rig.hass
    agent = rig.start_agent()
    for step in (0, 1):
        t = T0 + 30 * step
        samples = [s for run in runs for s in await hass.async_add_executor_job(run, int(t * 1e9))]
        agent.outbox.add(t, host_samples(step) + samples)
        agent.client.wake()
    host = f"agent_{HOST}"
    await until(hass, lambda: state_of(hass, "sensor", f"{host}_updates_pending") == "3")
    ha = f"{host}/guest/qemu/100"
    expected = {
        ("binary_sensor", f"{host}_pool_problem_tank"): "on",  # DEGRADED, 1254 errors
        ("binary_sensor", f"{host}_pool_problem_rpool"): "off",
        ("sensor", f"{host}_pool_capacity_tank"): "63.0",
        ("sensor", f"{host}_pool_fragmentation_rpool"): "7.0",
        ("sensor", f"{host}_pool_last_scrub_tank"): "2024-03-10T07:36:09+00:00",
        ("sensor", f"{host}_guests_running"): "5",
        ("sensor", f"{host}_guests_stopped"): "2",
        ("sensor", f"{host}_storage_used_local-zfs"): str(
            round(100 * 59423506432 / STORAGE_TOTAL["local-zfs"], 1)
        ),
        ("binary_sensor", f"{ha}/running"): "on",
        ("sensor", f"{ha}/last_backup"): "2024-04-14T03:06:52+00:00",
        ("binary_sensor", f"{host}/guest/qemu/103/running"): "off",
        ("binary_sensor", f"{host}/guest/lxc/101/running"): "on",
    }
    assert {key: state_of(hass, *key) for key in expected} == expected
    for key, gib in (
        (f"{host}_arc_size", 8398124864 / 2**30),  # arcstats' size
        (f"{ha}/memory_used", 6114289664 / 2**30),  # the VM's mem in pvesh's list
    ):
        assert float(state_of(hass, "sensor", key) or "nan") == pytest.approx(gib)
    devices = dr.async_get(hass)
    assert devices.async_get_device(identifiers={(DOMAIN, ha)}) is not None
    assert state_of(hass, "binary_sensor", f"{host}/guest/qemu/9000/running") is None  # template
    await agent.stop()
