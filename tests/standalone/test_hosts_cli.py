"""``fleet-metrics hosts add|list|rotate|remove``: output, exit codes, and what is stored."""

from __future__ import annotations

import io
import re
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from fleet_metrics.core.sources.agents.store import HostStore, Progress
from fleet_metrics.core.sources.agents.tokens import check, hash_token
from fleet_metrics.hosts import run_hosts


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[prometheus]
listen = "192.0.2.10:9108"

[[sources]]
kind = "agents"
name = "agents"
database = "{tmp_path / "agents.sqlite"}"
grace = 60
""",
        encoding="utf-8",
    )
    return path


def hosts(config: Path, action: str, name: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = run_hosts(config, action, name, out)
    return code, out.getvalue()


def stored(config: Path) -> HostStore:
    return HostStore(config.parent / "agents.sqlite")


def test_add_prints_the_agent_config_and_the_token_last(config: Path) -> None:
    code, out = hosts(config, "add", "pve1")
    assert code == 0
    *config_lines, token = out.splitlines()
    assert re.fullmatch(r"fma_[A-Za-z0-9_-]{43}", token)
    agent = tomllib.loads("\n".join(config_lines))
    assert agent["host"] == "pve1"
    assert agent["servers"] == [
        {"url": "ws://192.0.2.10:9108/api/agent", "token_file": "/etc/fleet-metrics/agent.token"}
    ]
    store = stored(config)
    assert check(hash_token(token), store.hosts()["pve1"].token_hash)
    store.close()


def test_the_token_is_never_stored_nor_listed(config: Path) -> None:
    _, out = hosts(config, "add", "pve1")
    token = out.splitlines()[-1]
    _, listed = hosts(config, "list")
    assert token not in listed and hash_token(token) not in listed
    raw = (config.parent / "agents.sqlite").read_bytes()
    assert token.encode() not in raw


def test_list_shows_online_last_seen_and_version(config: Path) -> None:
    hosts(config, "add", "pve1")
    hosts(config, "add", "nas")
    store = stored(config)
    store.save_progress([Progress("pve1", "b", 3, time.time(), "0.9.0"),
                         Progress("nas", "b", 3, time.time() - 3600, "0.8.1")])  # fmt: skip
    store.close()
    code, out = hosts(config, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "ONLINE", "LAST", "SEEN", "AGENT", "VERSION"]
    table = {row.split()[0]: row.split()[1:] for row in rows}
    assert table["pve1"][0] == "yes" and table["pve1"][-1] == "0.9.0"
    assert table["nas"][0] == "no" and table["nas"][-1] == "0.8.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", table["pve1"][1])


def test_a_host_never_seen_is_listed_as_never(config: Path) -> None:
    hosts(config, "add", "new")
    _, out = hosts(config, "list")
    assert out.splitlines()[1].split()[:3] == ["new", "no", "never"]


def test_rotate_gives_a_new_token_and_the_old_one_stops_working(config: Path) -> None:
    _, out = hosts(config, "add", "pve1")
    old = out.splitlines()[-1]
    code, out = hosts(config, "rotate", "pve1")
    new = out.splitlines()[-1]
    assert code == 0 and new.startswith("fma_") and new != old
    store = stored(config)
    record = store.hosts()["pve1"]
    store.close()
    assert check(hash_token(new), record.token_hash)
    assert not check(hash_token(old), record.token_hash)


def test_remove_deletes_the_host(config: Path) -> None:
    hosts(config, "add", "pve1")
    assert hosts(config, "remove", "pve1")[0] == 0
    with sqlite3.connect(config.parent / "agents.sqlite") as db:
        assert db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("action", "name", "message"),
    [
        ("add", "bad name", "invalid host name"),
        ("rotate", "nope", "no host named 'nope'"),
        ("remove", "nope", "no host named 'nope'"),
    ],
)
def test_failures_exit_1_with_one_line(
    config: Path, action: str, name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = hosts(config, action, name)
    assert code == 1 and out == ""
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_adding_a_host_twice_fails(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hosts(config, "add", "pve1")
    assert hosts(config, "add", "pve1") == (1, "")
    assert "hosts rotate pve1" in capsys.readouterr().err


def test_a_config_without_an_agents_source_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[brokers.home]\nhost = "127.0.0.1"\n'
        '[[sources]]\nkind = "tasmota"\nname = "t"\nbroker = "home"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "fleet_metrics", "hosts", "list", "-c", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'fleet-metrics: config error: sources: no [[sources]] with kind = "agents"'
    )


def test_the_real_command_prints_the_token_as_its_last_line(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fleet_metrics", "hosts", "add", "pve1", "-c", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = done.stdout.splitlines()[-1]
    store = stored(config)
    assert check(hash_token(token), store.hosts()["pve1"].token_hash)
    store.close()
