"""Collectors: recorded psutil results in, Samples out; and once against this machine."""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent.collectors import (
    COLLECTORS,
    Collector,
    CollectorRun,
    CollectorSettings,
    Patterns,
    build,
)
from custom_components.fleet_metrics.core.agent.collectors.base import DEFAULT_NET_EXCLUDE
from custom_components.fleet_metrics.core.agent.collectors.cpu import MODES, cpu_samples
from custom_components.fleet_metrics.core.agent.collectors.diskstats import (
    disk_samples,
    is_partition,
)
from custom_components.fleet_metrics.core.agent.collectors.filesystem import (
    filesystem_sample,
    select_mounts,
)
from custom_components.fleet_metrics.core.agent.collectors.hostinfo import (
    host_sample,
    parse_cpu_model,
    parse_os_release,
    parse_pveversion,
)
from custom_components.fleet_metrics.core.agent.collectors.hwmon import (
    fan_samples,
    temperature_samples,
)
from custom_components.fleet_metrics.core.agent.collectors.loadavg import load_sample
from custom_components.fleet_metrics.core.agent.collectors.meminfo import (
    memory_sample,
    swap_sample,
)
from custom_components.fleet_metrics.core.agent.collectors.netdev import network_samples
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from custom_components.fleet_metrics.core.agent.protocol import Batch, decode, encode
from custom_components.fleet_metrics.core.sample import Sample

FIXTURES = Path(__file__).parents[2] / "fixtures" / "agent"
NOW = 1_700_000_000_000_000_000
DEFAULTS = CollectorSettings()


def _tuple(name: str, value: dict[str, Any]) -> Any:
    """A namedtuple like psutil's: the collectors use attribute access only."""
    return namedtuple(name, list(value))(**value)


def _tuples(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {key: _tuple(name, value) for key, value in values.items()}


def _sensors(name: str, chips: dict[str, list[dict[str, Any]]] | None) -> Any:
    if chips is None:
        return None
    return {chip: [_tuple(name, sensor) for sensor in sensors] for chip, sensors in chips.items()}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(params=["pve-host", "linux-vm"])
def host(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def _all_samples(raw: dict[str, Any], settings_: CollectorSettings = DEFAULTS) -> list[Sample]:
    """Every pure function over one recorded host, as the collectors would call them."""
    samples = cpu_samples(
        _tuple("scputimes", raw["cpu_times"]),
        [_tuple("scputimes", cpu) for cpu in raw["cpu_times_percpu"]],
        NOW,
    )
    samples += [load_sample(raw["loadavg"], NOW)]
    samples += [memory_sample(_tuple("svmem", raw["virtual_memory"]), NOW)]
    samples += [swap_sample(_tuple("sswap", raw["swap_memory"]), NOW)]
    samples += network_samples(
        _tuples("snetio", raw["net_io_counters"]), settings_.net_devices, NOW
    )[0]
    samples += disk_samples(
        _tuples("sdiskio", raw["disk_io_counters"]),
        settings_.disk_devices,
        settings_.disk_partitions,
        NOW,
    )[0]
    mounts, _ = select_mounts(
        [_tuple("sdiskpart", part) for part in raw["disk_partitions"]],
        settings_.fs_fstypes,
        settings_.fs_mountpoints,
    )
    samples += [
        filesystem_sample(part, _tuple("statvfs", raw["statvfs"][part.mountpoint]), NOW)
        for part in mounts
    ]
    samples += temperature_samples(_sensors("shwtemp", raw["sensors_temperatures"]), NOW)[0]
    samples += fan_samples(_sensors("sfan", raw["sensors_fans"]), NOW)[0]
    return samples


# --- cpu, load, memory ------------------------------------------------------------------------


def test_cpu_total_and_per_cpu_are_counters_of_every_mode(host: dict[str, Any]) -> None:
    per_cpu = [_tuple("scputimes", cpu) for cpu in host["cpu_times_percpu"]]
    samples = cpu_samples(_tuple("scputimes", host["cpu_times"]), per_cpu, NOW)
    assert [s.tags["cpu"] for s in samples] == ["total"] + [str(i) for i in range(len(per_cpu))]
    for sample, raw in zip(samples, [host["cpu_times"], *host["cpu_times_percpu"]], strict=True):
        assert dict(sample.fields) == {mode: raw[mode] for mode in MODES}
        assert sample.counters == frozenset(MODES)
        assert all(isinstance(value, float) for value in sample.fields.values())


def test_cpu_leaves_out_modes_a_platform_lacks() -> None:
    mac = _tuple("scputimes", {"user": 1.0, "nice": 0.0, "system": 2.0, "idle": 3.0})
    (sample,) = cpu_samples(mac, [], NOW)
    assert set(sample.fields) == sample.counters == {"user", "nice", "system", "idle"}


def test_load_memory_and_swap_carry_the_recorded_values(host: dict[str, Any]) -> None:
    load_ = load_sample(host["loadavg"], NOW)
    assert [load_.fields[k] for k in ("load1", "load5", "load15")] == host["loadavg"]
    memory = memory_sample(_tuple("svmem", host["virtual_memory"]), NOW)
    raw = host["virtual_memory"]
    assert memory.fields["total_bytes"] == raw["total"]
    assert memory.fields["available_bytes"] == raw["available"]
    assert memory.fields["used_bytes"] == raw["used"]
    assert memory.fields["cached_bytes"] == raw["cached"]
    assert not memory.counters
    swap = swap_sample(_tuple("sswap", host["swap_memory"]), NOW)
    assert swap.fields["total_bytes"] == host["swap_memory"]["total"]
    assert swap.fields["sout_bytes"] == host["swap_memory"]["sout"]
    assert swap.counters == {"sin_bytes", "sout_bytes"}


# --- network ----------------------------------------------------------------------------------


def test_network_skips_loopback_and_guest_interfaces_by_default() -> None:
    pernic = _tuples("snetio", load("pve-host")["net_io_counters"])
    samples, left_out = network_samples(pernic, DEFAULTS.net_devices, NOW)
    assert [s.tags["device"] for s in samples] == ["enp3s0", "vmbr0", "vmbr1", "wg0"]
    assert left_out == 0
    enp = samples[0]
    assert enp.fields["receive_bytes"] == 812_345_678_901
    assert enp.fields["receive_drop"] == 1532
    assert enp.counters == set(enp.fields)


def test_network_include_and_cap_count_what_is_left_out() -> None:
    pernic = _tuples("snetio", load("pve-host")["net_io_counters"])
    samples, left_out = network_samples(pernic, Patterns(include=("tap*", "veth*")), NOW)
    assert [s.tags["device"] for s in samples] == ["tap100i0", "tap101i0", "veth200i0", "veth201i0"]
    samples, left_out = network_samples(pernic, Patterns(), NOW, cap=5)
    assert len(samples) == 5
    assert left_out == len(pernic) - 5


interface_names = st.text(alphabet="abcdefilnoprtvw0123456789*?", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    name=interface_names.filter(lambda n: "*" not in n and "?" not in n),
    include=st.lists(interface_names, max_size=3),
    exclude=st.lists(interface_names, max_size=3),
)
def test_patterns_match_what_fnmatch_says(
    name: str, include: list[str], exclude: list[str]
) -> None:
    expected = (not include or any(fnmatch.fnmatchcase(name, p) for p in include)) and not any(
        fnmatch.fnmatchcase(name, p) for p in exclude
    )
    assert Patterns(tuple(include), tuple(exclude)).allows(name) is expected


def test_default_interface_excludes_are_the_ones_the_issue_names() -> None:
    assert set(DEFAULT_NET_EXCLUDE) == {"lo", "veth*", "tap*", "fwbr*", "fwpr*", "fwln*"}


# --- disks ------------------------------------------------------------------------------------


def test_disks_are_whole_physical_disks_by_default() -> None:
    perdisk = _tuples("sdiskio", load("pve-host")["disk_io_counters"])
    samples, _ = disk_samples(perdisk, DEFAULTS.disk_devices, False, NOW)
    assert [s.tags["device"] for s in samples] == ["md0", "nvme0n1", "sda", "sdb"]
    nvme = samples[1]
    assert nvme.fields["read_bytes"] == 300_000_000_000
    assert nvme.fields["written_bytes"] == 900_000_000_000
    assert nvme.fields["write_time_seconds"] == pytest.approx(9800.0)
    assert nvme.fields["io_time_seconds"] == pytest.approx(3000.0)
    assert nvme.counters == set(nvme.fields)


def test_disk_partitions_and_device_mapper_when_asked() -> None:
    perdisk = _tuples("sdiskio", load("pve-host")["disk_io_counters"])
    samples, _ = disk_samples(perdisk, Patterns(exclude=("loop*",)), True, NOW)
    names = {s.tags["device"] for s in samples}
    assert {"nvme0n1p3", "sda1", "sdb1", "dm-0", "zd16p1"} <= names
    assert "loop0" not in names


def test_disks_on_the_recorded_vm_skip_loop_and_zram() -> None:
    perdisk = _tuples("sdiskio", load("linux-vm")["disk_io_counters"])
    samples, _ = disk_samples(perdisk, DEFAULTS.disk_devices, False, NOW)
    assert [s.tags["device"] for s in samples] == ["vda"]


disk_stems = st.sampled_from(["sd", "vd", "xvd", "hd"]).flatmap(
    lambda prefix: st.text(alphabet="abcdefgz", min_size=1, max_size=2).map(prefix.__add__)
)
numbered_stems = st.builds(
    "{}{}n{}".format, st.sampled_from(["nvme", "nbd"]), st.integers(0, 20), st.integers(1, 9)
) | st.builds("mmcblk{}".format, st.integers(0, 9))


@settings(max_examples=200, deadline=None)
@given(disk=disk_stems | numbered_stems, number=st.integers(1, 128))
def test_a_partition_is_recognised_only_beside_its_disk(disk: str, number: int) -> None:
    partition = f"{disk}p{number}" if disk[-1].isdigit() else f"{disk}{number}"
    assert is_partition(partition, {disk, partition})
    assert not is_partition(partition, {partition})  # no disk listed: report it
    assert not is_partition(disk, {disk, partition})


# --- filesystems ------------------------------------------------------------------------------


def test_filesystems_skip_subvols_and_squashfs_and_report_a_bind_mount_once() -> None:
    raw = load("pve-host")
    parts = [_tuple("sdiskpart", part) for part in raw["disk_partitions"]]
    assert sum("subvol-" in p.mountpoint for p in parts) == 41
    mounts, left_out = select_mounts(parts, DEFAULTS.fs_fstypes, DEFAULTS.fs_mountpoints)
    assert [m.mountpoint for m in mounts] == [
        "/",
        "/boot/efi",
        "/mnt/backup",  # /dev/sdb1, also bind-mounted twice below longer paths
        "/rpool",
        "/rpool/data",
        "/srv/raid",
        "/tank/media",
        "/var/lib/vz",
    ]
    assert left_out == 0
    sample = filesystem_sample(mounts[2], _tuple("statvfs", raw["statvfs"]["/mnt/backup"]), NOW)
    assert dict(sample.tags) == {
        "device": "/dev/sdb1",
        "mountpoint": "/mnt/backup",
        "fstype": "ext4",
    }
    assert sample.fields["size_bytes"] == 900_000_000 * 4096
    assert sample.fields["free_bytes"] == 500_000_000 * 4096
    assert sample.fields["avail_bytes"] == 454_000_000 * 4096
    assert sample.fields["files_free"] == 119_000_000


def test_filesystems_by_name_pattern_and_cap() -> None:
    parts = [_tuple("sdiskpart", part) for part in load("pve-host")["disk_partitions"]]
    mounts, _ = select_mounts(parts, Patterns(), Patterns(include=("/rpool/data/subvol-2*",)))
    assert len(mounts) == 40
    mounts, left_out = select_mounts(parts, Patterns(), Patterns(), cap=10)
    assert len(mounts) == 10
    assert left_out == len(parts) - 2 - 10  # two bind mounts folded into /mnt/backup


def test_pseudo_filesystems_of_the_same_name_are_not_folded_together() -> None:
    parts = [
        _tuple("sdiskpart", {"device": "tmpfs", "mountpoint": mp, "fstype": "tmpfs", "opts": ""})
        for mp in ("/run", "/dev/shm", "/tmp")
    ]
    mounts, _ = select_mounts(parts, Patterns(include=("tmpfs",)), Patterns())
    assert [m.mountpoint for m in mounts] == ["/dev/shm", "/run", "/tmp"]
    mounts, _ = select_mounts(parts, DEFAULTS.fs_fstypes, DEFAULTS.fs_mountpoints)
    assert mounts == []


# --- temperatures and fans --------------------------------------------------------------------


def test_temperatures_name_every_sensor_once() -> None:
    raw = load("pve-host")
    samples, left_out = temperature_samples(_sensors("shwtemp", raw["sensors_temperatures"]), NOW)
    names = [(s.tags["chip"], s.tags["sensor"]) for s in samples]
    assert len(names) == len(set(names)) == 13
    assert ("coretemp", "Core 0") in names
    assert ("coretemp", "Core 0_2") in names  # second socket, merged by psutil
    assert ("acpitz", "temp1") in names
    assert ("acpitz", "temp2") in names
    acpitz = next(s for s in samples if s.tags == {"chip": "acpitz", "sensor": "temp1"})
    assert dict(acpitz.fields) == {"celsius": 27.8}
    package = next(s for s in samples if s.tags["sensor"] == "Package id 0")
    assert dict(package.fields) == {
        "celsius": 54.0,
        "high_celsius": 80.0,
        "critical_celsius": 100.0,
    }
    assert left_out == 0
    fans, _ = fan_samples(_sensors("sfan", raw["sensors_fans"]), NOW)
    assert [(s.tags["sensor"], s.fields["rpm"]) for s in fans] == [
        ("fan1", 1180),
        ("fan2", 0),
        ("CPU_FAN", 950),
    ]


def test_no_sensors_and_no_sensor_support_give_nothing() -> None:
    raw = load("linux-vm")
    assert raw["sensors_temperatures"] == {}
    assert temperature_samples(_sensors("shwtemp", raw["sensors_temperatures"]), NOW) == ([], 0)
    assert temperature_samples(None, NOW) == ([], 0)  # psutil without the function
    assert fan_samples(None, NOW) == ([], 0)


def test_temperatures_skip_unreadable_values_and_cap() -> None:
    shwtemp = namedtuple("shwtemp", "label current high critical")
    chips = {"x": [shwtemp("a", math.nan, None, None), shwtemp("b", 40.0, math.inf, None)]}
    samples, _ = temperature_samples(chips, NOW)
    assert [dict(s.fields) for s in samples] == [{"celsius": 40.0}]
    chips = {"x": [shwtemp(f"s{i}", 30.0 + i, None, None) for i in range(10)]}
    samples, left_out = temperature_samples(chips, NOW, cap=4)
    assert (len(samples), left_out) == (4, 6)


# --- host info --------------------------------------------------------------------------------


def test_host_info_from_the_recorded_texts() -> None:
    raw = load("pve-host")
    assert parse_os_release(raw["os_release"]) == "Debian GNU/Linux 12 (bookworm)"
    assert parse_cpu_model(raw["cpuinfo"]) == "Intel(R) Core(TM) i5-8500T CPU @ 2.10GHz"
    assert parse_pveversion(raw["pveversion"]) == "8.2.4"
    sample = host_sample(
        os_name="Debian GNU/Linux 12 (bookworm)",
        kernel="6.8.8-2-pve",
        cpu_model=parse_cpu_model(raw["cpuinfo"]),
        cpus=4,
        boot_time=1_700_000_000.0,
        agent_version="0.1.0",
        pve_version=parse_pveversion(raw["pveversion"]),
        time_ns=NOW,
    )
    assert sample.tags["pve_version"] == "8.2.4"
    assert dict(sample.fields) == {"boot_time_seconds": 1_700_000_000.0, "cpus": 4}
    plain = host_sample(
        os_name="x",
        kernel="k",
        cpu_model="",
        cpus=None,
        boot_time=1.0,
        agent_version="v",
        pve_version="",
        time_ns=NOW,
    )
    assert "pve_version" not in plain.tags
    assert dict(plain.fields) == {"boot_time_seconds": 1.0}


@pytest.mark.parametrize(
    ("text", "model"),
    [
        (
            "processor\t: 0\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
            "BCM2835",
        ),
        (
            "processor\t: 0\nBogoMIPS\t: 108.00\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
            "Raspberry Pi 5 Model B Rev 1.0",
        ),
        ("processor\t: 0\ncpu model\t: MIPS 24Kc V7.4\n", "MIPS 24Kc V7.4"),
        ("", ""),
    ],
)
def test_cpu_model_on_other_architectures(text: str, model: str) -> None:
    assert parse_cpu_model(text) == model


def test_os_release_without_pretty_name_and_pveversion_garbage() -> None:
    assert parse_os_release('NAME="Alpine Linux"\nVERSION_ID=3.20.1\n') == "Alpine Linux 3.20.1"
    assert parse_os_release("") == ""
    assert parse_pveversion("command not found") == ""


# --- one run of a collector -------------------------------------------------------------------


class _Flaky(Collector):
    name = "flaky"
    tier = "fast"

    def __init__(self, settings_: CollectorSettings) -> None:
        super().__init__(settings_)
        self.broken = True

    def collect(self, time_ns: int) -> list[Sample]:
        if self.broken:
            raise OSError(5, "Input/output error")
        return [Sample("load", {}, {"load1": 1.0, "odd": math.nan}, time_ns)]


def test_a_failing_collector_reports_failure_is_logged_once_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = CollectorRun(_Flaky(DEFAULTS))
    with caplog.at_level(logging.INFO):
        runs = [flaky(NOW) for _ in range(3)]
    assert all(len(run) == 1 and run[0].fields["success"] == 0 for run in runs)
    assert runs[0][0].tags == {"collector": "flaky"}
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert "Input/output error" in failures[0].getMessage()
    flaky.collector.broken = False  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO):
        samples = flaky(NOW)
    assert [s.measurement for s in samples] == ["load", "collector"]
    assert dict(samples[0].fields) == {"load1": 1.0}  # NaN left out: JSON cannot carry it
    assert samples[1].fields["success"] == 1
    assert any("works again" in r.getMessage() for r in caplog.records)


class _Wild(Collector):
    """Gives whatever fields it is handed: a parser that let a wild number through."""

    name = "wild"
    tier = "medium"

    def __init__(self, settings_: CollectorSettings, fields: dict[str, Any]) -> None:
        super().__init__(settings_)
        self.fields = fields

    def collect(self, time_ns: int) -> list[Sample]:
        return [
            Sample("zfs_pool", {"pool": "tank"}, self.fields, time_ns),
            Sample("zfs_arc", {}, {"size_bytes": 1}, time_ns),
        ]


@given(
    st.dictionaries(
        st.sampled_from(["size_bytes", "free_bytes", "errors", "ratio", "health"]),
        st.integers(-(2**70), 2**70)
        | st.sampled_from([2**64, 2**64 - 1, -(2**63), -(2**63) - 1, 10**30])
        | st.floats()
        | st.text(max_size=3),
        min_size=1,
    )
)
@settings(max_examples=150, deadline=None)
def test_a_value_json_cannot_carry_is_left_out_and_the_batch_still_encodes(
    fields: dict[str, Any],
) -> None:
    """zpool list printing 10**23 bytes or pvesh a mem of 1e30: the value is left out and
    counted, the rest of the run reaches the server (orjson refuses ints beyond 64 bits, so
    one such value would lose the tier's whole batch, run after run)."""
    run = CollectorRun(_Wild(DEFAULTS, fields))
    samples = run(NOW)
    batch = decode(encode(Batch(1, NOW / 1e9, tuple(samples))))
    assert isinstance(batch, Batch) and batch.samples == tuple(samples)
    unsendable = [
        key
        for key, value in fields.items()
        if (type(value) is int and not -(2**63) <= value < 2**64)
        or (type(value) is float and not math.isfinite(value))
    ]
    assert run.dropped_values == len(unsendable)
    pools = [s for s in samples if s.measurement == "zfs_pool"]
    assert [dict(s.fields) for s in pools] == (
        [{k: v for k, v in fields.items() if k not in unsendable}]
        if len(unsendable) < len(fields)
        else []
    )
    assert samples[-1].fields["success"] == 1


def test_every_recorded_host_encodes_into_batches_the_server_accepts(host: dict[str, Any]) -> None:
    samples = _all_samples(host, CollectorSettings(per_cpu=True))
    outbox = Outbox(10)
    outbox.add(time.time(), samples)
    assert outbox.bad_samples == 0
    (frame,) = list(outbox.after(0))
    batch = decode(frame.text)
    assert isinstance(batch, Batch)
    assert batch.samples == tuple(samples)


# --- this machine -----------------------------------------------------------------------------


def test_every_collector_runs_on_this_machine() -> None:
    tiers = build(
        dict.fromkeys(COLLECTORS, True), CollectorSettings(per_cpu=True, agent_version="t")
    )
    assert sum(len(runs) for runs in tiers.values()) == len(COLLECTORS)
    seen: dict[str, list[Sample]] = {}
    for runs in tiers.values():
        for run in runs:
            for sample in run(time.time_ns()):
                seen.setdefault(sample.measurement, []).append(sample)
    outcome = {s.tags["collector"]: s.fields["success"] for s in seen["collector"]}
    assert outcome == dict.fromkeys(COLLECTORS, 1)
    assert {"cpu", "load", "memory", "swap", "filesystem", "host"} <= set(seen)
    cpus = [str(index) for index in range(psutil.cpu_count())]
    assert [s.tags["cpu"] for s in seen["cpu"]] == ["total", *cpus]
    (host_,) = seen["host"]
    assert host_.tags["agent_version"] == "t"
    assert host_.fields["boot_time_seconds"] < time.time()
    assert any(s.tags["mountpoint"] == "/" for s in seen["filesystem"])
    outbox = Outbox(10)
    outbox.add(time.time(), [s for group in seen.values() for s in group])
    assert outbox.bad_samples == 0
    assert len(outbox) == 1


def test_the_registry_has_one_tier_each_and_build_honours_switches() -> None:
    assert {name: entry.tier for name, entry in COLLECTORS.items()} == {
        "cpu": "fast",
        "loadavg": "fast",
        "meminfo": "fast",
        "netdev": "fast",
        "diskstats": "fast",
        "filesystem": "medium",
        "hwmon": "medium",
        "hostinfo": "slow",
        "zfs": "medium",
        "pve": "medium",
        "pve_backup": "slow",
    }
    tiers = build({"hwmon": False, "cpu": False}, DEFAULTS)
    assert [run.collector.name for run in tiers["medium"]] == ["filesystem"]
    assert "cpu" not in [run.collector.name for run in tiers["fast"]]
