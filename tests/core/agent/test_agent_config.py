"""Agent config: defaults, tokens read from files, and one line naming the key for a mistake."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent.config import (
    AgentConfigError,
    load,
    validate,
)

TOKEN = "fma_c2VjcmV0LXRva2VuLW5vYm9keS1zaG91bGQtc2VlLWl0"
URL = "ws://127.0.0.1:9847/api/agent"


def server(**extra: Any) -> dict[str, Any]:
    return {"url": URL, "token": TOKEN, **extra}


def test_defaults_are_the_documented_ones() -> None:
    config = validate({"servers": [server()]}, agent_version="1.2.3")
    assert config.host == socket.gethostname()
    assert dict(config.intervals) == {"fast": 30.0, "medium": 300.0, "slow": 1800.0}
    assert config.buffer_batches == 10_000
    assert config.servers[0].token == TOKEN
    assert TOKEN not in repr(config)
    settings_ = config.settings
    assert settings_.agent_version == "1.2.3"
    assert not settings_.per_cpu
    for name in ("lo", "veth100i0", "tap100i0", "fwbr100i0", "fwpr100p0", "fwln100i0"):
        assert not settings_.net_devices.allows(name)
    assert settings_.net_devices.allows("eno1")
    for fstype in ("tmpfs", "overlay", "squashfs", "devtmpfs"):
        assert not settings_.fs_fstypes.allows(fstype)
    assert not settings_.fs_mountpoints.allows("/rpool/data/subvol-101-disk-0")
    assert settings_.fs_mountpoints.allows("/rpool/data")
    for disk in ("loop0", "ram0", "dm-0", "zd16"):
        assert not settings_.disk_devices.allows(disk)
    assert config.warnings == ()


def test_a_full_config_file(tmp_path: Path) -> None:
    token_file = tmp_path / "ha.token"
    token_file.write_text(f"  {TOKEN}\n", encoding="utf-8")
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here", encoding="utf-8")
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
host = "pve1"
per_cpu = true
buffer_batches = 500
log_level = "debug"

[intervals]
fast = 10

[[servers]]
url = "{URL}"
token = "{TOKEN}"

[[servers]]
url = "wss://ha.example:8123/api/fleet_metrics/agent"
token_file = "{token_file}"
ca_file = "{ca}"

[network]
exclude = ["lo"]

[disks]
exclude = []
partitions = true

[filesystems]
include_fstypes = ["zfs"]

[collectors]
hwmon = false
""",
        encoding="utf-8",
    )
    config = load(path)
    assert config.host == "pve1"
    assert config.settings.per_cpu
    assert config.buffer_batches == 500
    assert config.log_level == "debug"
    assert dict(config.intervals) == {"fast": 10.0, "medium": 300.0, "slow": 1800.0}
    assert [s.token for s in config.servers] == [TOKEN, TOKEN]
    assert config.servers[1].ca_file == str(ca)
    assert config.settings.net_devices.allows("tap100i0")
    assert config.settings.disk_devices.allows("dm-0")
    assert config.settings.disk_partitions
    assert config.settings.fs_fstypes.allows("zfs")
    assert not config.settings.fs_fstypes.allows("ext4")
    assert dict(config.collectors) == {"hwmon": False}


def test_plain_ws_to_another_host_warns_about_the_token() -> None:
    config = validate({"servers": [server(url="ws://ha.lan:8123/api/fleet_metrics/agent")]})
    assert len(config.warnings) == 1
    assert "unencrypted" in config.warnings[0]


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({}, "servers", "required"),
        ({"servers": []}, "servers", "1 to 16"),
        ({"servers": [server(url="http://x/api/agent")]}, "servers[0].url", "ws://"),
        ({"servers": [server(url="ws://x:99999/api/agent")]}, "servers[0].url", "port"),
        ({"servers": [server(url="ws://x:9847")]}, "servers[0].url", "endpoint path"),
        (
            {"servers": [server(url=f"ws://x/api/agent?token={TOKEN}")]},
            "servers[0].url",
            "query string",
        ),
        (
            {"servers": [server(url=f"wss://h:{TOKEN}@x/api/agent")]},
            "servers[0].url",
            "credentials",
        ),
        ({"servers": [{"url": URL}]}, "servers[0].token", "required"),
        ({"servers": [server(token_file="/x")]}, "servers[0].token", "not both"),
        ({"servers": [server(token=f"{TOKEN} x")]}, "servers[0].token", "without spaces"),
        ({"servers": [server(token="")]}, "servers[0].token", "non-empty"),
        ({"servers": [server(tokn=TOKEN)]}, "servers[0].tokn", "unknown key"),
        ({"servers": [server(ca_file="/nonexistent/ca.pem")]}, "servers[0].ca_file", "does not"),
        ({"servers": [server(), server()]}, "servers[1].url", "twice"),
        ({"servers": [server()], "host": "two words"}, "host", "without spaces"),
        ({"servers": [server()], "per_cpu": "yes"}, "per_cpu", "true or false"),
        ({"servers": [server()], "buffer_batches": 0}, "buffer_batches", "at least 1"),
        ({"servers": [server()], "intervals": {"fast": 0.5}}, "intervals.fast", "at least 1"),
        ({"servers": [server()], "intervals": {"rapid": 5}}, "intervals.rapid", "unknown"),
        ({"servers": [server()], "network": {"exclude": "lo"}}, "network.exclude", "list"),
        ({"servers": [server()], "collectors": {"zfs2": True}}, "collectors.zfs2", "one of"),
        ({"servers": [server()], "collectors": {"cpu": 1}}, "collectors.cpu", "true or false"),
        ({"servers": [server()], "log_level": "loud"}, "log_level", "one of"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(raw: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        validate(raw)
    message = str(caught.value)
    assert message.startswith(f"{key}: "), message
    assert words in message
    assert "\n" not in message
    assert "c2VjcmV0" not in message  # never the token


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "does not exist"), ("", "is empty"), ("   \n", "is empty"), ("a b", "spaces")],
)
def test_token_file_problems_name_the_file(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AgentConfigError, match=rf"^servers\[0\]\.token_file: {path}.*{words}"):
        validate({"servers": [{"url": URL, "token_file": str(path)}]})


def test_token_file_that_is_a_folder_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="is a folder"):
        validate({"servers": [{"url": URL, "token_file": str(tmp_path)}]})
    if os.geteuid() == 0:  # root reads any file; the permission case needs another user
        return
    path = tmp_path / "token"
    path.write_text(TOKEN, encoding="utf-8")
    path.chmod(0)
    with pytest.raises(AgentConfigError, match="permission denied"):
        validate({"servers": [{"url": URL, "token_file": str(path)}]})


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("servers = [", encoding="utf-8")
    with pytest.raises(AgentConfigError, match="not valid TOML"):
        load(bad)


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        "servers",
        "host",
        "per_cpu",
        "buffer_batches",
        "intervals",
        "filesystems",
        "network",
        "disks",
        "collectors",
        "log_level",
        "log_format",
        "other",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.dictionaries(keys, junk, max_size=5),
    servers=st.lists(
        st.dictionaries(
            st.sampled_from(["url", "token", "token_file", "ca_file", "x"]), junk, max_size=4
        ),
        max_size=2,
    ),
)
def test_any_input_is_a_config_or_one_line_naming_a_key(
    raw: dict[str, Any], servers: list[dict[str, Any]]
) -> None:
    raw = {"servers": servers, **raw} if servers else raw
    try:
        validate(raw)
    except AgentConfigError as err:
        message = str(err)
        assert "\n" not in message
        assert ": " in message


def test_proxmox_defaults_and_values() -> None:
    settings_ = validate({"servers": [server()]}).settings
    assert (settings_.pve_node, settings_.pve_guests, settings_.pve_max_guests) == ("", (), 100)
    assert settings_.command_timeout == 10.0
    settings_ = validate(
        {
            "servers": [server()],
            "proxmox": {
                "node": "pve-2",
                "guests": [105, 100, 105],
                "max_guests": 5,
                "command_timeout": 30,
            },
            "collectors": {"zfs": False, "pve": True, "pve_backup": False},
        }
    ).settings
    assert (settings_.pve_node, settings_.pve_guests, settings_.pve_max_guests) == (
        "pve-2",
        (100, 105),
        5,
    )
    assert settings_.command_timeout == 30.0


@pytest.mark.parametrize(
    ("proxmox", "key"),
    [
        ({"node": "pve 1"}, "proxmox.node"),
        ({"node": "-pve"}, "proxmox.node"),
        ({"node": ""}, "proxmox.node"),
        ({"guests": [100, "101"]}, "proxmox.guests"),
        ({"guests": [True]}, "proxmox.guests"),
        ({"guests": [0]}, "proxmox.guests"),
        ({"guests": 100}, "proxmox.guests"),
        ({"max_guests": 0}, "proxmox.max_guests"),
        ({"max_guests": 1.5}, "proxmox.max_guests"),
        ({"max_guests": 100_001}, "proxmox.max_guests"),
        ({"command_timeout": 0}, "proxmox.command_timeout"),
        ({"command_timeout": "10"}, "proxmox.command_timeout"),
        ({"timeout": 10}, "proxmox.timeout"),
    ],
)
def test_bad_proxmox_values_name_the_key(proxmox: dict[str, Any], key: str) -> None:
    with pytest.raises(AgentConfigError, match=rf"^{re.escape(key)}: "):
        validate({"servers": [server()], "proxmox": proxmox})


def test_unknown_collector_names_are_refused_and_the_new_ones_known() -> None:
    validate({"servers": [server()], "collectors": {"zfs": True, "pve": True, "pve_backup": True}})
    with pytest.raises(AgentConfigError, match="collectors"):
        validate({"servers": [server()], "collectors": {"pve_guests": True}})


def test_the_slow_tier_reuses_lists_younger_than_the_medium_interval() -> None:
    config = validate({"servers": [server()], "intervals": {"medium": 120}}, agent_version="1")
    assert config.settings.medium_interval == 120
    assert validate({"servers": [server()]}, agent_version="1").settings.medium_interval == 300
