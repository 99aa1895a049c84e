"""ZFS and Proxmox VE readings (issue 10) under the names the issue gives them.

Samples are the neutral ones the agent's ``zfs``, ``pve`` and ``pve_backup`` collectors send
(core/agent/collectors/zfs.py and pve.py: measurements ``zfs_pool``, ``zfs_pool_state``,
``zfs_vdev``, ``zfs_arc``, ``pve_guest``, ``pve_guests``, ``pve_storage``, ``pve_backup`` and
``pve_updates`` with the fields those modules write): built by hand for every field, and made
by the real collectors run against fake ``zpool``/``pvesh`` printing the fixtures, so that a
field renamed on either side fails here. They go through a real hub and the real exposition
(Prometheus) and ``HostNaming`` with the real encoder (line protocol). The
Prometheus text is held to the names, labels and types the issue lists and to promtool's
lint; every line protocol line is read back by the independent reference parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.agent.protocol import Batch, Hello
from custom_components.fleet_metrics.core.exporters.line_protocol import LineEncoder
from custom_components.fleet_metrics.core.sample import FieldValue, Sample
from custom_components.fleet_metrics.core.sources.agents.exposition import HostsExposition
from custom_components.fleet_metrics.core.sources.agents.hub import Hub
from custom_components.fleet_metrics.core.sources.agents.naming import HostNaming
from custom_components.fleet_metrics.core.sources.agents.store import HostRecord
from tests.core.agent.test_naming import (
    NS,
    Conn,
    lines,
    mapped,
    prometheus_text,
    promtool_problems,
    reading,
)
from tests.core.lp_reference_parser import parse_line
from tests.fixtures.proxmox.fake_commands import (
    pve_collector_runs,
)

STATES = ("ONLINE", "DEGRADED", "FAULTED", "OFFLINE", "REMOVED", "UNAVAIL", "SUSPENDED")


def pool(name: str, health: str, **extra: FieldValue) -> list[Sample]:
    """A pool's zfs_pool reading, its seven zfs_pool_state readings and its vdev errors."""
    fields: dict[str, FieldValue] = {
        "size_bytes": 1_000_000_000_000,
        "allocated_bytes": 400_000_000_000,
        "free_bytes": 600_000_000_000,
        "fragmentation_ratio": 0.12,
        "capacity_ratio": 0.4,
        "dedup_ratio": 1.0,
        "health": health,
        "errors": 0 if health == "ONLINE" else 3,
        "scan": "scrub",
        "scan_state": "finished",
        "scrub_last_end_timestamp_seconds": 1_699_000_000.0,
        "scrub_repaired_bytes": 0,
        "scrub_errors": 0,
        "stale": 0,
        **extra,
    }
    samples = [reading("zfs_pool", fields, {"pool": name})]
    samples += [
        reading("zfs_pool_state", {"value": int(state == health)}, {"zpool": name, "state": state})
        for state in STATES
    ]
    for vdev in (name, "mirror-0", "sda"):
        for kind in ("read", "write", "checksum"):
            errors = 3 if (health != "ONLINE" and vdev == "sda" and kind == "checksum") else 0
            samples.append(
                reading("zfs_vdev", {"errors": errors}, {"pool": name, "vdev": vdev, "kind": kind})
            )
    return samples


def guest(vmid: int, kind: str, name: str, status: str, tags: str = "") -> Sample:
    running = status == "running"
    fields: dict[str, FieldValue] = {
        "up": int(running),
        "status": status,
        "name": name,
        "type": kind,
        "cpu_ratio": 0.25 if running else 0.0,
        "cpus": 4,
        "memory_usage_bytes": 2 * 2**30 if running else 0,
        "memory_size_bytes": 8 * 2**30,
        "disk_usage_bytes": 10 * 2**30,
        "disk_size_bytes": 32 * 2**30,
        "network_receive_bytes": 123_456,
        "network_transmit_bytes": 654_321,
        "uptime_seconds": 3600 if running else 0,
        "stale": 0,
    }
    if tags:
        fields["tags"] = tags
    return reading("pve_guest", fields, {"id": f"{kind}/{vmid}"})


def every_proxmox_kind() -> list[Sample]:
    """One host's medium and slow collections: every measurement and field of the spec."""
    return [
        *pool("rpool", "ONLINE", scrub_repaired_bytes=4096),
        *pool("tank", "DEGRADED", scan="resilver", scan_state="scanning", scan_progress_ratio=0.5),
        reading(
            "zfs_arc",
            {
                "size_bytes": 8 * 2**30,
                "target_bytes": 9 * 2**30,
                "min_bytes": 2**30,
                "max_bytes": 16 * 2**30,
            },
        ),
        guest(100, "qemu", "web", "running", "prod;web"),
        guest(101, "lxc", "dns", "stopped"),
        reading("pve_guests", {"count": 1}, {"status": "running"}),
        reading("pve_guests", {"count": 1}, {"status": "stopped"}),
        reading(
            "pve_storage",
            {
                "active": 1,
                "enabled": 1,
                "usage_bytes": 100 * 2**30,
                "size_bytes": 400 * 2**30,
                "avail_bytes": 300 * 2**30,
                "content": "images,rootdir",
                "stale": 0,
            },
            {"storage": "local-zfs", "type": "zfspool"},
        ),
        reading(
            "pve_backup",
            {
                "last_success_timestamp_seconds": 1_699_900_000.0,
                "last_failure_timestamp_seconds": 1_699_800_000.0,
                "last_size_bytes": 3 * 2**30,
                "backups": 14,
                "verify_failed": 1,
                "not_backed_up": 0,
                "stale": 0,
            },
            {"id": "qemu/100"},
        ),
        reading("pve_backup", {"not_backed_up": 1}, {"id": "lxc/101"}),
        reading("pve_updates", {"pending": 7}),
    ]


def families() -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """Family name -> (type, [(sample name, labels, value)]) of the host's exposition."""
    found: dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]] = {}
    for family in text_string_to_metric_families(prometheus_text(every_proxmox_kind())):
        found[family.name] = (
            family.type,
            [(s.name, dict(s.labels), s.value) for s in family.samples],
        )
    return found


def test_zfs_names_labels_and_types() -> None:
    found = families()
    host = {"host": "pve1"}
    for name in (
        "zfs_pool_size_bytes",
        "zfs_pool_allocated_bytes",
        "zfs_pool_free_bytes",
        "zfs_pool_fragmentation_ratio",
        "zfs_pool_capacity_ratio",
        "zfs_pool_dedup_ratio",
        "zfs_pool_errors",
        "zfs_pool_scrub_last_end_timestamp_seconds",
        "zfs_pool_scrub_repaired_bytes",
        "zfs_pool_scrub_errors",
    ):
        kind, samples = found[name]
        assert kind == "gauge", name
        assert sorted(s[1]["pool"] for s in samples) == ["rpool", "tank"], name
        assert all(s[1] == {**host, "pool": s[1]["pool"]} for s in samples)
    assert found["zfs_pool_fragmentation_ratio"][1][0][2] == 0.12
    assert [s[1]["pool"] for s in found["zfs_pool_scan_progress_ratio"][1]] == ["tank"]
    # node_exporter's enum: every state a series, 1 for the current one, lower case.
    kind, samples = found["node_zfs_zpool_state"]
    assert kind == "gauge"
    current = {(s[1]["zpool"], s[1]["state"]): s[2] for s in samples}
    assert len(current) == 14
    assert {key for key, value in current.items() if value == 1.0} == {
        ("rpool", "online"),
        ("tank", "degraded"),
    }
    assert all(set(s[1]) == {"host", "zpool", "state"} for s in samples)
    # vdev errors: a counter, by pool, vdev and kind.
    kind, samples = found["zfs_vdev_errors"]
    assert kind == "counter"
    assert {s[0] for s in samples} == {"zfs_vdev_errors_total"}
    assert len(samples) == 18
    assert [s[1] for s in samples if s[2] > 0] == [
        {**host, "pool": "tank", "vdev": "sda", "kind": "checksum"}
    ]
    for name, value in (("node_zfs_arc_size_bytes", 8 * 2**30),
                        ("node_zfs_arc_target_bytes", 9 * 2**30)):  # fmt: skip
        assert found[name] == ("gauge", [(name, host, float(value))])
    assert "node_zfs_arc_min_bytes" in found and "node_zfs_arc_max_bytes" in found
    # Strings (health, scan) are no series; nothing falls back to fleet_agent_*.
    assert not [name for name in found if name.startswith("fleet_agent_zfs")]


def test_pve_names_labels_and_types() -> None:
    found = families()
    host = {"host": "pve1"}
    web, dns = {**host, "id": "qemu/100"}, {**host, "id": "lxc/101"}
    gauges = {
        "pve_up": {"qemu/100": 1.0, "lxc/101": 0.0},
        "pve_cpu_usage_ratio": {"qemu/100": 0.25, "lxc/101": 0.0},
        "pve_cpu_usage_limit": {"qemu/100": 4.0, "lxc/101": 4.0},
        "pve_memory_usage_bytes": {"qemu/100": 2.0 * 2**30, "lxc/101": 0.0},
        "pve_memory_size_bytes": {"qemu/100": 8.0 * 2**30, "lxc/101": 8.0 * 2**30},
        "pve_disk_usage_bytes": {"qemu/100": 10.0 * 2**30, "lxc/101": 10.0 * 2**30},
        "pve_disk_size_bytes": {"qemu/100": 32.0 * 2**30, "lxc/101": 32.0 * 2**30},
        "pve_uptime_seconds": {"qemu/100": 3600.0, "lxc/101": 0.0},
    }
    for name, values in gauges.items():
        kind, samples = found[name]
        assert kind == "gauge", name
        assert {s[1]["id"]: s[2] for s in samples} == values, name
        assert all(set(s[1]) == {"host", "id"} for s in samples), name
    for name in ("pve_network_receive_bytes", "pve_network_transmit_bytes"):
        kind, samples = found[name]
        assert kind == "counter"
        assert {s[0] for s in samples} == {f"{name}_total"}
        assert sorted(s[1]["id"] for s in samples) == ["lxc/101", "qemu/100"]
    # The info family: 1, labelled with the strings; an empty value is left out.
    assert found["pve_guest_info"] == (
        "gauge",
        [
            ("pve_guest_info", {**web, "name": "web", "type": "qemu", "tags": "prod;web"}, 1.0),
            ("pve_guest_info", {**dns, "name": "dns", "type": "lxc"}, 1.0),
        ],
    )
    assert found["pve_guests"] == (
        "gauge",
        [
            ("pve_guests", {**host, "status": "running"}, 1.0),
            ("pve_guests", {**host, "status": "stopped"}, 1.0),
        ],
    )
    storage = {**host, "storage": "local-zfs", "type": "zfspool"}
    assert found["pve_storage_usage_bytes"] == (
        "gauge",
        [("pve_storage_usage_bytes", storage, 100.0 * 2**30)],
    )
    assert found["pve_storage_size_bytes"][1][0][1] == storage
    assert found["pve_storage_up"] == ("gauge", [("pve_storage_up", storage, 1.0)])
    assert found["pve_backup_last_success_timestamp_seconds"] == (
        "gauge",
        [("pve_backup_last_success_timestamp_seconds", web, 1_699_900_000.0)],
    )
    assert found["pve_backup_last_failure_timestamp_seconds"][1][0][1] == web
    assert found["pve_backup_last_size_bytes"] == (
        "gauge",
        [("pve_backup_last_size_bytes", web, 3.0 * 2**30)],
    )
    assert found["pve_backups"] == ("gauge", [("pve_backups", web, 14.0)])
    assert found["pve_backup_verify_failed"] == ("gauge", [("pve_backup_verify_failed", web, 1.0)])
    assert found["pve_not_backed_up"] == (
        "gauge",
        [("pve_not_backed_up", web, 0.0), ("pve_not_backed_up", dns, 1.0)],
    )
    assert found["pve_updates_pending"] == ("gauge", [("pve_updates_pending", host, 7.0)])
    assert not [name for name in found if name.startswith("fleet_agent_pve")]


def test_a_renamed_guest_gets_a_new_info_series() -> None:
    """The info labels come from fields that change under the same id: the label text kept
    with the reading must follow them, not stay as it was at the first scrape."""
    hub = Hub(clock=lambda: 1000.0)
    hub.set_hosts({"pve1": HostRecord("pve1", "hash", 0.0)})
    state = hub.hosts["pve1"]
    hub.connect(state, Conn(), Hello("pve1", "0.9.0", "boot"))
    exposition = HostsExposition(hub, ttl=1e9, clock=lambda: 1000.0)
    for seq, name in ((1, "web"), (2, "web-new")):
        batch = Batch(seq, 1000.0, (guest(100, "qemu", name, "running"),))
        hub.apply(state, state.connection, batch)  # type: ignore[arg-type]
        text = exposition.render()
        assert f'pve_guest_info{{host="pve1",id="qemu/100",name="{name}",type="qemu"}} 1.0' in text
        assert text.count("pve_guest_info{") == 1


def test_promtool_accepts_a_host_that_sends_every_proxmox_measurement() -> None:
    text = prometheus_text(every_proxmox_kind())
    assert "node_zfs_zpool_state{" in text and "pve_guest_info{" in text
    assert promtool_problems(text) == []


def test_line_protocol_measurements_tags_and_field_types() -> None:
    out = lines(mapped(every_proxmox_kind()))
    parsed = [parse_line(line) for line in out]
    assert all(line.tags["host"] == "pve1" and line.timestamp == NS for line in parsed)
    assert not [line for line in parsed if line.measurement == "zfs_pool_state"]
    by_series = {(line.measurement, tuple(sorted(line.tags.items()))): line for line in parsed}
    rpool = by_series[("zfs_pool", (("host", "pve1"), ("pool", "rpool")))].fields
    assert rpool["health"] == "ONLINE" and rpool["scan_state"] == "finished"
    assert rpool["size_bytes"] == 1_000_000_000_000 and type(rpool["size_bytes"]) is int
    assert rpool["fragmentation_ratio"] == 0.12
    assert type(rpool["errors"]) is int
    web = by_series[("pve_guest", (("host", "pve1"), ("id", "qemu/100")))].fields
    assert web["name"] == "web" and web["tags"] == "prod;web" and web["status"] == "running"
    assert type(web["up"]) is int and type(web["memory_usage_bytes"]) is int
    assert type(web["cpu_ratio"]) is float
    storage = by_series[
        ("pve_storage", (("host", "pve1"), ("storage", "local-zfs"), ("type", "zfspool")))
    ].fields
    assert storage["content"] == "images,rootdir" and type(storage["usage_bytes"]) is int
    backup = by_series[("pve_backup", (("host", "pve1"), ("id", "qemu/100")))].fields
    assert backup["last_success_timestamp_seconds"] == 1_699_900_000.0
    assert type(backup["not_backed_up"]) is int and type(backup["backups"]) is int
    measurements = {line.measurement for line in parsed}
    assert {"zfs_pool", "pve_guest", "pve_storage", "pve_backup"} <= measurements
    assert {"zfs_vdev", "zfs_arc", "pve_guests", "pve_updates"} <= measurements


_NUMBER = st.one_of(
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
)


MEASUREMENTS = ("zfs_pool", "zfs_pool_state", "zfs_vdev", "zfs_arc", "pve_guest", "pve_guests",
                "pve_storage", "pve_backup", "pve_updates")  # fmt: skip
TAGS = ("pool", "zpool", "state", "vdev", "kind", "id", "status", "storage", "type", "x")
FIELDS = ("size_bytes", "errors", "health", "value", "up", "cpu_ratio", "name", "tags", "count",
          "usage_bytes", "active", "pending", "not_backed_up",
          "last_success_timestamp_seconds", "stale", "y")  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(MEASUREMENTS),
    st.dictionaries(st.sampled_from(TAGS), st.text(max_size=8), max_size=4),
    st.dictionaries(st.sampled_from(FIELDS), _NUMBER, min_size=1, max_size=6),
)
def test_any_proxmox_reading_gives_a_clean_exposition_and_parsable_lines(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    """Whatever values arrive under these names (a wrong type, ±inf, huge ints, odd
    strings): the exposition parses, the series carry the host, and every line protocol
    line the two paths write is the same and reads back with the host tag."""
    sample = Sample(measurement, tags, fields, NS)
    text = prometheus_text([sample], host="h")
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            assert item.labels["host"] == "h"
    out: list[Sample] = []
    HostNaming("h").map(sample, out)
    encoded = lines(out)
    direct: list[str] = []
    HostNaming("h").lines([sample], LineEncoder(), direct)
    assert direct == encoded
    for line in encoded:
        parsed = parse_line(line)
        assert parsed.measurement == measurement and parsed.tags["host"] == "h"


@pytest.fixture
def collected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Sample]:
    """One run of each real collector against fake zpool/pvesh printing the fixtures."""
    path, runs = pve_collector_runs(tmp_path / "bin")
    monkeypatch.setenv("PATH", path)
    return [sample for run in runs for sample in run(NS)]


def test_the_real_collectors_samples_get_the_issue_s_names(collected: list[Sample]) -> None:
    text = prometheus_text(collected)
    assert promtool_problems(text) == []
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(metric: str, /, **labels: str) -> float:
        return values[(metric, tuple(sorted({"host": "pve1", **labels}.items())))]

    assert value("zfs_pool_size_bytes", pool="tank") == 47999999410176
    assert value("zfs_pool_capacity_ratio", pool="tank") == 0.63
    assert value("zfs_pool_errors", pool="tank") == 1254
    assert value("zfs_pool_scrub_last_end_timestamp_seconds", pool="tank") == 1710056169
    assert value("node_zfs_zpool_state", zpool="tank", state="degraded") == 1
    assert value("node_zfs_zpool_state", zpool="tank", state="online") == 0
    write = {"pool": "tank", "vdev": "wwn-0x5000c500a1b2c3d3", "kind": "write"}
    assert value("zfs_vdev_errors_total", **write) == 1229
    assert value("node_zfs_arc_size_bytes") == 8398124864
    assert value("pve_up", id="qemu/100") == 1 and value("pve_up", id="qemu/103") == 0
    assert value("pve_memory_usage_bytes", id="qemu/100") == 6114289664
    info = {"id": "qemu/100", "name": "home-assistant", "type": "qemu", "tags": "ha;prod"}
    assert value("pve_guest_info", **info) == 1
    assert value("pve_guests", status="running") == 5
    storage = {"storage": "local-zfs", "type": "zfspool"}
    assert value("pve_storage_usage_bytes", **storage) == 59423506432
    assert value("pve_backup_last_success_timestamp_seconds", id="qemu/100") == 1713064012
    assert value("pve_not_backed_up", id="qemu/105") == 1
    assert value("pve_updates_pending") == 3
    # every measurement and field the collectors send has its name: none falls back
    assert not [key for key in values if key[0].startswith(("fleet_agent_zfs", "fleet_agent_pve"))]


def test_the_real_collectors_samples_as_line_protocol(collected: list[Sample]) -> None:
    parsed = [parse_line(line) for line in lines(mapped(collected))]
    by_series = {(line.measurement, tuple(sorted(line.tags.items()))): line for line in parsed}
    tank = by_series[("zfs_pool", (("host", "pve1"), ("pool", "tank")))].fields
    assert tank["health"] == "DEGRADED" and tank["errors"] == 1254
    assert tank["size_bytes"] == 47999999410176 and type(tank["size_bytes"]) is int
    guest = by_series[("pve_guest", (("host", "pve1"), ("id", "qemu/100")))].fields
    assert guest["name"] == "home-assistant" and guest["memory_usage_bytes"] == 6114289664
    storage = by_series[
        ("pve_storage", (("host", "pve1"), ("storage", "local-zfs"), ("type", "zfspool")))
    ].fields
    assert storage["usage_bytes"] == 59423506432
    backup = by_series[("pve_backup", (("host", "pve1"), ("id", "qemu/100")))].fields
    assert backup["last_success_timestamp_seconds"] == 1713064012.0
