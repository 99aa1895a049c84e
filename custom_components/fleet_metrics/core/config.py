"""The runner's configuration: voluptuous schemas and one readable error per mistake."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import voluptuous as vol

from .exporters.prometheus import DEFAULT_MAX_SERIES
from .log_context import LOG_FORMATS, LOG_LEVELS
from .mqtt.settings import BROKER_SCHEMA
from .sources import KINDS
from .validators import file_in_existing_folder, integer, listen_address, number, positive_seconds

DEFAULT_LISTEN = "127.0.0.1:9847"


class ConfigError(Exception):
    """A configuration that must not be started; the message names the key."""


def line_protocol_output(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    if value in ("stdout", "none") or value.startswith(("file:", "http://", "https://")):
        if value == "file:":
            raise vol.Invalid("file: needs a path, e.g. file:/var/lib/fleet-metrics/out.lp")
        return value
    raise vol.Invalid(f"expected stdout, none, file:/path or an http(s) write URL, got {value!r}")


PROMETHEUS_SCHEMA = vol.Schema(
    {
        vol.Optional("listen", default=DEFAULT_LISTEN): listen_address,
        vol.Optional("ttl", default=300.0): positive_seconds,
        vol.Optional("max_series", default=DEFAULT_MAX_SERIES): integer(100),
    }
)


def _write_api_credentials(value: dict[str, Any]) -> dict[str, Any]:
    """Credentials that fit the output: refused here rather than answered 400 or 401 by the
    server for every chunk.

    - ``token`` (InfluxDB 2.x/3.x ``Authorization: Token``) and ``username``/``password``
      (1.x basic auth) are for an http(s) output, and one of the two;
    - a URL that names the 2.x API (``/api/v2/write``) needs its ``bucket`` parameter.
    """
    output = value["output"]
    credentials = [key for key in ("token", "username", "password") if value[key]]
    if not output.startswith(("http://", "https://")):
        if credentials:
            raise vol.Invalid(f"{credentials[0]} is only used with an http(s) write URL output")
        return value
    if value["password"] and not value["username"]:
        raise vol.Invalid("password needs a username")
    parts = urlsplit(output)
    if value["username"] and (parts.username or parts.password):
        raise vol.Invalid("username is given twice: in the output URL and as username")
    if value["token"] and (value["username"] or parts.username):
        raise vol.Invalid("token (InfluxDB 2.x/3.x) and username/password (1.x) exclude each other")
    if parts.path.rstrip("/").endswith("/api/v2/write") and not parse_qs(parts.query).get("bucket"):
        raise vol.Invalid(
            "an /api/v2/write URL needs ?bucket=NAME (and &org=NAME for InfluxDB 2.x)"
        )
    return value


LINE_PROTOCOL_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("output", default="stdout"): line_protocol_output,
            vol.Optional("flush_interval", default=10.0): positive_seconds,
            vol.Optional("max_buffer", default=100_000): integer(1),
            vol.Optional("batch_lines", default=5000): integer(1),
            vol.Optional("batch_bytes", default=1_000_000): integer(1024),
            # InfluxDB 2.x/3.x API token, sent as "Authorization: Token ...".
            vol.Optional("token", default=""): str,
            # InfluxDB 1.x user, sent with HTTP basic auth.
            vol.Optional("username", default=""): str,
            vol.Optional("password", default=""): str,
            vol.Optional("timeout", default=10.0): positive_seconds,
        }
    ),
    _write_api_credentials,
)


def _kind(value: Any) -> str:
    """One of ``KINDS``, looked up when validating (a test may register a kind of its own)."""
    if not isinstance(value, str) or value not in KINDS:
        raise vol.Invalid(f"expected one of {', '.join(sorted(KINDS))}, got {value!r}")
    return value


_SOURCE_BASE = {
    vol.Required("kind"): _kind,
    vol.Required("name"): vol.All(str, vol.Match(r"^[A-Za-z0-9_.-]+$")),
}


def _source(value: Any) -> dict[str, Any]:
    """Validate a source against the schema of its own kind."""
    if not isinstance(value, Mapping):
        raise vol.Invalid("expected a table")
    vol.Schema(_SOURCE_BASE, extra=vol.ALLOW_EXTRA)(value)
    schema = vol.Schema({**_SOURCE_BASE, **KINDS[value["kind"]].schema})
    validated: dict[str, Any] = schema(dict(value))
    return validated


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("prometheus", default={}): PROMETHEUS_SCHEMA,
        vol.Optional("line_protocol", default={}): LINE_PROTOCOL_SCHEMA,
        vol.Optional("brokers", default={}): {str: BROKER_SCHEMA},
        vol.Optional("log_level", default="info"): vol.In(LOG_LEVELS),
        vol.Optional("log_format", default="text"): vol.In(LOG_FORMATS),
        # Seconds SIGTERM/SIGINT allow for stopping sources and the last flush.
        vol.Optional("shutdown_timeout", default=5.0): number(0.1, 300),
        vol.Optional("dead_letter", default=""): file_in_existing_folder,
        vol.Optional("dead_letter_max_bytes", default=10_485_760): integer(4096),
        vol.Optional("sources", default=[]): [_source],
    }
)


def _path(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The validated config with defaults filled in; ConfigError names the first bad key."""
    try:
        config: dict[str, Any] = CONFIG_SCHEMA(dict(raw))
    except vol.MultipleInvalid as err:
        first = sorted(err.errors, key=lambda e: [str(p) for p in e.path])[0]
        raise ConfigError(f"{_path(first.path)}: {first.msg}") from err
    if not config["sources"]:
        raise ConfigError("sources: nothing to run; add at least one [[sources]] table")
    names: set[str] = set()
    agents = [i for i, source in enumerate(config["sources"]) if source["kind"] == "agents"]
    if len(agents) > 1:
        # One endpoint (/api/agent) and one host database per runner.
        raise ConfigError(f"sources[{agents[1]}].kind: only one agents source per runner")
    for index, source in enumerate(config["sources"]):
        if source["name"] in names:
            raise ConfigError(f"sources[{index}].name: {source['name']!r} is used twice")
        names.add(source["name"])
        broker = source.get("broker")
        if broker is not None and broker not in config["brokers"]:
            raise ConfigError(f"sources[{index}].broker: no [brokers.{broker}] is configured")
    return config


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    try:
        text = data.decode("utf-8-sig")  # an editor's BOM is harmless
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} on line {line})"
        ) from err
    return loads(text)


def loads(text: str) -> dict[str, Any]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}") from err
    return validate(raw)
