"""The agent's TOML config: voluptuous schemas, one readable error naming the key.

Tokens are secrets: no error message repeats a token, a token is read from ``token_file``
when the config is loaded (so a missing or unreadable file stops the agent at once, not at
the first connection), and a URL carrying a query string or credentials is refused, because
the token travels only in the ``Authorization`` header.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import voluptuous as vol

from ..log_context import LOG_FORMATS, LOG_LEVELS
from ..validators import existing_file, integer, number
from .collectors import COLLECTORS, CollectorSettings, Patterns, Tier
from .collectors.base import (
    DEFAULT_DISK_EXCLUDE,
    DEFAULT_FS_EXCLUDE_FSTYPES,
    DEFAULT_FS_EXCLUDE_MOUNTPOINTS,
    DEFAULT_MAX_GUESTS,
    DEFAULT_NET_EXCLUDE,
)

DEFAULT_INTERVALS: Final[Mapping[Tier, float]] = {"fast": 30.0, "medium": 300.0, "slow": 1800.0}
DEFAULT_BUFFER_BATCHES: Final = 10_000
MAX_SERVERS: Final = 16
MAX_LISTED_GUESTS: Final = 10_000
DEFAULT_COMMAND_TIMEOUT: Final = 10.0
_NODE_NAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


class AgentConfigError(Exception):
    """A config the agent must not start with; the message names the key, on one line
    whatever the values in it (a path may hold a line break)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One server the agent reports to. ``token`` never appears in a repr."""

    url: str
    token: str = field(repr=False)
    ca_file: str = ""

    @property
    def name(self) -> str:
        """The server as logs name it: its URL (which never holds a secret)."""
        return self.url


@dataclass(frozen=True, slots=True)
class AgentConfig:
    host: str
    servers: tuple[ServerConfig, ...]
    intervals: Mapping[Tier, float]
    buffer_batches: int
    collectors: Mapping[str, bool]
    settings: CollectorSettings
    log_level: str = "info"
    log_format: str = "text"
    warnings: tuple[str, ...] = ()


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a non-empty string")
    return value.strip()


def _host(value: Any) -> str:
    text = _text(value)
    if len(text) > 253 or any(not char.isprintable() or char.isspace() for char in text):
        raise vol.Invalid("expected a host name without spaces, at most 253 characters")
    return text


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise vol.Invalid('expected a list of name patterns, e.g. ["veth*", "lo"]')
    return tuple(value)


def _node(value: Any) -> str:
    """A PVE node name: a host name label, as PVE allows it."""
    text = _text(value)
    if not _NODE_NAME.fullmatch(text):
        raise vol.Invalid("expected a node name (letters, digits and '-', at most 63)")
    return text


def _vmids(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        type(item) is int and 1 <= item <= 999_999_999 for item in value
    ):
        raise vol.Invalid("expected a list of guest ids (vmids), e.g. [100, 101]")
    if len(value) > MAX_LISTED_GUESTS:
        raise vol.Invalid(f"expected at most {MAX_LISTED_GUESTS} guest ids")
    return tuple(sorted(set(value)))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid("expected true or false")
    return value


def _url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise vol.Invalid("expected a ws:// or wss:// URL, e.g. ws://runner:9847/api/agent")
    if parts.query or parts.username or parts.password:
        raise vol.Invalid(
            "must not carry a query string or credentials; put the token in token or token_file"
        )
    if parts.fragment:
        raise vol.Invalid("must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise vol.Invalid("has a bad port") from None
    if parts.path in ("", "/"):
        raise vol.Invalid(
            "expected the endpoint path too: /api/agent (runner) or "
            "/api/fleet_metrics/agent (Home Assistant)"
        )
    return text


def _token(value: Any) -> str:
    """A bearer token; the message never echoes the value."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected the host's token as a non-empty string")
    token = value.strip()
    if not all("\x21" <= char <= "\x7e" for char in token):
        raise vol.Invalid("must be printable ASCII without spaces (the token as shown once)")
    return token


def _read_token(path: str) -> str:
    """The token in ``path``, stripped; the error says what is wrong with the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise vol.Invalid(f"{path} does not exist") from None
    except PermissionError:
        raise vol.Invalid(f"{path} cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise vol.Invalid(f"{path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise vol.Invalid(f"{path} cannot be read ({type(err).__name__})") from None
    if not text.strip():
        raise vol.Invalid(f"{path} is empty")
    try:
        return _token(text)
    except vol.Invalid as err:
        raise vol.Invalid(f"{path}: the token {err.msg}") from None


SERVER_SCHEMA = vol.Schema(
    {
        vol.Required("url"): _url,
        vol.Optional("token"): _token,
        vol.Optional("token_file"): _text,
        vol.Optional("ca_file"): existing_file,
    }
)


def _patterns_schema(include: tuple[str, ...], exclude: tuple[str, ...]) -> dict[Any, Any]:
    return {
        vol.Optional("include", default=list(include)): _patterns,
        vol.Optional("exclude", default=list(exclude)): _patterns,
    }


def _collectors(value: Any) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        raise vol.Invalid("expected a table of collector = true/false")
    return dict(vol.Schema({vol.In(sorted(COLLECTORS)): _boolean})(dict(value)))


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Required("servers"): vol.All(
            [SERVER_SCHEMA], vol.Length(min=1, max=MAX_SERVERS, msg="expected 1 to 16 servers")
        ),
        vol.Optional("host"): _host,
        vol.Optional("log_level", default="info"): vol.In(LOG_LEVELS),
        vol.Optional("log_format", default="text"): vol.In(LOG_FORMATS),
        vol.Optional("per_cpu", default=False): _boolean,
        vol.Optional("buffer_batches", default=DEFAULT_BUFFER_BATCHES): integer(1, 1_000_000),
        vol.Optional("intervals", default={}): {
            vol.Optional(tier, default=seconds): number(1, 86400)
            for tier, seconds in DEFAULT_INTERVALS.items()
        },
        vol.Optional("filesystems", default={}): {
            vol.Optional("include_mountpoints", default=[]): _patterns,
            vol.Optional(
                "exclude_mountpoints", default=list(DEFAULT_FS_EXCLUDE_MOUNTPOINTS)
            ): _patterns,
            vol.Optional("include_fstypes", default=[]): _patterns,
            vol.Optional("exclude_fstypes", default=list(DEFAULT_FS_EXCLUDE_FSTYPES)): _patterns,
        },
        vol.Optional("network", default={}): _patterns_schema((), DEFAULT_NET_EXCLUDE),
        vol.Optional("disks", default={}): {
            **_patterns_schema((), DEFAULT_DISK_EXCLUDE),
            vol.Optional("partitions", default=False): _boolean,
        },
        vol.Optional("collectors", default={}): _collectors,
        vol.Optional("proxmox", default={}): {
            vol.Optional("node"): _node,
            vol.Optional("guests", default=[]): _vmids,
            vol.Optional("max_guests", default=DEFAULT_MAX_GUESTS): integer(1, MAX_LISTED_GUESTS),
            vol.Optional("command_timeout", default=DEFAULT_COMMAND_TIMEOUT): number(1, 300),
        },
    }
)


def _path(path: list[Any]) -> str:
    """``servers[0].url``; a key that is not a plain name is quoted (``intervals['\\n']``)
    so the message stays one line."""
    out = ""
    for step in path:
        part = step.schema if isinstance(step, vol.Marker) else step
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{str(part)!r}]"
    return out or "(top level)"


def _is_loopback(url: str) -> bool:
    hostname = urlsplit(url).hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _server(index: int, raw: Mapping[str, Any]) -> ServerConfig:
    where = f"servers[{index}]"
    if "token" in raw and "token_file" in raw:
        raise AgentConfigError(f"{where}.token: give token or token_file, not both")
    if "token_file" in raw:
        try:
            token = _read_token(raw["token_file"])
        except vol.Invalid as err:
            raise AgentConfigError(f"{where}.token_file: {err.msg}") from None
    elif "token" in raw:
        token = raw["token"]
    else:
        raise AgentConfigError(f"{where}.token: required (or token_file with the token in it)")
    return ServerConfig(url=raw["url"], token=token, ca_file=raw.get("ca_file", ""))


def validate(raw: Mapping[str, Any], agent_version: str = "") -> AgentConfig:
    """The validated config with defaults filled in; AgentConfigError names the first bad key."""
    try:
        config: dict[str, Any] = CONFIG_SCHEMA(dict(raw))
    except vol.MultipleInvalid as err:
        first = sorted(err.errors, key=lambda e: [str(p) for p in e.path])[0]
        message = first.msg
        if message == "extra keys not allowed":
            message = "unknown key"
        raise AgentConfigError(f"{_path(first.path)}: {message}") from None
    servers = tuple(_server(index, raw) for index, raw in enumerate(config["servers"]))
    urls = [server.url for server in servers]
    for index, url in enumerate(urls):
        if url in urls[:index]:
            raise AgentConfigError(f"servers[{index}].url: {url} is listed twice")
    warnings = tuple(
        f"{server.url}: ws:// sends the token unencrypted; use wss:// across a network"
        for server in servers
        if server.url.startswith("ws://") and not _is_loopback(server.url)
    )
    fs, net, disks = config["filesystems"], config["network"], config["disks"]
    proxmox = config["proxmox"]
    settings = CollectorSettings(
        per_cpu=config["per_cpu"],
        fs_fstypes=Patterns(tuple(fs["include_fstypes"]), tuple(fs["exclude_fstypes"])),
        fs_mountpoints=Patterns(tuple(fs["include_mountpoints"]), tuple(fs["exclude_mountpoints"])),
        net_devices=Patterns(tuple(net["include"]), tuple(net["exclude"])),
        disk_devices=Patterns(tuple(disks["include"]), tuple(disks["exclude"])),
        disk_partitions=disks["partitions"],
        agent_version=agent_version,
        command_timeout=proxmox["command_timeout"],
        pve_node=proxmox.get("node", ""),
        pve_guests=proxmox["guests"],
        pve_max_guests=proxmox["max_guests"],
        medium_interval=config["intervals"]["medium"],
    )
    return AgentConfig(
        host=config.get("host") or socket.gethostname(),
        servers=servers,
        intervals=dict(config["intervals"]),
        buffer_batches=config["buffer_batches"],
        collectors=config["collectors"],
        settings=settings,
        log_level=config["log_level"],
        log_format=config["log_format"],
        warnings=warnings,
    )


def load(path: str | os.PathLike[str], agent_version: str = "") -> AgentConfig:
    """Read and validate ``path``; every problem is an AgentConfigError naming the key."""
    try:
        with open(path, "rb") as file:
            raw = tomllib.load(file)
    except FileNotFoundError:
        raise AgentConfigError(f"{path}: no such file") from None
    except PermissionError:
        raise AgentConfigError(f"{path}: cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise AgentConfigError(f"{path}: is a folder, not a file") from None
    except tomllib.TOMLDecodeError as err:
        raise AgentConfigError(f"{path}: not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AgentConfigError(f"{path}: cannot be read ({type(err).__name__})") from None
    return validate(raw, agent_version)
