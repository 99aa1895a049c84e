"""pvesh parsers: the PVE 8 fixtures, and any JSON raises nothing but PveParseError."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent.collectors.pve_parse import (
    BackupTask,
    Guest,
    PveParseError,
    last_backups,
    parse_apt_updates,
    parse_guests,
    parse_not_backed_up,
    parse_storage,
    parse_tasks,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "proxmox"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_qemu_list() -> None:
    guests = {guest.vmid: guest for guest in parse_guests(read("pvesh_qemu.json"), "qemu")}
    assert sorted(guests) == [100, 102, 103, 105, 9000]
    ha = guests[100]
    assert (ha.id, ha.name, ha.status, ha.tags, ha.lock) == (
        "qemu/100",
        "home-assistant",
        "running",
        "ha;prod",
        "",
    )
    assert (ha.cpus, ha.mem, ha.maxmem, ha.netin, ha.uptime) == (
        4,
        6114289664,
        8589934592,
        91231412312,
        1209645,
    )
    assert guests[102].lock == "backup"
    assert guests[9000].template and not guests[100].template
    assert guests[103].status == "stopped"


def test_lxc_list_with_vmids_as_strings_and_a_fractional_cpu_limit() -> None:
    guests = {guest.vmid: guest for guest in parse_guests(read("pvesh_lxc.json"), "lxc")}
    assert sorted(guests) == [101, 104, 205]
    assert guests[101].id == "lxc/101" and guests[101].disk == 1841234123
    assert guests[104].cpus == 1.5
    assert guests[205].lock == "mounted"


def test_storage_list() -> None:
    storages = {each.storage: each for each in parse_storage(read("pvesh_storage.json"))}
    assert {name: each.type for name, each in storages.items()} == {
        "local": "dir",
        "local-zfs": "zfspool",
        "tank-vm": "zfspool",
        "nas-backup": "nfs",
    }
    nfs = storages["nas-backup"]
    assert (nfs.active, nfs.enabled, nfs.total, nfs.content) == (False, True, 0, "backup")
    assert storages["local-zfs"].used == 59423506432


def test_vzdump_tasks_last_success_and_failure_per_guest() -> None:
    tasks = parse_tasks(read("pvesh_tasks_vzdump.json"))
    assert len(tasks) == 9  # the running task has no status yet
    assert [task.vmid for task in tasks if task.vmid is None] == [None]  # the job-wide task
    last = last_backups(tasks)
    assert last[100] == (1713063600 + 412, 1712804400 + 3)
    assert last[102] == (1712977200 + 1804, 1713062400 + 61)  # newest is a failure
    assert last[104] == (1713061800 + 240, None)  # "WARNINGS: 1" is a success
    assert last[101][1] == 1712717700 + 40  # "interrupted by signal" is a failure


def test_last_backups_keeps_the_newest_whatever_the_order() -> None:
    tasks = [BackupTask(7, True, 10, 20), BackupTask(7, True, 30, 40), BackupTask(7, False, 1, 2)]
    assert last_backups(tasks) == last_backups(tasks[::-1]) == {7: (40, 2)}


def test_not_backed_up_and_updates() -> None:
    entries = parse_not_backed_up(read("pvesh_not_backed_up.json"))
    assert [(entry.vmid, entry.type, entry.name) for entry in entries][:2] == [
        (105, "qemu", "scratch-vm"),
        (205, "lxc", "build-ct"),
    ]
    assert parse_apt_updates(read("pvesh_apt_update.json")) == 3
    assert parse_apt_updates(b"[]") == 0


@pytest.mark.parametrize(
    ("parse", "text", "words"),
    [
        (lambda text: parse_guests(text, "qemu"), b'{"data": []}', "list"),
        (lambda text: parse_guests(text, "qemu"), b'[{"status": "running"}]', "vmid"),
        (lambda text: parse_guests(text, "qemu"), b'[{"vmid": 100}]', "status"),
        (lambda text: parse_guests(text, "lxc"), b'[{"vmid": "10x", "status": "running"}]', "vmid"),
        (parse_storage, b'[{"type": "dir"}]', "storage id"),
        (parse_tasks, b'[{"type": "vzdump", "status": "OK"}]', "starttime"),
        (parse_not_backed_up, b'[{"vmid": 1, "type": "vm"}]', "type"),
        (parse_apt_updates, b"[1, 2]", "object"),
        (parse_apt_updates, b"ipcc_send_rec[1] failed: Unknown error -1", "not JSON"),
    ],
)
def test_shapes_it_cannot_read_are_rejected(parse: Any, text: bytes, words: str) -> None:
    with pytest.raises(PveParseError, match=words):
        parse(text)


def test_odd_values_are_left_out_not_fatal() -> None:
    (guest,) = parse_guests(
        b'[{"vmid": 1, "status": "running", "mem": -1, "cpu": "x", "maxmem": true, "name": 3}]',
        "qemu",
    )
    assert (guest.mem, guest.cpu, guest.maxmem, guest.name) == (None, None, None, "")


guests = st.builds(
    Guest,
    vmid=st.integers(1, 999_999_999),
    type=st.just("qemu"),
    status=st.sampled_from(["running", "stopped", "paused"]),
    name=st.from_regex(r"[a-z0-9-]{0,20}", fullmatch=True),
    template=st.booleans(),
    tags=st.from_regex(r"[a-z0-9;]{0,20}", fullmatch=True),
    lock=st.sampled_from(["", "backup", "migrate", "snapshot"]),
    cpu=st.none() | st.floats(0, 64),
    cpus=st.none() | st.integers(1, 512),
    mem=st.none() | st.integers(0, 2**50),
    maxmem=st.none() | st.integers(0, 2**50),
    disk=st.none() | st.integers(0, 2**50),
    maxdisk=st.none() | st.integers(0, 2**50),
    netin=st.none() | st.integers(0, 2**62),
    netout=st.none() | st.integers(0, 2**62),
    uptime=st.none() | st.integers(0, 2**31),
)


@given(st.lists(guests, max_size=5))
@settings(max_examples=100, deadline=None)
def test_guest_list_round_trip(generated: list[Guest]) -> None:
    """What pvesh would print for these guests parses back to them."""
    items = []
    for guest in generated:
        item = {
            key: value
            for key, value in dataclasses.asdict(guest).items()
            if value is not None and value != "" and key != "type"
        }
        item["template"] = int(guest.template)
        items.append(item)
    assert parse_guests(json.dumps(items), "qemu") == generated


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
entries = st.dictionaries(
    st.sampled_from(
        ["vmid", "status", "type", "storage", "starttime", "endtime", "id", "name", "cpus"]
    )
    | st.text(max_size=5),
    json_values,
    max_size=6,
)
PARSERS = [
    lambda text: parse_guests(text, "qemu"),
    lambda text: parse_guests(text, "lxc"),
    parse_storage,
    parse_tasks,
    parse_not_backed_up,
    parse_apt_updates,
]


@given(st.lists(entries, max_size=4) | json_values)
@settings(max_examples=120, deadline=None)
def test_arbitrary_json_raises_only_parse_errors(value: Any) -> None:
    text = json.dumps(value, allow_nan=True)
    for parse in PARSERS:
        with contextlib.suppress(PveParseError):
            parse(text)


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    for parse in PARSERS:
        with contextlib.suppress(PveParseError):
            parse(data)
