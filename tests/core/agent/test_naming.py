"""Agent readings under node_exporter's names (Prometheus) and telegraf's (line protocol).

Every kind of reading the agent sends goes through ``HostNaming`` and the real sinks; the
test holds the output to the names, labels, measurements and fields the issue lists, and
promtool's lint to accepting all of it except node_exporter's own camelCase memory names.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.agent.collectors.cpu import MODES as CPU_MODES
from custom_components.fleet_metrics.core.agent.protocol import Batch, Hello
from custom_components.fleet_metrics.core.exporters.line_protocol import LineEncoder
from custom_components.fleet_metrics.core.sample import (
    SINK_LINE_PROTOCOL,
    FieldValue,
    Sample,
)
from custom_components.fleet_metrics.core.sources.agents.device_lines import DeviceLines
from custom_components.fleet_metrics.core.sources.agents.exposition import HostsExposition
from custom_components.fleet_metrics.core.sources.agents.hub import Hub
from custom_components.fleet_metrics.core.sources.agents.naming import HostNaming
from custom_components.fleet_metrics.core.sources.agents.store import HostRecord

NS = 1_700_000_000_000_000_000


def reading(
    measurement: str,
    fields: dict[str, FieldValue],
    tags: dict[str, str] | None = None,
    counters: tuple[str, ...] = (),
    ns: int = NS,
) -> Sample:
    return Sample(measurement, tags or {}, fields, ns, frozenset(counters))


def cpu(scale: float, ns: int = NS, cpu_tag: str = "total") -> Sample:
    fields: dict[str, FieldValue] = {m: scale * (i + 1) for i, m in enumerate(CPU_MODES)}
    return reading("cpu", fields, {"cpu": cpu_tag}, CPU_MODES, ns)


def every_kind() -> list[Sample]:
    """One reading of each kind the agent's collectors send, host info first."""
    net = (
        "receive_bytes",
        "transmit_bytes",
        "receive_packets",
        "transmit_packets",
        "receive_errs",
        "transmit_errs",
        "receive_drop",
        "transmit_drop",
    )
    disk = ("read_bytes", "written_bytes", "reads_completed", "writes_completed")
    disk_times = ("read_time_seconds", "write_time_seconds", "io_time_seconds")
    return [
        reading(
            "host",
            {"boot_time_seconds": 1_699_990_000.0, "cpus": 16},
            {
                "os": "Debian GNU/Linux 12",
                "kernel": "6.8.12-4-pve",
                "cpu_model": "EPYC",
                "agent_version": "0.9.0",
                "pve_version": "8.2.7",
            },
        ),
        cpu(10.0),
        cpu(1.0, cpu_tag="0"),
        reading("load", {"load1": 1.5, "load5": 1.0, "load15": 0.5}),
        reading(
            "memory",
            {
                "total_bytes": 1000,
                "available_bytes": 600,
                "used_bytes": 300,
                "free_bytes": 100,
                "buffers_bytes": 50,
                "cached_bytes": 250,
            },
        ),
        reading(
            "swap",
            {
                "total_bytes": 800,
                "free_bytes": 600,
                "used_bytes": 200,
                "sin_bytes": 5,
                "sout_bytes": 7,
            },
            counters=("sin_bytes", "sout_bytes"),
        ),
        reading("network", {name: 10 + i for i, name in enumerate(net)}, {"device": "eth0"}, net),
        reading(
            "disk",
            {
                **{name: 100 + i for i, name in enumerate(disk)},
                **{name: 1.5 for name in disk_times},
            },
            {"device": "nvme0n1"},
            disk + disk_times,
        ),
        reading(
            "filesystem",
            {
                "size_bytes": 1000,
                "free_bytes": 400,
                "avail_bytes": 300,
                "files": 50,
                "files_free": 20,
            },
            {"device": "/dev/sda1", "mountpoint": "/", "fstype": "ext4"},
        ),
        reading(
            "temperature",
            {"celsius": 45.0, "high_celsius": 80.0, "critical_celsius": 95.0},
            {"chip": "coretemp", "sensor": "Package id 0"},
        ),
        reading("fan", {"rpm": 1200.0}, {"chip": "nct6775", "sensor": "fan1"}),
        reading("collector", {"success": 1, "duration_seconds": 0.002}, {"collector": "cpu"}),
    ]


def mapped(samples: list[Sample], host: str = "pve1") -> list[Sample]:
    """The line protocol samples ``HostNaming`` makes of ``samples``."""
    naming = HostNaming(host)
    out: list[Sample] = []
    for sample in samples:
        naming.map(sample, out)
    return out


def prometheus_text(samples: list[Sample], host: str = "pve1") -> str:
    """What ``/metrics`` shows of a host that sent ``samples``: through a real hub."""
    hub = Hub(clock=lambda: 1000.0)
    hub.set_hosts({host: HostRecord(host, "hash", 0.0)})
    state = hub.hosts[host]
    hub.connect(state, Conn(), Hello(host, "0.9.0", "boot"))
    hub.apply(state, state.connection, Batch(1, 1000.0, tuple(samples)))  # type: ignore[arg-type]
    return HostsExposition(hub, ttl=1e9, clock=lambda: 1000.0).render()


class Conn:
    def close(self, code: int, reason: str) -> None:
        pass

    def send_ack(self, ack: object) -> None:
        pass


def exposition(samples: list[Sample], host: str = "pve1") -> dict[str, list[dict[str, str]]]:
    """Sample name (with _total for counters) -> the label sets it has."""
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(prometheus_text(samples, host)):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    return found


def lines(samples: list[Sample]) -> list[str]:
    encoder = LineEncoder()
    return [line for s in samples if (line := encoder.encode(s)) is not None]


def line_protocol(samples: list[Sample]) -> dict[tuple[str, frozenset[tuple[str, str]]], set[str]]:
    """(measurement, tags) -> field names, from the encoded lines."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], set[str]] = {}
    for line in lines(samples):
        series, fields, _ = line.split(" ")
        measurement, *tags = series.split(",")
        key = (measurement, frozenset(tuple(t.split("=", 1)) for t in tags))  # type: ignore[misc]
        found.setdefault(key, set()).update(f.split("=", 1)[0] for f in fields.split(","))
    return found


def test_every_kind_has_its_node_exporter_name_and_labels() -> None:
    names = exposition(every_kind())
    host = {"host": "pve1"}
    expected = {
        "node_cpu_seconds_total": [{**host, "mode": m} for m in CPU_MODES[:8]],
        "node_cpu_guest_seconds_total": [{**host, "mode": "user"}, {**host, "mode": "nice"}],
        "node_load1": [host],
        "node_load5": [host],
        "node_load15": [host],
        "node_memory_MemTotal_bytes": [host],
        "node_memory_MemAvailable_bytes": [host],
        "node_memory_MemFree_bytes": [host],
        "node_memory_Buffers_bytes": [host],
        "node_memory_Cached_bytes": [host],
        "node_memory_SwapTotal_bytes": [host],
        "node_memory_SwapFree_bytes": [host],
        "node_filesystem_size_bytes": [
            {**host, "device": "/dev/sda1", "mountpoint": "/", "fstype": "ext4"}
        ],
        "node_filesystem_free_bytes": None,
        "node_filesystem_avail_bytes": None,
        "node_filesystem_files": None,
        "node_filesystem_files_free": None,
        "node_network_receive_bytes_total": [{**host, "device": "eth0"}],
        "node_network_transmit_bytes_total": [{**host, "device": "eth0"}],
        "node_disk_read_bytes_total": [{**host, "device": "nvme0n1"}],
        "node_disk_written_bytes_total": [{**host, "device": "nvme0n1"}],
        "node_disk_io_time_seconds_total": [{**host, "device": "nvme0n1"}],
        "node_hwmon_temp_celsius": [{**host, "chip": "coretemp", "sensor": "Package id 0"}],
        "node_hwmon_temp_max_celsius": None,
        "node_hwmon_temp_crit_celsius": None,
        "node_hwmon_fan_rpm": [{**host, "chip": "nct6775", "sensor": "fan1"}],
        "node_boot_time_seconds": [host],
        "node_scrape_collector_success": [{**host, "collector": "cpu"}],
        "node_scrape_collector_duration_seconds": [{**host, "collector": "cpu"}],
        "fleet_agent_info": [
            {
                **host,
                "agent_version": "0.9.0",
                "kernel": "6.8.12-4-pve",
                "os": "Debian GNU/Linux 12",
                "pve_version": "8.2.7",
            }
        ],
    }
    for name, labels in expected.items():
        assert name in names, name
        if labels is not None:
            # Per-CPU readings carry a cpu label as well; the summed one has none.
            got = [x for x in names[name] if "cpu" not in x]
            assert sorted(map(sorted, got)) == sorted(map(sorted, labels)), name
    assert {"host": "pve1", "cpu": "0", "mode": "idle"} in names["node_cpu_seconds_total"]
    # Every series names its host.
    assert all(labels.get("host") == "pve1" for sets in names.values() for labels in sets)


def test_every_kind_has_its_telegraf_measurement_and_fields() -> None:
    first = mapped(every_kind())
    found = line_protocol(first)
    host = ("host", "pve1")

    def fields(measurement: str, *tags: tuple[str, str]) -> set[str]:
        return found[(measurement, frozenset({host, *tags}))]

    assert {f"time_{m}" for m in CPU_MODES} <= fields("cpu", ("cpu", "cpu-total"))
    assert fields("cpu", ("cpu", "cpu0"))
    assert {"load1", "load5", "load15", "uptime"} <= fields("system")
    assert {"n_cpus"} <= fields("system")
    assert {
        "total",
        "available",
        "used",
        "free",
        "buffered",
        "cached",
        "available_percent",
        "used_percent",
    } == fields("mem")
    assert {"total", "free", "used", "in", "out", "used_percent"} == fields("swap")
    assert {
        "bytes_recv",
        "bytes_sent",
        "packets_recv",
        "packets_sent",
        "err_in",
        "err_out",
        "drop_in",
        "drop_out",
    } == fields("net", ("interface", "eth0"))
    assert {
        "read_bytes",
        "write_bytes",
        "reads",
        "writes",
        "read_time",
        "write_time",
        "io_time",
    } == fields("diskio", ("name", "nvme0n1"))
    assert {
        "total",
        "free",
        "used",
        "used_percent",
        "inodes_total",
        "inodes_free",
        "inodes_used",
    } == fields("disk", ("path", "/"), ("device", "sda1"), ("fstype", "ext4"))
    for suffix in ("input", "max", "crit"):
        assert fields("temp", ("sensor", f"coretemp_package_id_0_{suffix}")) == {"temp"}
    assert fields("kernel") == {"boot_time"}
    measurements = {measurement for measurement, _ in found}
    assert {"cpu", "mem", "swap", "disk", "diskio", "net", "system", "temp"} <= measurements
    # Nothing of Prometheus' names leaks into line protocol, and only line protocol gets these.
    assert not any(m.startswith(("node_", "fleet_agent")) for m in measurements)
    assert {s.sink for s in first} == {SINK_LINE_PROTOCOL}


def test_telegraf_cpu_usage_is_computed_from_two_readings() -> None:
    naming = HostNaming("h")
    out: list[Sample] = []
    before = {m: 0.0 for m in CPU_MODES}
    after = {**before, "user": 30.0, "idle": 60.0, "system": 10.0, "guest": 5.0}
    naming.map(reading("cpu", dict(before), {"cpu": "total"}, CPU_MODES, NS), out)
    naming.map(reading("cpu", dict(after), {"cpu": "total"}, CPU_MODES, NS + 10**10), out)
    first, second = (s for s in out if s.sink == SINK_LINE_PROTOCOL)
    assert not any(k.startswith("usage_") for k in first.fields)
    assert second.fields["usage_user"] == pytest.approx(30.0)
    assert second.fields["usage_idle"] == pytest.approx(60.0)
    assert second.fields["usage_system"] == pytest.approx(10.0)


def test_telegraf_integer_fields_are_written_as_integers() -> None:
    encoded = "\n".join(lines(mapped(every_kind())))
    assert re.search(r"^mem,host=pve1 .*\btotal=1000i\b", encoded, re.M)
    assert re.search(r"^net,host=pve1,interface=eth0 .*\bbytes_recv=10i\b", encoded, re.M)
    assert re.search(r"^system,host=pve1 .*\bload1=1\.5\b", encoded, re.M)


def test_an_unknown_measurement_keeps_its_shape_under_the_host() -> None:
    ups = [reading("ups_battery", {"size_bytes": 5, "health": "ONLINE"}, {"ups": "apc"})]
    out = mapped(ups)
    names = exposition(ups)
    assert names["fleet_agent_ups_battery_size_bytes"] == [{"host": "pve1", "ups": "apc"}]
    assert lines(out) == [f'ups_battery,host=pve1,ups=apc size_bytes=5.0,health="ONLINE" {NS}']


def promtool_problems(text: str) -> list[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    return sorted(line for line in (result.stdout + result.stderr).splitlines() if line)


def test_promtool_accepts_all_but_node_exporters_own_camel_case_memory_names() -> None:
    # With an unknown measurement, a counter among it, and the host's status.
    extra = reading("ups_battery", {"size_bytes": 5, "read_ops": 7}, {"ups": "apc"}, ("read_ops",))
    text = prometheus_text([*every_kind(), extra])
    assert '\nfleet_agent_up{host="pve1"} 1.0\n' in text
    assert '\nfleet_agent_batches_received_total{host="pve1"} 1.0\n' in text
    assert '\nfleet_agent_ups_battery_read_ops_total{host="pve1",ups="apc"} 7.0\n' in text
    # promtool calls a name camelCase where a lower-case letter meets an upper-case one:
    # node_memory_Buffers_bytes and node_memory_Cached_bytes pass, these five do not.
    camel = [
        "node_memory_MemAvailable_bytes",
        "node_memory_MemFree_bytes",
        "node_memory_MemTotal_bytes",
        "node_memory_SwapFree_bytes",
        "node_memory_SwapTotal_bytes",
    ]
    assert all(f"\n{name}{{" in text for name in camel)
    assert "\nnode_memory_Buffers_bytes{" in text
    assert promtool_problems(text) == [
        f"{name} metric names should be written in 'snake_case' not 'camelCase'" for name in camel
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "cpu",
            "load",
            "memory",
            "swap",
            "network",
            "disk",
            "filesystem",
            "temperature",
            "fan",
            "host",
            "collector",
            "other",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["cpu", "device", "mountpoint", "fstype", "chip", "sensor", "os", "x"]),
        st.text(max_size=10),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "user",
                "idle",
                "load1",
                "total_bytes",
                "receive_bytes",
                "read_bytes",
                "size_bytes",
                "celsius",
                "rpm",
                "boot_time_seconds",
                "cpus",
                "success",
                "free_bytes",
                "files",
                "read_time_seconds",
                "io_time_seconds",
                "transmit_bytes",
                "written_bytes",
                "y",
            ]
        ),
        st.one_of(
            st.integers(-(2**65), 2**65),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.text(max_size=5),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_any_reading_maps_without_raising_and_names_its_host(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    naming = HostNaming("h")
    out: list[Sample] = []
    for _ in range(2):  # the second reading exercises the previous-value paths
        naming.map(Sample(measurement, tags, fields, NS), out)
    for sample in out:
        assert sample.sink == SINK_LINE_PROTOCOL
        assert sample.tags["host"] == "h"
    # The hub's fast path (lines without samples) writes exactly what the samples encode to.
    direct: list[str] = []
    fast, encoder = HostNaming("h"), LineEncoder()
    for _ in range(2):
        fast.lines([Sample(measurement, tags, fields, NS)], encoder, direct)
    assert direct == lines(out)
    reading_ = Sample(measurement, tags, fields, NS)
    names = exposition([reading_], host="h")
    assert all(labels.get("host") == "h" for sets in names.values() for labels in sets)
    lines(out)


DEVICE_FIELDS = {
    "network": ["receive_bytes", "transmit_bytes", "receive_packets", "transmit_errs",
                "receive_drop", "other"],
    "disk": ["read_bytes", "written_bytes", "reads_completed", "writes_completed",
             "read_time_seconds", "write_time_seconds", "io_time_seconds", "other"],
}  # fmt: skip
device_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False),
    st.floats(),  # the general path's NaN and infinities, for a Sample made in process
    st.booleans(),
    st.text(max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(DEVICE_FIELDS)), st.text(max_size=6), st.data())
def test_device_lines_compiled_per_series_are_those_of_the_general_path(
    measurement: str, device: str, data: st.DataObject
) -> None:
    """Several readings of one series (names in any order and subset, values of any kind,
    a device with ``%`` or spaces in its name): the compiled format writes what the
    general path writes, or leaves the reading to it."""
    names = data.draw(st.lists(st.sampled_from(DEVICE_FIELDS[measurement]), unique=True,
                               min_size=1))  # fmt: skip
    fast, general = HostNaming("h"), HostNaming("h")
    direct: list[str] = []
    out: list[Sample] = []
    for _ in range(3):
        fields = {name: data.draw(device_values) for name in names}
        reading = Sample(measurement, {"device": device}, fields, NS)
        fast.lines([reading], LineEncoder(), direct)
        general.map(reading, out)
    assert direct == lines(out)


def test_an_all_integer_device_reading_is_written_by_its_compiled_format() -> None:
    plan = DeviceLines()
    reading = Sample("disk", {"device": "sd%a"}, {"read_bytes": 7, "read_time_seconds": 1.5}, NS)
    line = plan.line("diskio,host=h,name=sd%a", reading, {"read_bytes": "read_bytes="},
                     {"read_time_seconds": "read_time="})  # fmt: skip
    assert line == f"diskio,host=h,name=sd%a read_bytes=7i,read_time=1500i {NS}"
    floated = Sample("disk", {"device": "sd%a"}, {"read_bytes": 7.0}, NS)
    assert plan.line("diskio,host=h,name=sd%a", floated, {"read_bytes": "read_bytes="}, {}) is None
