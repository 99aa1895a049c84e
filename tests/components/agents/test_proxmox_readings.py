"""The HA-free derivation of a Proxmox host's values and events (agents/proxmox.py)."""

from __future__ import annotations

import pytest
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
            "collector",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["pool", "id", "status", "storage", "collector"]),
        st.sampled_from(["zfs", "pve", "pve_backup"]) | st.text(max_size=5),
    ),
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
                "success",
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


def guest(vmid: int, ns: int, status: str = "running") -> Sample:
    return Sample("pve_guest", {"id": f"lxc/{vmid}"}, {"status": status, "name": f"g{vmid}"}, ns)


def end_of(collector: str, ns: int, success: int = 1) -> Sample:
    """What the agent sends after each collector's samples of a run."""
    return Sample("collector", {"collector": collector}, {"success": success}, ns)


def counts(ns: int, **by_status: int) -> list[Sample]:
    return [Sample("pve_guests", {"status": s}, {"count": n}, ns) for s, n in by_status.items()]


def test_what_the_newest_run_does_not_list_is_forgotten() -> None:
    r = ProxmoxReadings()
    backup = "last_success_timestamp_seconds"
    feed(
        r,
        pool("rpool", "ONLINE", 0, 1), pool("old", "ONLINE", 0, 1), end_of("zfs", 1),
        guest(100, 1), guest(101, 1), *counts(1, running=2),
        Sample("pve_storage", {"storage": "nfs"}, {"usage_bytes": 1, "size_bytes": 4}, 1),
        end_of("pve", 1),
        Sample("pve_backup", {"id": "lxc/101"}, {backup: 1.7e9}, 1), end_of("pve_backup", 1),
    )  # fmt: skip
    assert set(r.pools) == {"rpool", "old"} and set(r.guests) == {"lxc/100", "lxc/101"}
    assert r.storage_used_percent == {"nfs": 25.0} and r.last_backup == {"lxc/101": 1.7e9}
    assert r.listed_guests == frozenset({"lxc/100", "lxc/101"}) and r.listed_changed
    # pool "old" exported, guest 101 deleted with its backups, the NFS storage removed
    feed(r, pool("rpool", "ONLINE", 0, 2), end_of("zfs", 2))
    feed(r, guest(100, 2), *counts(2, running=1), end_of("pve", 2), end_of("pve_backup", 2))
    assert set(r.pools) == {"rpool"} and set(r.guests) == {"lxc/100"}
    assert r.storage_used_percent == {} and r.last_backup == {}
    assert r.listed_guests == frozenset({"lxc/100"})


def test_a_failed_run_forgets_nothing_and_an_older_one_neither() -> None:
    r = ProxmoxReadings()
    feed(r, guest(100, 5), *counts(5, running=1), end_of("pve", 5))
    feed(r, end_of("pve", 6, success=0))  # the collector raised: nothing is known
    feed(r, end_of("pve", 4))  # a batch replayed late
    assert set(r.guests) == {"lxc/100"}


def test_a_run_cut_by_a_cap_or_an_include_list_lists_no_guest_as_gone() -> None:
    r = ProxmoxReadings()
    feed(r, guest(100, 1), guest(101, 1), *counts(1, running=5, template=1), end_of("pve", 1))
    assert r.listed_guests is None and not r.listed_changed  # 5 counted, 2 sent
    feed(r, guest(100, 2), *counts(2, running=1, template=3), end_of("pve", 2))
    assert r.listed_guests == frozenset({"lxc/100"})  # templates are never sent one by one


def test_past_the_cap_the_guest_seen_longest_ago_makes_room() -> None:
    """Guests deleted and created (no end-of-run sample between): newcomers of a newer run
    take the place of those seen longest ago; newcomers of the same run as every entry are
    left out, so a host sending more than the cap keeps a stable set. Both counted."""
    r = ProxmoxReadings()
    feed(r, *(guest(vmid, 1) for vmid in range(100, 100 + MAX_GUESTS)))
    feed(r, *(guest(vmid, 2) for vmid in range(100, 150)))  # still there
    feed(r, *(guest(vmid, 3) for vmid in range(1000, 1010)))  # new ones
    assert len(r.guests) == MAX_GUESTS and r.dropped == 10
    assert {f"lxc/{vmid}" for vmid in range(1000, 1010)} <= r.guests.keys()
    assert not {f"lxc/{vmid}" for vmid in range(150, 160)} & r.guests.keys()  # seen at 1
    assert {f"lxc/{vmid}" for vmid in range(100, 150)} <= r.guests.keys()
    every = list(r.guests)
    feed(r, *(guest(int(gid.removeprefix("lxc/")), 4) for gid in every))  # all in one run
    feed(r, *(guest(vmid, 4) for vmid in range(2000, 2005)))  # more in that run: left out
    assert r.dropped == 15 and list(r.guests) == every
    feed(
        r,
        *(pool(f"p{i}", "ONLINE", 0, 1) for i in range(MAX_PER_KIND)),
        pool("new", "ONLINE", 0, 2),
    )
    assert "new" in r.pools and len(r.pools) == MAX_PER_KIND


@pytest.mark.parametrize("seconds", [1e20, -1e15, 0.0, 2.0**34, 1e308])
def test_a_wild_timestamp_is_no_timestamp(seconds: float) -> None:
    host = HostReadings()
    host.apply([
        Sample("host", {}, {"boot_time_seconds": 1.7e9}, 1),
        Sample("zfs_pool", {"pool": "tank"}, {"scrub_last_end_timestamp_seconds": 1.7e9}, 1),
    ])  # fmt: skip
    host.apply(
        [
            Sample("host", {}, {"boot_time_seconds": seconds}, 2),
            Sample("zfs_pool", {"pool": "tank"}, {"scrub_last_end_timestamp_seconds": seconds}, 2),
            Sample(
                "pve_backup", {"id": "qemu/100"}, {"last_success_timestamp_seconds": seconds}, 2
            ),
        ]
    )
    assert host.boot_time == 1.7e9 and host.proxmox.pools["tank"].last_scrub == 1.7e9
    assert host.proxmox.last_backup == {}
