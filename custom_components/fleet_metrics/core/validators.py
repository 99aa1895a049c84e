"""Voluptuous validators shared by the runner's config and the Home Assistant flows.

The error messages are our own: the runner prints them as ``key: message``, so they must read
well whatever validation library produced the path.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol


def _shown(value: Any) -> str:
    """A value as the config file spells it (TOML booleans are lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _check_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise vol.Invalid(f"must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise vol.Invalid(f"must be at most {maximum:g}, got {value:g}")


def number(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any], float]:
    """A number (integer or float) in range, as a float.

    Strict where ``vol.Coerce(float)`` is not: ``true`` is not 1.0 and ``"5"`` is not 5.
    """

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid(f"expected a number, got {_shown(value)}")
        result = float(value)
        if result != result or result in (float("inf"), float("-inf")):
            raise vol.Invalid(f"expected a finite number, got {_shown(value)}")
        _check_range(result, minimum, maximum)
        return result

    return validate


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    """A whole number in range. A float with no fraction (``1883.0``, as HA forms give) is
    accepted; booleans and strings are not."""

    def validate(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"expected a whole number, got {_shown(value)}")
        _check_range(value, minimum, maximum)
        return value

    return validate


positive_seconds = number(0.05, 86400)
port_number = integer(1, 65535)
listen_port = integer(0, 65535)


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _is_host(name: str) -> bool:
    """An IP address or a DNS name (``urlsplit`` takes any text after ``http://``)."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        labels = name.removesuffix(".").split(".")
        return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
    return True


def http_url(value: Any) -> str:
    """An http(s) URL with a host; a bare host name gets ``http://``."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a URL such as http://opendtu.local")
    text = value.strip()
    # urlsplit drops tabs and newlines before parsing: "http://\ndtu" would pass with a good
    # host but be stored, and requested, as typed.
    if not text.isprintable() or any(char.isspace() for char in text):
        raise vol.Invalid(f"a URL has no spaces or control characters, got {value!r}")
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)  # raises on e.g. "http://[::1"
        host = parts.hostname
    except ValueError as err:
        raise vol.Invalid(f"not a URL: {value!r}") from err
    if parts.scheme not in ("http", "https") or not host:
        raise vol.Invalid(f"expected an http:// or https:// URL, got {value!r}")
    if not _is_host(host):
        raise vol.Invalid(f"{host!r} is not a host name or an IP address")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as err:
        raise vol.Invalid(f"bad port in {value!r}") from err
    return text.rstrip("/")


_LISTEN_HINT = "expected host:port, e.g. 127.0.0.1:9847 or [::1]:9847"


def listen_address(value: Any) -> str:
    """``host:port`` (``[v6]:port`` too), or the empty string to disable.

    Only the form is checked here; whether the host resolves to a local address and the port
    is free is known when the runner binds it, before any source starts.
    """
    if value == "":
        return ""
    if not isinstance(value, str) or ":" not in value:
        raise vol.Invalid(f"{_LISTEN_HINT}, got {_shown(value)}")
    host, _, port = value.rpartition(":")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise vol.Invalid(f"{_LISTEN_HINT}, got {value!r}")
    elif not host or ":" in host or "[" in host or "]" in host:
        raise vol.Invalid(f"{_LISTEN_HINT}, got {value!r}")
    if any(char.isspace() for char in host):
        raise vol.Invalid(f"{_LISTEN_HINT}, got {value!r}")
    if not port.isascii() or not port.isdigit():
        raise vol.Invalid(f"the port of {value!r} is not a number")
    try:
        listen_port(int(port))  # 0 asks the OS for a free port
    except vol.Invalid as err:
        raise vol.Invalid(f"the port of {value!r} {err.msg}") from err
    return value


def split_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def existing_file(value: Any) -> str:
    """The path of a file that exists and can be read (certificates, keys)."""
    if not isinstance(value, str) or not value:
        raise vol.Invalid(f"expected a file path, got {_shown(value)}")
    if not os.path.isfile(value):
        what = "is not a file" if os.path.exists(value) else "does not exist"
        raise vol.Invalid(f"{value} {what}")
    if not os.access(value, os.R_OK):
        raise vol.Invalid(f"{value} cannot be read (permission denied)")
    return value


def file_in_existing_folder(value: Any) -> str:
    """A file path whose folder exists (the file itself is created on first write);
    ``""`` disables whatever the file is for."""
    if value == "":
        return ""
    if not isinstance(value, str):
        raise vol.Invalid(f"expected a file path, got {_shown(value)}")
    if os.path.isdir(value):
        raise vol.Invalid(f"{value} is a folder; give a file name inside it")
    folder = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(folder):
        raise vol.Invalid(f"the folder {folder} does not exist")
    return value
