"""The HA-free derivation of a host's values (agents/readings.py): garbled numbers, counters
that reset or arrive out of order, partial readings, and the caps on names from the wire."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.agents.readings import MAX_PER_KIND, HostReadings, number
from custom_components.fleet_metrics.core.sample import Sample

S = 1_000_000_000  # ns per second


def net(device: str, rx: float, tx: float, second: float) -> Sample:
    fields = {"receive_bytes": rx, "transmit_bytes": tx}
    return Sample("network", {"device": device}, fields, int(second * S))


@settings(max_examples=200, deadline=None)
@given(st.integers())
def test_number_of_any_int_is_its_float_or_none_when_too_large(value: int) -> None:
    try:
        expected: float | None = float(value)
    except OverflowError:
        expected = None
    assert number(value) == expected


@settings(max_examples=200, deadline=None)
@given(st.floats() | st.booleans() | st.text(max_size=5) | st.none())
def test_number_is_finite_or_none(value: float | bool | str | None) -> None:
    result = number(value)
    if isinstance(value, float) and math.isfinite(value):
        assert result == value
    else:
        assert result is None  # NaN, ±inf, bools and text are no reading


def test_a_counter_too_large_for_a_float_gives_no_rate() -> None:
    host = HostReadings()
    host.apply([Sample("disk", {"device": "sda"}, {"read_bytes": 10**400}, S)])
    host.apply([Sample("disk", {"device": "sda"}, {"read_bytes": 10**400 + 1}, 2 * S)])
    assert host.disk_read == {}


def test_rates_skip_resets_out_of_order_and_missing_counters() -> None:
    host = HostReadings()
    host.apply([net("eno1", 1000, 500, 10)])
    assert host.network_in == {}  # the first reading has nothing to compare with
    host.apply([net("eno1", 3000, 900, 12)])
    assert (host.network_in["eno1"], host.network_out["eno1"]) == (1000.0, 200.0)
    # The counter went back (reboot, agent restart): no rate, the last one stays shown...
    host.apply([net("eno1", 100, 50, 14)])
    assert (host.network_in["eno1"], host.network_out["eno1"]) == (1000.0, 200.0)
    # ...and the next reading counts from the new base.
    host.apply([net("eno1", 500, 250, 16)])
    assert (host.network_in["eno1"], host.network_out["eno1"]) == (200.0, 100.0)
    # The same time again, or an older one: no rate from a zero or negative interval.
    host.apply([net("eno1", 9000, 9000, 16)])
    host.apply([net("eno1", 99000, 99000, 15)])
    assert (host.network_in["eno1"], host.network_out["eno1"]) == (200.0, 100.0)
    # The next rate counts from the last reading received (99000 at 15 s); one without
    # the transmit counter leaves that rate as it was.
    host.apply([Sample("network", {"device": "eno1"}, {"receive_bytes": 101000}, 17 * S)])
    assert host.network_in["eno1"] == 1000.0
    assert host.network_out["eno1"] == 100.0
    assert host.dropped == 0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(-5, 5)),
        min_size=2,
        max_size=12,
    )
)
def test_a_rate_is_never_negative_nor_from_a_non_positive_interval(
    steps: list[tuple[int, int]],
) -> None:
    """Whatever order counters and times arrive in, a shown rate is the increase over the
    time since the previous reading, never negative."""
    host = HostReadings()
    second = 100
    previous: tuple[int, int] | None = None
    for value, dt in steps:
        second += dt
        before = host.disk_read.get("sda")
        host.apply([Sample("disk", {"device": "sda"}, {"read_bytes": value}, second * S)])
        after = host.disk_read.get("sda")
        if previous is not None and second > previous[1] and value >= previous[0]:
            assert after == round((value - previous[0]) / (second - previous[1]), 2)
        else:
            assert after == before
        previous = (value, second)


def test_new_counters_beyond_the_cap_are_counted_and_known_ones_still_update() -> None:
    host = HostReadings()
    # Two counters per interface; 4 * MAX_PER_KIND counters fill the counter map.
    interfaces = [f"veth{i}" for i in range(2 * MAX_PER_KIND)]
    host.apply([net(name, 0, 0, 1) for name in interfaces])
    assert host.dropped == 0
    host.apply([Sample("disk", {"device": "sdz"}, {"read_bytes": 0, "written_bytes": 0}, S)])
    assert host.dropped == 2  # both of the newcomer's counters
    host.apply([Sample("disk", {"device": "sdz"}, {"read_bytes": 9, "written_bytes": 9}, 2 * S)])
    assert host.disk_read == {} and host.dropped == 4
    # Rates of the interfaces already followed: the first MAX_PER_KIND fit the rate maps.
    host.apply([net(name, 100, 100, 2) for name in interfaces])
    assert len(host.network_in) == len(host.network_out) == MAX_PER_KIND
    assert host.network_in["veth0"] == 100.0
    assert host.dropped == 4 + 2 * MAX_PER_KIND
    # A known interface still updates when the map is full.
    host.apply([net("veth0", 400, 100, 3)])
    assert host.network_in["veth0"] == 300.0
    assert host.dropped == 4 + 2 * MAX_PER_KIND


def test_filesystems_and_temperatures_beyond_the_cap_are_counted() -> None:
    host = HostReadings()

    def filesystem(mount: str, free: int) -> Sample:
        fields = {"size_bytes": 100, "free_bytes": free, "avail_bytes": free}
        return Sample("filesystem", {"mountpoint": mount}, fields, S)

    def temperature(sensor: str, celsius: float) -> Sample:
        return Sample("temperature", {"chip": "nvme", "sensor": sensor}, {"celsius": celsius}, S)

    host.apply([filesystem(f"/mnt/{i}", 50) for i in range(MAX_PER_KIND + 3)])
    host.apply([temperature(f"t{i}", 40.0) for i in range(MAX_PER_KIND + 2)])
    assert len(host.filesystem_used_percent) == len(host.temperatures) == MAX_PER_KIND
    assert "/mnt/64" not in host.filesystem_used_percent
    assert ("nvme", "t64") not in host.temperatures
    assert host.dropped == 3 + 2
    host.apply([filesystem("/mnt/0", 25), temperature("t0", 55.5)])  # known: still updated
    assert host.filesystem_used_percent["/mnt/0"] == 75.0
    assert host.temperatures[("nvme", "t0")] == 55.5
    assert host.dropped == 5


def test_per_core_cpu_samples_do_not_disturb_the_total() -> None:
    host = HostReadings()

    def cpu(name: str, busy: float, idle: float, second: int) -> Sample:
        return Sample("cpu", {"cpu": name}, {"user": busy, "idle": idle}, second * S)

    host.apply([cpu("total", 0, 0, 1), cpu("cpu0", 1000, 0, 1)])
    host.apply([cpu("cpu0", 5000, 0, 2), cpu("total", 10, 30, 2)])
    assert host.cpu_percent == 25.0  # cpu0 (100 % busy) counted neither time


def test_partial_readings_keep_the_last_complete_values() -> None:
    """A reading missing a field it needs (or with a garbled one) changes nothing: the
    sensors keep their last value instead of showing a wrong one."""
    host = HostReadings()
    host.apply(
        [
            Sample("memory", {}, {"total_bytes": 100, "available_bytes": 25}, S),
            Sample("swap", {}, {"total_bytes": 100, "free_bytes": 90}, S),
            Sample(
                "filesystem",
                {"mountpoint": "/"},
                {"size_bytes": 100, "free_bytes": 60, "avail_bytes": 60},
                S,
            ),
            Sample("temperature", {"chip": "coretemp", "sensor": "Core 0"}, {"celsius": 50}, S),
        ]
    )
    before = (
        host.memory_used_percent,
        host.memory_total_bytes,
        host.swap_used_percent,
        dict(host.filesystem_used_percent),
        dict(host.temperatures),
    )
    assert before[0] == 75.0 and before[2] == 10.0
    host.apply(
        [
            Sample("memory", {}, {"total_bytes": 200}, 2 * S),
            Sample("memory", {}, {"total_bytes": 200, "available_bytes": math.nan}, 2 * S),
            Sample("swap", {}, {"free_bytes": 0}, 2 * S),
            Sample("filesystem", {"mountpoint": "/"}, {"size_bytes": 100, "free_bytes": 1}, 2 * S),
            Sample("filesystem", {}, {"size_bytes": 1, "free_bytes": 1, "avail_bytes": 1}, 2 * S),
            Sample("temperature", {"chip": "coretemp", "sensor": "Core 0"}, {}, 2 * S),
            Sample("temperature", {"chip": "coretemp"}, {"celsius": 99}, 2 * S),
        ]
    )
    after = (
        host.memory_used_percent,
        host.memory_total_bytes,
        host.swap_used_percent,
        dict(host.filesystem_used_percent),
        dict(host.temperatures),
    )
    assert after == before
    assert host.dropped == 0
