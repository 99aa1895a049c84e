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
    BackupFile,
    BackupTask,
    Guest,
    GuestBackups,
    JobLog,
    PveParseError,
    failed_jobs,
    last_backups,
    merge_backups,
    parse_apt_updates,
    parse_backup_content,
    parse_guests,
    parse_not_backed_up,
    parse_storage,
    parse_task_log,
    parse_tasks,
    summarize_backups,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "proxmox"
FAILED_JOB = "UPID:pve1:000B2C3D:3251470A:661B0E70:vzdump::root@pam:"
JOB_END = 1713049297


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
        "pbs-backup": "pbs",
    }
    nfs = storages["nas-backup"]
    assert (nfs.active, nfs.enabled, nfs.total, nfs.content) == (False, True, 0, "backup")
    assert storages["local-zfs"].used == 59423506432


def test_vzdump_tasks_last_success_and_failure_per_guest() -> None:
    tasks = parse_tasks(read("pvesh_tasks_vzdump.json"))
    assert len(tasks) == 10  # the running task has no status yet
    jobs = [(task.ok, task.upid) for task in tasks if task.vmid is None]  # over several guests
    assert jobs == [
        (False, FAILED_JOB),
        (True, "UPID:pve1:000A1E4C:3249EB11:6618A3B0:vzdump::root@pam:"),
    ]
    last = last_backups(tasks)
    assert 103 not in last  # only ever backed up by jobs over several guests
    assert last[100] == (1713063600 + 412, 1712804400 + 3)
    assert last[102] == (1712977200 + 1804, 1713062400 + 61)  # newest is a failure
    assert last[104] == (1713061800 + 240, None)  # "WARNINGS: 1" is a success
    assert last[101][1] == 1712717700 + 40  # "interrupted by signal" is a failure


def test_last_backups_keeps_the_newest_whatever_the_order() -> None:
    tasks = [BackupTask(7, True, 10, 20), BackupTask(7, True, 30, 40), BackupTask(7, False, 1, 2)]
    assert last_backups(tasks) == last_backups(tasks[::-1]) == {7: (40, 2)}


def test_the_log_of_a_job_says_which_guest_failed() -> None:
    log = parse_task_log(read("pvesh_task_log_job_errors.json"))
    assert log == JobLog(finished=frozenset({101, 104}), failed=frozenset({103}))
    tasks = parse_tasks(read("pvesh_tasks_vzdump.json"))
    assert failed_jobs(tasks, 3) == [task for task in tasks if task.upid == FAILED_JOB]
    last = last_backups(tasks, {FAILED_JOB: log})
    assert last[103] == (None, JOB_END)  # the job's end: the log's times have no zone
    assert last[104] == (1713061800 + 240, None)  # its own newer task wins
    assert last[101] == (1713063180 + 95, 1712717700 + 40)
    assert last_backups(tasks, {"UPID:other": log}) == last_backups(tasks)  # not this job


def test_a_guest_the_log_names_twice_counts_as_failed() -> None:
    lines = [
        "INFO: Finished Backup of VM 7 (00:00:01)",
        "ERROR: Backup of VM 7 failed - interrupted",
        "ERROR: backup write data failed: no space",  # not a guest's result
        "INFO: Finished Backup of VM 0 (00:00:01)",  # not a guest id
        "INFO: Finished Backup of VM 1234567890 (00:00:01)",  # too long for one
    ]
    log = parse_task_log(json.dumps([{"n": n, "t": t} for n, t in enumerate(lines)]))
    assert log == JobLog(frozenset({7}), frozenset({7}))
    job = BackupTask(None, False, 1, 2, upid="UPID:n:00000001:00000002:00000003:vzdump::u@pam:")
    assert last_backups([job], {job.upid: log}) == {7: (None, 2)}


def test_failed_jobs_are_the_newest_with_a_usable_upid() -> None:
    def job(start: int, upid: str, ok: bool = False, vmid: int | None = None) -> BackupTask:
        return BackupTask(vmid, ok, start, start + 1, upid)

    tasks = [job(start, f"U{start}") for start in (5, 1, 4, 2, 3)]
    tasks += [job(9, "U9", ok=True), job(8, "U8", vmid=100), job(7, "")]
    assert [task.upid for task in failed_jobs(tasks, 3)] == ["U5", "U4", "U3"]


@pytest.mark.parametrize(
    ("upid", "kept"),
    [
        ("UPID:pve1:000B2C3D:3251470A:661B0E70:vzdump::root@pam:", True),
        ("UPID:pve1:000B2C3D:3251470A:661B0E70:vzdump::root@pam!backup:", True),
        ("UPID:pve1:000B2C3D:3251470A:661B0E70:vzdump::root@pam", False),  # no end
        ("UPID:pve1:000B2C3D:3251470A:661B0E70:vzdump:../..:root@pam:", False),  # a path
        ("UPID:pve 1:000B2C3D:3251470A:661B0E70:vzdump::root@pam:", False),
        ("", False),
    ],
)
def test_a_upid_goes_into_the_log_path_only_when_it_has_pve_s_shape(upid: str, kept: bool) -> None:
    (task,) = parse_tasks(
        json.dumps([{"type": "vzdump", "starttime": 1, "status": "job errors", "upid": upid}])
    )
    assert task.upid == (upid if kept else "")


def test_backups_on_a_dir_storage() -> None:
    files = parse_backup_content(read("pvesh_content_dir.json"))
    # the archive named by hand has no vmid: no guest's backup
    assert sorted((file.vmid, file.ctime) for file in files) == [
        (100, 1712718002),
        (100, 1713063602),
        (101, 1713063182),
        (102, 1712977202),
        (104, 1713061802),
    ]
    assert all(file.verified is None for file in files)
    summary = summarize_backups(files, cap=100)
    assert summary.guests[100] == GuestBackups(2, 0, 1713063602, 5012345678)
    assert summary.left_out == 0


def test_backups_on_a_pbs_storage() -> None:
    files = {
        (file.vmid, file.ctime): file
        for file in parse_backup_content(read("pvesh_content_pbs.json"))
    }
    assert (100, 1713150000) not in files  # no manifest yet: PVE lists it with size 1
    assert files[101, 1712890802].verified is True
    assert files[101, 1713049202].verified is None  # not verified yet
    assert files[104, 1713049262].verified is False
    assert files[103, 1712890814].size == 68719476736
    guests = summarize_backups(list(files.values()), cap=100).guests
    assert sorted(guests) == [101, 103, 104, 310]
    # a failed verification is counted, and does not undo the run that made the backup
    assert guests[104] == GuestBackups(2, 1, 1713049262, 3023456789)


def test_backups_over_storages_and_the_cap() -> None:
    local = summarize_backups(parse_backup_content(read("pvesh_content_dir.json")), cap=100)
    pbs = summarize_backups(parse_backup_content(read("pvesh_content_pbs.json")), cap=100)
    merged = merge_backups([local, pbs], {101, 103, 104, 105})
    assert merged == {
        101: GuestBackups(3, 0, 1713063182, 612345678),
        103: GuestBackups(1, 0, 1712890814, 68719476736),
        104: GuestBackups(3, 1, 1713061802, 1234567890),
    }
    capped = summarize_backups(parse_backup_content(read("pvesh_content_pbs.json")), cap=2)
    assert sorted(capped.guests) == [101, 104] and capped.left_out == 2  # 103, 310


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
        (parse_task_log, b'{"n": 1, "t": "TASK OK"}', "list"),
        (parse_backup_content, b"[[]]", "object"),
        (parse_backup_content, b"storage 'x' does not exist", "not JSON"),
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


# Numbers that must come out as a PveParseError or as nothing: longer than int() converts
# (4300 digits) or a float holds, and digits of other scripts ("²" passes isdigit(), which
# int() refuses), in every position a number or a vmid string may be.
long_digits = st.from_regex(r"\d{300,5000}(\.\d)?", fullmatch=True)
foreign_digits = st.text(
    st.characters(categories=["Nd", "No"], exclude_characters="0123456789"),
    min_size=1,
    max_size=6,
)
odd_numbers = long_digits | foreign_digits
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=10)
    | odd_numbers,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
entries = st.dictionaries(
    st.sampled_from(
        [
            "vmid",
            "status",
            "type",
            "storage",
            "starttime",
            "endtime",
            "id",
            "name",
            "cpus",
            "upid",
            "t",
            "n",
            "ctime",
            "size",
            "format",
            "verification",
            "content",
        ]
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
    parse_task_log,
    parse_backup_content,
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


log_noise = st.sampled_from(
    [
        "INFO: Backup started at 2024-04-14 01:00:02",
        "ERROR: backup write data failed: no space",
        "INFO: Backup job finished with errors",
        "TASK ERROR: job errors",
        "INFO:   5% (3.3 GiB of 64.0 GiB) in 30s",
    ]
) | st.text(max_size=40)


@given(
    st.lists(st.tuples(st.integers(1, 999_999_999), st.booleans()), max_size=20),
    st.lists(log_noise, max_size=20),
    st.randoms(use_true_random=False),
)
@settings(max_examples=100, deadline=None)
def test_a_job_log_gives_back_each_guest_s_outcome(
    outcomes: list[tuple[int, bool]], noise: list[str], rng: Any
) -> None:
    """Whatever else the log holds and in whatever order, each guest's line is found."""
    lines = [
        f"INFO: Finished Backup of VM {vmid} (00:01:02)"
        if ok
        else f"ERROR: Backup of VM {vmid} failed - command 'x' failed: exit code 1"
        for vmid, ok in outcomes
    ] + list(noise)
    rng.shuffle(lines)
    log = parse_task_log(json.dumps([{"n": n, "t": t} for n, t in enumerate(lines, 1)]))
    assert log.finished == {vmid for vmid, ok in outcomes if ok}
    assert log.failed == {vmid for vmid, ok in outcomes if not ok}


backup_files = st.builds(
    BackupFile,
    vmid=st.integers(100, 110),
    ctime=st.integers(0, 2**31),
    size=st.none() | st.integers(2, 2**40),
    verified=st.none() | st.booleans(),
)


@given(st.lists(backup_files, max_size=30), st.integers(1, 4))
@settings(max_examples=150, deadline=None)
def test_backups_merged_over_storages_are_those_of_one_storage_holding_all(
    files: list[BackupFile], parts: int
) -> None:
    """Splitting the backups over storages changes nothing: counts add up and the newest
    of any storage is the newest of all."""
    storages = [summarize_backups(files[index::parts], cap=100) for index in range(parts)]
    merged = merge_backups(storages, set(range(100, 111)))
    whole = summarize_backups(files, cap=100).guests
    assert merged.keys() == whole.keys()
    for vmid, guest in merged.items():
        mine = [file for file in files if file.vmid == vmid]
        assert guest.count == whole[vmid].count == len(mine)
        assert guest.verify_failed == sum(file.verified is False for file in mine)
        assert guest.newest == whole[vmid].newest == max(file.ctime for file in mine)
        newest = [file.size for file in mine if file.ctime == guest.newest]
        assert guest.newest_size in newest


@given(st.lists(backup_files, max_size=10))
@settings(max_examples=100, deadline=None)
def test_content_listing_round_trip(files: list[BackupFile]) -> None:
    """What pvesh would print for these backups (dir or PBS) parses back to them."""
    items = []
    for index, file in enumerate(files):
        item: dict[str, Any] = {
            "content": "backup",
            "vmid": file.vmid,
            "ctime": file.ctime,
            "format": "pbs-vm" if index % 2 else "vma.zst",
            "volid": f"s:backup/{index}",
        }
        if file.size is not None:
            item["size"] = file.size
        elif index % 2:
            item["size"] = 1  # PVE's size for a PBS snapshot without one
        if file.verified is not None:
            item["verification"] = {"state": "ok" if file.verified else "failed", "upid": "x"}
        items.append(item)
    expected = [file for index, file in enumerate(files) if not (index % 2 and file.size is None)]
    assert parse_backup_content(json.dumps(items)) == expected


@given(odd_numbers | st.sampled_from([1e30, 2**64, -1, "18446744073709551616"]))
@settings(max_examples=60, deadline=None)
def test_one_odd_number_leaves_out_a_value_or_an_entry_not_the_list(number: Any) -> None:
    """A wild number where PVE puts a vmid, a time or a size: the other entries are read,
    and nothing read is beyond 64 bits."""
    good_task = {"type": "vzdump", "id": "100", "starttime": 10, "endtime": 20, "status": "OK"}
    tasks = parse_tasks(json.dumps([{**good_task, "id": number}, good_task]))
    assert tasks[-1] == BackupTask(100, True, 10, 20) and len(tasks) == 2
    good_file = {"vmid": 100, "ctime": 10, "size": 5, "content": "backup"}
    odd_files = [{**good_file, key: number} for key in ("vmid", "ctime", "size")]
    files = parse_backup_content(json.dumps([*odd_files, good_file]))
    assert files[-1] == BackupFile(100, 10, 5)
    guest = {"vmid": 100, "status": "running", "mem": number, "cpus": number, "uptime": number}
    (parsed,) = parse_guests(json.dumps([guest]), "qemu")
    for value in (parsed.mem, parsed.cpus, parsed.uptime, *(f.size for f in files)):
        assert value is None or 0 <= value < 2**63
    with contextlib.suppress(PveParseError):
        parse_guests(json.dumps([{**guest, "vmid": number}]), "lxc")
