"""Broker settings: the schema shared by the runner's config and the HA flows."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from ..validators import existing_file, integer, port_number

_TLS_FILES = ("ca_file", "cert_file", "key_file")


def _tls_files(settings: dict[str, Any]) -> dict[str, Any]:
    """With TLS on, every named file must exist and load, so that a typo fails at start
    (naming the key) rather than as a reconnect loop."""
    if not settings["tls"]:
        return settings
    for key in _TLS_FILES:
        if settings[key]:
            try:
                existing_file(settings[key])
            except vol.Invalid as err:
                raise vol.Invalid(err.msg, path=[key]) from err
    if settings["key_file"] and not settings["cert_file"]:
        raise vol.Invalid("a key_file needs the cert_file it belongs to", path=["key_file"])
    try:
        tls_context(settings)
    except TlsFileError as err:
        raise vol.Invalid(str(err), path=[err.key]) from err
    return settings


BROKER_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required("host"): vol.All(str, vol.Length(min=1)),
            vol.Optional("port", default=1883): port_number,
            vol.Optional("username", default=""): str,
            vol.Optional("password", default=""): str,
            vol.Optional("client_id", default=""): str,
            vol.Optional("keepalive", default=60): integer(5, 3600),
            vol.Optional("protocol", default="3.1.1"): vol.In(["3.1.1", "5"]),
            vol.Optional("tls", default=False): bool,
            vol.Optional("ca_file", default=""): str,
            vol.Optional("cert_file", default=""): str,
            vol.Optional("key_file", default=""): str,
            vol.Optional("tls_insecure", default=False): bool,
        }
    ),
    _tls_files,
)


class TlsFileError(ValueError):
    """A certificate or key file that does not load; ``key`` names its setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def tls_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    """The TLS context the settings ask for; building it reads the certificate files."""
    if not settings.get("tls"):
        return None
    ca_file = settings.get("ca_file") or None
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        raise TlsFileError("ca_file", f"{ca_file}: not a usable CA certificate ({err})") from err
    if settings.get("cert_file"):
        cert_file, key_file = settings["cert_file"], settings.get("key_file") or None
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as err:
            pair = f"{cert_file} and its key {key_file}" if key_file else cert_file
            raise TlsFileError(
                "cert_file", f"{pair}: not a usable client certificate ({err})"
            ) from err
    if settings.get("tls_insecure"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
