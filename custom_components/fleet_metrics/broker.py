"""The MQTT broker of an entry (Tasmota, TickrMeter): settings, and the connection check.

TLS settings name files; building the TLS context reads them, which must not happen in the
event loop, so the settings are checked in the executor (``async_broker_settings``).
"""

from __future__ import annotations

import ssl
from typing import Any

import voluptuous as vol
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
)

from .const import (
    CONF_CA_FILE,
    CONF_CERT_FILE,
    CONF_KEY_FILE,
    CONF_PROTOCOL,
    CONF_TLS,
    CONF_TLS_INSECURE,
    DOMAIN,
)
from .core.mqtt.session import BrokerAuthFailed, BrokerUnavailable, check_connection
from .core.mqtt.settings import BROKER_SCHEMA

# A settings key whose file does not load -> the form error shown at that field.
FILE_ERRORS = {
    CONF_CA_FILE: "invalid_ca_file",
    CONF_CERT_FILE: "invalid_client_cert",
    CONF_KEY_FILE: "invalid_client_cert",
}


def broker_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The core's broker settings from an entry's data (validated by the core schema, which
    loads the TLS files: call it in the executor when TLS is on). Raises vol.Invalid."""
    tls = bool(data.get(CONF_TLS))
    settings: dict[str, Any] = BROKER_SCHEMA(
        {
            "host": data[CONF_HOST],
            "port": data[CONF_PORT],
            "username": data.get(CONF_USERNAME) or "",
            "password": data.get(CONF_PASSWORD) or "",
            "protocol": data.get(CONF_PROTOCOL) or "3.1.1",
            "tls": tls,
            "ca_file": (data.get(CONF_CA_FILE) or "").strip() if tls else "",
            "cert_file": (data.get(CONF_CERT_FILE) or "").strip() if tls else "",
            "key_file": (data.get(CONF_KEY_FILE) or "").strip() if tls else "",
            "tls_insecure": bool(data.get(CONF_TLS_INSECURE)) and tls,
        }
    )
    return settings


async def async_broker_settings(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    """At setup: the settings, checked off the event loop; an unusable TLS file stops the
    entry with the reason (retrying would not help until the file is fixed)."""
    try:
        return await hass.async_add_executor_job(broker_settings, data)
    except vol.Invalid as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="broker_tls_files",
            translation_placeholders={"error": str(err)},
        ) from err


async def async_check_broker(settings: dict[str, Any]) -> None:
    """At setup: refused credentials start reauth, an unreachable broker a retry."""
    try:
        await check_connection(settings)
    except BrokerAuthFailed as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="broker_invalid_auth"
        ) from err
    except BrokerUnavailable as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="broker_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err


def tls_failed(err: BaseException) -> bool:
    """Whether the connection failed in the TLS handshake (certificate, protocol)."""
    seen = 0
    link: BaseException | None = err
    while link is not None and seen < 16:
        if isinstance(link, ssl.SSLError):
            return True
        link, seen = link.__cause__ or link.__context__, seen + 1
    return False


async def probe_broker(hass: HomeAssistant, data: dict[str, Any], errors: dict[str, str]) -> bool:
    """In a config flow: connect once; a failure becomes a form error (a broker's refusal
    has its own, not the DTU's; a TLS file at its field; a failed handshake its own)."""
    try:
        settings = await hass.async_add_executor_job(broker_settings, data)
    except vol.Invalid as err:
        key = str(err.path[0]) if err.path else ""
        errors[key if key in FILE_ERRORS else "base"] = FILE_ERRORS.get(key, "invalid_settings")
        return False
    try:
        await check_connection(settings)
    except BrokerAuthFailed:
        errors["base"] = "invalid_broker_auth"
    except BrokerUnavailable as err:
        errors["base"] = "tls_failed" if tls_failed(err) else "cannot_connect"
    else:
        return True
    return False
