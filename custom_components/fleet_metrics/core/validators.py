"""Voluptuous validators shared by the runner's config and the Home Assistant flows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

positive_seconds = vol.All(vol.Coerce(float), vol.Range(min=0.05, max=86400))
port_number = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))
listen_port = vol.All(vol.Coerce(int), vol.Range(min=0, max=65535))


def http_url(value: Any) -> str:
    """An http(s) URL with a host; a bare host name gets ``http://``."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a URL such as http://opendtu.local")
    text = value.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise vol.Invalid(f"expected an http:// or https:// URL, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as err:
        raise vol.Invalid(f"bad port in {value!r}") from err
    return text.rstrip("/")


def listen_address(value: Any) -> str:
    """``host:port`` (``[v6]:port`` too), or the empty string to disable."""
    if value == "":
        return ""
    if not isinstance(value, str) or ":" not in value:
        raise vol.Invalid("expected host:port, e.g. 127.0.0.1:9847")
    host, _, port = value.rpartition(":")
    listen_port(port)  # 0 asks the OS for a free port
    if not host:
        raise vol.Invalid("expected host:port, e.g. 127.0.0.1:9847")
    return value


def split_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)
