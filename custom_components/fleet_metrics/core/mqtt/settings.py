"""Broker settings: the schema shared by the runner's config and the HA flows."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from ..validators import port_number

BROKER_SCHEMA = vol.Schema(
    {
        vol.Required("host"): vol.All(str, vol.Length(min=1)),
        vol.Optional("port", default=1883): port_number,
        vol.Optional("username", default=""): str,
        vol.Optional("password", default=""): str,
        vol.Optional("client_id", default=""): str,
        vol.Optional("keepalive", default=60): vol.All(int, vol.Range(min=5, max=3600)),
        vol.Optional("protocol", default="3.1.1"): vol.In(["3.1.1", "5"]),
        vol.Optional("tls", default=False): bool,
        vol.Optional("ca_file", default=""): str,
        vol.Optional("cert_file", default=""): str,
        vol.Optional("key_file", default=""): str,
        vol.Optional("tls_insecure", default=False): bool,
    }
)


def tls_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    """The TLS context the settings ask for; building it reads the certificate files."""
    if not settings.get("tls"):
        return None
    context = ssl.create_default_context(cafile=settings.get("ca_file") or None)
    if settings.get("cert_file"):
        context.load_cert_chain(settings["cert_file"], settings.get("key_file") or None)
    if settings.get("tls_insecure"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
