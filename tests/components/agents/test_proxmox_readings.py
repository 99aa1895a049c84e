"""The HA-free derivation of a Proxmox host's values and events (agents/proxmox.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.agents.proxmox import (
    EVENT_GUEST_STOPPED,
    EVENT_POOL_DEGRADED,
    MAX_GUESTS,
    MAX_PER_KIND,
    Event,
    ProxmoxReadings,
)
from custom_components.fleet_metrics.agents.readings import HostReadings
from custom_components.fleet_metrics.core.sample import FieldValue, Sample


def pool(name: str, health: str, errors: int, ns: int = 1) -> Sample:
    return Sample("zfs_pool", {"pool": name}, {"health": health, "errors": errors}, ns)


def feed(readings: ProxmoxReadings, *samples: Sample) -> list[Event]:
    events: list[Event] = []
    for sample in samples:
        readings.apply(sample, events)
    return events


def test_a_pool_event_only_on_a_transition() -> None:
    r = ProxmoxReadings()
    assert feed(r, pool("tank", "DEGRADED", 3)) == []  # first sight: no transition
    assert r.pools["tank"].problem is True
    assert feed(r, pool("ok", "ONLINE", 0), pool("ok", "ONLINE", 0)) == []
    assert r.pools["ok"].problem is False
    assert feed(r, pool("ok", "ONLINE", 1)) == [
        (EVENT_POOL_DEGRADED, {"pool": "ok", "health": "ONLINE", "errors": 1})
    ]
    assert r.pools["ok"].problem is True  # errors alone are a problem
    assert feed(r, pool("ok", "ONLINE", 2)) == []  # errors rising further: no new event
    assert feed(r, pool("ok", "FAULTED", 2)) == [  # leaving ONLINE is one more
        (EVENT_POOL_DEGRADED, {"pool": "ok", "health": "FAULTED", "errors": 2})
    ]


def test_a_guest_event_when_it_stops_running() -> None:
    r = ProxmoxReadings()

    def guest(status: str) -> Sample:
        return Sample("pve_guest", {"id": "qemu/100"}, {"status": status, "name": "web"}, 1)

    assert feed(r, guest("running"), guest("running")) == []
    assert feed(r, guest("paused")) == [(EVENT_GUEST_STOPPED, {"id": "qemu/100", "name": "web"})]
    assert feed(r, guest("stopped"), guest("running")) == []


def test_guest_counts_start_over_with_each_run() -> None:
    r = ProxmoxReadings()
    feed(r, *(Sample("pve_guests", {"status": s}, {"count": 2}, 1) for s in ("running", "stopped")))
    assert (r.guests_with("running"), r.guests_with("stopped")) == (2, 2)
    feed(r, Sample("pve_guests", {"status": "running"}, {"count": 4}, 2))
    assert (r.guests_with("running"), r.guests_with("stopped")) == (4, 0)
    feed(r, Sample("pve_guests", {"status": "stopped"}, {"count": 9}, 1))  # older: ignored
    assert r.guests_with("stopped") == 0


def test_names_from_the_wire_are_capped_and_counted() -> None:
    r = ProxmoxReadings()
    feed(r, *(pool(f"p{i}", "ONLINE", 0) for i in range(MAX_PER_KIND + 5)))
    feed(r, *(Sample("pve_guest", {"id": f"lxc/{i}"}, {"up": 1}, 1) for i in range(MAX_GUESTS + 3)))
    assert len(r.pools) == MAX_PER_KIND and len(r.guests) == MAX_GUESTS
    assert r.dropped == 8
    feed(r, pool("p0", "DEGRADED", 1))  # a known one still updates
    assert r.pools["p0"].health == "DEGRADED"


def test_memory_used_without_the_arc() -> None:
    host = HostReadings()
    host.apply([Sample("memory", {}, {"total_bytes": 100, "available_bytes": 20}, 1)])
    assert host.memory_used_without_arc_percent is None  # no ARC reading
    host.apply([Sample("zfs_arc", {}, {"size_bytes": 30}, 1)])
    assert host.memory_used_without_arc_percent == 50.0
    host.apply([Sample("zfs_arc", {}, {"size_bytes": 95}, 2)])
    assert host.memory_used_without_arc_percent == 0.0  # never below 0


_VALUE = st.one_of(st.integers(-(2**64), 2**64), st.floats(), st.booleans(), st.text(max_size=5))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "zfs_pool",
            "zfs_arc",
            "pve_guest",
            "pve_guests",
            "pve_storage",
            "pve_backup",
            "pve_updates",
        ]
    ),
    st.dictionaries(st.sampled_from(["pool", "id", "status", "storage"]), st.text(max_size=5)),
    st.dictionaries(
        st.sampled_from(
            [
                "health",
                "errors",
                "capacity_ratio",
                "status",
                "up",
                "cpu_ratio",
                "count",
                "usage_bytes",
                "size_bytes",
                "pending",
                "name",
                "last_success_timestamp_seconds",
                "scrub_last_end_timestamp_seconds",
            ]
        ),
        _VALUE,
    ),
)
def test_any_reading_is_taken_without_raising(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    host = HostReadings()
    for ns in (1, 2):
        events = host.apply([Sample(measurement, tags, fields, ns)])
        assert all(name in (EVENT_GUEST_STOPPED, EVENT_POOL_DEGRADED) for name, _ in events)
