"""The zfs, pve and pve_backup collectors end to end against fake ``zpool``/``pvesh``
executables on PATH (real processes printing the fixtures): samples as the contract in
the issue says, detection on and off, stale marking on a hang, fallback to zpool's text."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from custom_components.fleet_metrics.core.agent.collectors import (
    CollectorRun,
    CollectorSettings,
    build,
)
from custom_components.fleet_metrics.core.agent.collectors.pve import (
    MAX_STATUSES,
    PveBackupCollector,
    PveCollector,
)
from custom_components.fleet_metrics.core.agent.collectors.zfs import ZfsCollector
from custom_components.fleet_metrics.core.agent.protocol import Batch, decode, encode
from custom_components.fleet_metrics.core.sample import Sample
from tests.fixtures.proxmox.fake_commands import FAILED_JOB, FIXTURES, FakeCommands, pve_host

NOW = 1_713_100_000_000_000_000
SETTINGS = CollectorSettings(pve_node="pve1", command_timeout=5)
QEMU = "pvesh get /nodes/pve1/qemu --output-format json"
LXC = "pvesh get /nodes/pve1/lxc --output-format json"
STORAGE = "pvesh get /nodes/pve1/storage --output-format json"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCommands:
    commands = pve_host(FakeCommands(tmp_path / "bin"))
    monkeypatch.setenv("PATH", commands.path_env())
    return commands


def _write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def by(samples: list[Sample], measurement: str, key: str) -> dict[str, Sample]:
    return {s.tags[key]: s for s in samples if s.measurement == measurement}


def names(collectors: dict) -> set[str]:  # type: ignore[type-arg]
    return {run.collector.name for runs in collectors.values() for run in runs}


def test_detection_on_a_pve_host_with_zfs(fake: FakeCommands) -> None:
    assert {"zfs", "pve", "pve_backup"} <= names(build({}, SETTINGS))
    assert "pve" not in names(build({"pve": False}, SETTINGS))


def test_detection_off_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not {"zfs", "pve", "pve_backup"} & names(build({}, SETTINGS))
    # switched on by hand where nothing is installed: it runs and reports nothing, no error
    tiers = build({"zfs": True, "pve": True}, SETTINGS)
    runs = [run for runs in tiers.values() for run in runs if run.collector.name in ("zfs", "pve")]
    for run in runs:
        (sample,) = run(NOW)
        assert sample.measurement == "collector" and sample.fields["success"] == 1


def test_zfs_pools_vdevs_states_and_arc(fake: FakeCommands) -> None:
    samples = ZfsCollector(SETTINGS, arcstats=str(FIXTURES / "arcstats.txt")).collect(NOW)
    pools = by(samples, "zfs_pool", "pool")
    assert sorted(pools) == ["backup", "rpool", "tank"]
    tank = pools["tank"].fields
    assert tank["health"] == "DEGRADED" and tank["errors"] == 1254 and tank["stale"] == 0
    assert tank["size_bytes"] == 47999999410176 and tank["capacity_ratio"] == 0.63
    assert tank["scrub_last_end_timestamp_seconds"] == 1710056169.0
    assert (tank["scrub_repaired_bytes"], tank["scrub_errors"]) == (1572864, 0)
    backup = pools["backup"].fields
    assert (backup["scan"], backup["scan_state"]) == ("scrub", "scanning")
    assert (
        "scrub_last_end_timestamp_seconds" not in backup
        and 0 < float(backup["scan_progress_ratio"]) < 1
    )
    states = {
        (s.tags["zpool"], s.tags["state"]): s.fields["value"]
        for s in samples
        if s.measurement == "zfs_pool_state"
    }
    assert len(states) == 3 * 7
    assert states["tank", "DEGRADED"] == 1 and states["tank", "ONLINE"] == 0
    assert sum(int(value) for value in states.values()) == 3
    vdevs = {
        (s.tags["pool"], s.tags["vdev"], s.tags["kind"]): s.fields["errors"]
        for s in samples
        if s.measurement == "zfs_vdev"
    }
    assert vdevs["tank", "wwn-0x5000c500a1b2c3d3", "write"] == 1229
    assert vdevs["rpool", "rpool", "read"] == 0  # the root row is named after the pool
    (arc,) = [s for s in samples if s.measurement == "zfs_arc"]
    assert arc.fields == {
        "size_bytes": 8398124864,
        "target_bytes": 8472716288,
        "min_bytes": 1052626432,
        "max_bytes": 16842022912,
    }


def test_zfs_falls_back_to_text_when_zpool_has_no_json(fake: FakeCommands) -> None:
    fake.answer("zpool status -j --json-int -p", stderr="invalid option 'j'\nusage:\n", exit=2)
    fake.answer(
        "zpool status -p",
        "zpool_status_2.1_mirror.txt",
        "zpool_status_2.1_raidz2_degraded.txt",
        "zpool_status_2.1_scrubbing.txt",
    )
    collector = ZfsCollector(SETTINGS, arcstats="/nonexistent")
    for _ in range(2):
        pools = by(collector.collect(NOW), "zfs_pool", "pool")
        assert pools["tank"].fields["errors"] == 1254
        assert pools["backup"].fields["scan_state"] == "scanning"
    assert collector.use_json is False
    assert fake.calls().count("zpool status -j --json-int -p") == 1  # asked once only


def test_zfs_reads_the_text_when_json_exits_0_but_does_not_parse(fake: FakeCommands) -> None:
    """A zpool whose -j prints what the parser cannot read (a vendor build, a newer
    output_version) still gives the pools' status, from the text, and stays on the text."""
    fake.answer("zpool status -j --json-int -p", stdout="Pools: tank is fine\n")
    fake.answer("zpool status -p", "zpool_status_2.1_raidz2_degraded.txt")
    collector = ZfsCollector(SETTINGS, arcstats="/nonexistent")
    for _ in range(2):
        tank = by(collector.collect(NOW), "zfs_pool", "pool")["tank"].fields
        assert (tank["errors"], tank["health"], tank["stale"]) == (1254, "DEGRADED", 0)
    assert collector.use_json is False
    assert fake.calls().count("zpool status -j --json-int -p") == 1


def test_zfs_keeps_json_once_it_worked(fake: FakeCommands) -> None:
    """JSON that worked and then fails once is the last good JSON, stale: no switch."""
    collector = ZfsCollector(SETTINGS, arcstats="/nonexistent")
    assert by(collector.collect(NOW), "zfs_pool", "pool")["tank"].fields["stale"] == 0
    fake.answer("zpool status -j --json-int -p", stdout="{ broken")
    tank = by(collector.collect(NOW), "zfs_pool", "pool")["tank"].fields
    assert tank["stale"] == 1 and tank["errors"] == 1254
    assert collector.use_json is True and "zpool status -p" not in fake.calls()


def test_a_hanging_zpool_gives_the_last_good_pools_marked_stale(fake: FakeCommands) -> None:
    collector = ZfsCollector(CollectorSettings(command_timeout=1), arcstats="/nonexistent")
    assert by(collector.collect(NOW), "zfs_pool", "pool")["rpool"].fields["stale"] == 0
    fake.answer("zpool list -Hp", "zpool_list.txt", sleep=30)
    pools = by(collector.collect(NOW), "zfs_pool", "pool")
    assert pools["rpool"].fields["stale"] == 1
    assert pools["rpool"].fields["size_bytes"] == 498216206336


def test_garbage_or_failure_never_fails_the_collector(fake: FakeCommands) -> None:
    fake.answer("zpool list -Hp", stdout="this is not a pool list\n")
    fake.answer("zpool status -j --json-int -p", stdout="{ broken")
    run = CollectorRun(ZfsCollector(SETTINGS, arcstats="/nonexistent"))
    samples = run(NOW)
    assert [s.measurement for s in samples] == ["collector"]
    assert samples[0].fields["success"] == 1


def test_pve_guests_counts_and_storage(fake: FakeCommands) -> None:
    samples = PveCollector(SETTINGS).collect(NOW)
    guests = by(samples, "pve_guest", "id")
    assert sorted(guests) == [
        "lxc/101",
        "lxc/104",
        "lxc/205",
        "qemu/100",
        "qemu/102",
        "qemu/103",
        "qemu/105",
    ]
    ha = guests["qemu/100"]
    assert (
        ha.fields["up"] == 1
        and ha.fields["name"] == "home-assistant"
        and ha.fields["tags"] == "ha;prod"
    )
    assert ha.fields["memory_usage_bytes"] == 6114289664 and ha.fields["stale"] == 0
    assert "disk_usage_bytes" not in ha.fields  # PVE's 0 for a VM means unknown
    assert guests["lxc/101"].fields["disk_usage_bytes"] == 1841234123
    assert ha.counters == {"network_receive_bytes", "network_transmit_bytes"}
    assert guests["qemu/102"].fields["lock"] == "backup" and "lock" not in ha.fields
    assert guests["qemu/103"].fields["up"] == 0
    counts = {s.tags["status"]: s.fields["count"] for s in samples if s.measurement == "pve_guests"}
    assert counts == {"running": 5, "stopped": 2, "template": 1}
    storage = by(samples, "pve_storage", "storage")
    assert (
        storage["nas-backup"].tags["type"] == "nfs" and storage["nas-backup"].fields["active"] == 0
    )
    assert storage["local-zfs"].fields["usage_bytes"] == 59423506432


def test_pve_cap_and_include_list(fake: FakeCommands) -> None:
    capped = PveCollector(CollectorSettings(pve_node="pve1", pve_max_guests=2))
    samples = capped.collect(NOW)
    assert sorted(by(samples, "pve_guest", "id")) == ["lxc/101", "qemu/100"]  # lowest vmids
    assert capped.overflow == 5  # 7 guests that are not templates
    assert sum(int(s.fields["count"]) for s in samples if s.measurement == "pve_guests") == 8
    picked = PveCollector(CollectorSettings(pve_node="pve1", pve_guests=(104, 103, 999)))
    assert sorted(by(picked.collect(NOW), "pve_guest", "id")) == ["lxc/104", "qemu/103"]


def test_statuses_past_the_cap_are_counted(fake: FakeCommands, tmp_path: Path) -> None:
    """20 guests of 20 different statuses (a PVE newer than this agent, a garbled list):
    16 counts are sent, those of the most guests first, and the 4 others counted."""
    guests = [{"vmid": 100 + n, "status": f"state{n:02d}", "name": f"g{n}"} for n in range(20)]
    guests += [{"vmid": 200 + n, "status": "running"} for n in range(3)]
    fake.answer(QEMU, _write(tmp_path / "qemu.json", guests))
    collector = PveCollector(SETTINGS)
    samples = collector.collect(NOW)
    counts = {s.tags["status"]: s.fields["count"] for s in samples if s.measurement == "pve_guests"}
    assert len(counts) == MAX_STATUSES and counts["running"] == 3 + 2  # and the fixture's lxc
    assert collector.overflow == len({g["status"] for g in guests} | {"stopped"}) - MAX_STATUSES


def test_both_tiers_share_the_guest_and_storage_lists(fake: FakeCommands) -> None:
    """The slow tier takes the lists the medium tier read within its interval; older ones
    (here an interval of 0) it reads again. Run at once (both tiers start on the same
    grid), each list is still read once."""
    lists = (QEMU, LXC, STORAGE)
    PveCollector(SETTINGS).collect(NOW)
    medium = PveCollector(SETTINGS)
    slow = PveBackupCollector(SETTINGS)
    medium.collect(NOW)
    before = fake.calls()
    samples = slow.collect(NOW)
    assert not [call for call in fake.calls()[len(before) :] if call in lists]
    assert by(samples, "pve_backup", "id")["qemu/103"].fields["stale"] == 0
    # no medium run within the interval: the slow tier reads them itself
    alone = PveBackupCollector(dataclasses.replace(SETTINGS, medium_interval=0.0))
    before = fake.calls()
    alone.collect(NOW)
    assert sorted(c for c in fake.calls()[len(before) :] if c in lists) == sorted(lists)
    # at once, in two threads, after the lists aged past the interval
    for command in (medium.lists.qemu, medium.lists.lxc, medium.lists.storage):
        command.last_good_at -= SETTINGS.medium_interval
    before = fake.calls()
    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(medium.collect, NOW), pool.submit(slow.collect, NOW)]
        assert all(future.result() for future in done)
    assert sorted(c for c in fake.calls()[len(before) :] if c in lists) == sorted(lists)


def test_pve_backup_tasks_not_backed_up_and_updates(fake: FakeCommands) -> None:
    samples = PveBackupCollector(SETTINGS).collect(NOW)
    backups = by(samples, "pve_backup", "id")
    assert backups["qemu/100"].fields == {
        "last_success_timestamp_seconds": 1713064012.0,  # its task's end, after the file
        "last_failure_timestamp_seconds": 1712804403.0,
        "last_size_bytes": 5012345678,  # the newest archive; PBS's unfinished one left out
        "not_backed_up": 0,
        "stale": 0,
    }
    # 103 is only ever in jobs over several guests: its last success is its newest backup
    # on the PBS storage, its last failure the end of the job whose log names it
    assert backups["qemu/103"].fields == {
        "last_success_timestamp_seconds": 1712890814.0,
        "last_failure_timestamp_seconds": 1713049297.0,
        "last_size_bytes": 68719476736,
        "not_backed_up": 0,
        "stale": 0,
    }
    # the NFS backup storage is down and was never read: no counts that would be short
    assert not {"backups", "verify_failed"} & {
        key for sample in backups.values() for key in sample.fields
    }
    assert backups["qemu/105"].fields == {"not_backed_up": 1, "stale": 0}
    assert backups["lxc/205"].fields["not_backed_up"] == 1
    assert "qemu/310" not in backups  # on another node
    assert "qemu/9000" not in backups  # a template
    (updates,) = [s for s in samples if s.measurement == "pve_updates"]
    assert updates.fields == {"pending": 3}


def storage_list(folder: Path, **nfs: object) -> Path:
    """The fixture's storage list with the NFS backup storage's fields replaced."""
    storages = json.loads((FIXTURES / "pvesh_storage.json").read_text(encoding="utf-8"))
    for storage in storages:
        if storage["storage"] == "nas-backup":
            storage.update(nfs)
    path = folder / "storage.json"
    path.write_text(json.dumps(storages), encoding="utf-8")
    return path


NFS_CONTENT = (
    "pvesh get /nodes/pve1/storage/nas-backup/content --content backup --output-format json"
)


def test_pve_backup_counts_over_every_backup_storage(fake: FakeCommands, tmp_path: Path) -> None:
    fake.answer(STORAGE, storage_list(tmp_path, active=1))
    nfs = [{"volid": "nas-backup:backup/vzdump-qemu-103-2024_04_14-06_00_02.vma.zst",
            "vmid": 103, "ctime": 1713067202, "size": 70000000000, "format": "vma.zst",
            "subtype": "qemu", "content": "backup"}]  # fmt: skip
    fake.answer(NFS_CONTENT, stdout=json.dumps(nfs))
    # no medium tier here: each run reads the storage list afresh
    collector = PveBackupCollector(dataclasses.replace(SETTINGS, medium_interval=0.0))
    backups = by(collector.collect(NOW), "pve_backup", "id")
    counts = {key: (s.fields["backups"], s.fields["verify_failed"]) for key, s in backups.items()}
    assert counts == {
        "qemu/100": (2, 0),  # local; the unfinished PBS snapshot is not a backup
        "lxc/101": (3, 0),
        "qemu/102": (1, 0),
        "qemu/103": (2, 0),  # PBS and NFS
        "lxc/104": (3, 1),  # one PBS snapshot failed verification
        "qemu/105": (0, 0),
        "lxc/205": (0, 0),
    }
    assert backups["qemu/103"].fields["last_success_timestamp_seconds"] == 1713067202.0
    assert backups["qemu/103"].fields["last_size_bytes"] == 70000000000
    assert backups["qemu/103"].fields["stale"] == 0

    # the share goes away: PVE marks it inactive; its last list is reused, marked stale
    fake.answer(STORAGE, storage_list(tmp_path, active=0))
    again = by(collector.collect(NOW), "pve_backup", "id")
    assert again["qemu/103"].fields == {**backups["qemu/103"].fields, "stale": 1}
    assert fake.calls().count(NFS_CONTENT) == 1  # not asked while inactive

    # switched off in PVE: not a backup storage of this node any more
    fake.answer(STORAGE, storage_list(tmp_path, active=0, enabled=0))
    off = by(collector.collect(NOW), "pve_backup", "id")
    assert off["qemu/103"].fields["backups"] == 1 and off["qemu/103"].fields["stale"] == 0
    assert "nas-backup" not in collector.content


def test_a_hanging_backup_listing_gives_the_last_one_marked_stale(fake: FakeCommands) -> None:
    collector = PveBackupCollector(CollectorSettings(pve_node="pve1", command_timeout=3))
    first = by(collector.collect(NOW), "pve_backup", "id")["qemu/103"]
    pbs = "pvesh get /nodes/pve1/storage/pbs-backup/content --content backup --output-format json"
    fake.answer(pbs, "pvesh_content_pbs.json", sleep=30)
    second = by(collector.collect(NOW), "pve_backup", "id")["qemu/103"]
    assert second.fields == {**first.fields, "stale": 1}
    assert collector.content["pbs-backup"].failing


def test_job_logs_newest_three_each_read_once(fake: FakeCommands, tmp_path: Path) -> None:
    tasks = json.loads((FIXTURES / "pvesh_tasks_vzdump.json").read_text(encoding="utf-8"))
    job = next(task for task in tasks if task["upid"] == FAILED_JOB)
    upids = []
    for day in range(1, 5):  # four more failed jobs, one a day before this one
        start = job["starttime"] - day * 86400
        upid = f"UPID:pve1:000B2C3D:3251470A:{start:08X}:vzdump::root@pam:"
        tasks.append({**job, "starttime": start, "endtime": start + 97, "upid": upid})
        upids.append(upid)
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    fake.answer(
        "pvesh get /nodes/pve1/tasks --typefilter vzdump --limit 1000 --output-format json", path
    )

    def log(upid: str) -> str:
        return f"pvesh get /nodes/pve1/tasks/{upid}/log --limit 20000 --output-format json"

    broken = log(upids[0])
    fake.answer(broken, stdout="no such task\n", exit=255)
    fake.answer(log(upids[1]), "pvesh_task_log_job_errors.json")
    collector = PveBackupCollector(SETTINGS)
    backups = by(collector.collect(NOW), "pve_backup", "id")
    asked = [
        call for call in fake.calls() if call.endswith("/log --limit 20000 --output-format json")
    ]
    assert sorted(asked) == sorted([log(FAILED_JOB), broken, log(upids[1])])  # the 3 newest
    assert backups["qemu/103"].fields["last_failure_timestamp_seconds"] == 1713049297.0

    fake.answer(broken, "pvesh_task_log_job_errors.json")
    collector.collect(NOW)
    asked = [
        call for call in fake.calls() if call.endswith("/log --limit 20000 --output-format json")
    ]
    assert len(asked) == 4 and asked[-1] == broken  # only the one that failed is read again
    assert sorted(collector.logs) == sorted([FAILED_JOB, upids[0], upids[1]])


def test_pve_backup_without_apt_access_sends_no_update_count(fake: FakeCommands) -> None:
    fake.answer(
        "pvesh get /nodes/pve1/apt/update --output-format json",
        stderr="Permission check failed\n",
        exit=2,
    )
    samples = PveBackupCollector(SETTINGS).collect(NOW)
    assert not [s for s in samples if s.measurement == "pve_updates"]
    assert by(samples, "pve_backup", "id")


def test_samples_survive_the_wire(fake: FakeCommands) -> None:
    samples = [
        *ZfsCollector(SETTINGS, arcstats=str(FIXTURES / "arcstats.txt")).collect(NOW),
        *PveCollector(SETTINGS).collect(NOW),
        *PveBackupCollector(SETTINGS).collect(NOW),
    ]
    batch = decode(encode(Batch(1, NOW / 1e9, tuple(samples))))
    assert isinstance(batch, Batch) and list(batch.samples) == samples
