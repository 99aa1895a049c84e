"""The SQLite host store: round trip, WAL, and the ``hosts`` command writing meanwhile."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from custom_components.fleet_metrics.core.sources.agents.store import (
    HostStore,
    Progress,
    StoreError,
    valid_host_name,
)
from custom_components.fleet_metrics.core.sources.agents.tokens import check, hash_token


@pytest.fixture
def store(tmp_path: Path) -> HostStore:
    opened = HostStore(tmp_path / "hosts.sqlite")
    yield opened  # type: ignore[misc]
    opened.close()


def test_round_trip(store: HostStore, tmp_path: Path) -> None:
    before = time.time()
    token = store.add("pve1")
    store.add("nas")
    store.save_progress([Progress("pve1", "boot-a", 42, 1234.5, "0.9.0")])
    store.close()
    reopened = HostStore(tmp_path / "hosts.sqlite")
    records = reopened.hosts()
    reopened.close()
    assert list(records) == ["nas", "pve1"]
    pve1 = records["pve1"]
    assert check(hash_token(token), pve1.token_hash)
    assert pve1.created >= before and pve1.rotated is None
    assert (pve1.boot_id, pve1.last_seq, pve1.last_seen, pve1.agent_version) == (
        "boot-a", 42, 1234.5, "0.9.0"
    )  # fmt: skip
    assert (records["nas"].last_seq, records["nas"].last_seen) == (0, None)


def test_rotate_replaces_the_hash_and_keeps_the_progress(store: HostStore) -> None:
    old = store.add("pve1")
    store.save_progress([Progress("pve1", "b", 7, 1.0, "v")])
    new = store.rotate("pve1")
    record = store.hosts()["pve1"]
    assert new != old
    assert check(hash_token(new), record.token_hash)
    assert not check(hash_token(old), record.token_hash)
    assert record.rotated is not None and record.last_seq == 7


def test_errors_name_the_problem(store: HostStore) -> None:
    store.add("pve1")
    with pytest.raises(StoreError, match="exists"):
        store.add("pve1")
    with pytest.raises(StoreError, match="no host named"):
        store.rotate("nope")
    with pytest.raises(StoreError, match="no host named"):
        store.remove("nope")
    with pytest.raises(StoreError, match="invalid host name"):
        store.add("bad name")
    assert list(store.hosts()) == ["pve1"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [("pve1", True), ("a.b-c_d", True), ("x" * 63, True), ("x" * 64, False), ("", False),
     ("-x", False), ("a b", False), ("a/b", False), ("ä", False), ("a\n", False)],
)  # fmt: skip
def test_host_names(name: str, valid: bool) -> None:
    assert valid_host_name(name) is valid


def test_progress_of_a_removed_host_does_not_bring_it_back(store: HostStore) -> None:
    store.add("pve1")
    store.remove("pve1")
    store.save_progress([Progress("pve1", "b", 3, 1.0, "v")])
    assert store.hosts() == {}


def test_the_database_is_in_wal_mode(store: HostStore) -> None:
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_version_moves_only_for_another_connections_commit(store: HostStore) -> None:
    version = store.data_version()
    store.add("mine")
    assert store.data_version() == version
    other = HostStore(store.path)
    other.add("theirs")
    other.close()
    assert store.data_version() != version
    assert list(store.hosts()) == ["mine", "theirs"]


def hosts_command(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_metrics", "hosts", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_hosts_command_writes_while_the_runner_holds_the_database(
    store: HostStore, tmp_path: Path
) -> None:
    """The runner keeps its connection open, reads, and saves progress in transactions; the
    command (another process) adds, rotates and removes meanwhile, waiting out a save."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[sources]]\nkind = "agents"\nname = "agents"\ndatabase = "{store.path}"\n',
        encoding="utf-8",
    )
    store.add("runner-host")
    version = store.data_version()
    # A save in progress: the runner's write lock, held longer than a save ever takes.
    store._db.execute("BEGIN IMMEDIATE")  # holding the lock is the point
    threading.Timer(0.5, lambda: store._db.execute("COMMIT")).start()
    added = hosts_command(config, "add", "pve1")
    assert added.returncode == 0, added.stderr
    token = added.stdout.splitlines()[-1]
    # Reads go on while another process writes (WAL), and see each change.
    assert check(hash_token(token), store.hosts()["pve1"].token_hash)
    assert store.data_version() != version
    version = store.data_version()
    rotated = hosts_command(config, "rotate", "pve1")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.splitlines()[-1]
    assert not check(hash_token(token), store.hosts()["pve1"].token_hash)
    assert check(hash_token(new), store.hosts()["pve1"].token_hash)
    assert store.data_version() != version
    store.save_progress([Progress("pve1", "b", 5, 2.0, "v")])
    removed = hosts_command(config, "remove", "pve1")
    assert removed.returncode == 0, removed.stderr
    assert list(store.hosts()) == ["runner-host"]
