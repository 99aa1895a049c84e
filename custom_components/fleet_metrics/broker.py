"""The MQTT broker of an entry (Tasmota, TickrMeter): settings, and the connection check."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady

from .const import DOMAIN
from .core.mqtt.session import BrokerAuthFailed, BrokerUnavailable, check_connection
from .core.mqtt.settings import BROKER_SCHEMA


def broker_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The core's broker settings from an entry's data (validated by the core schema)."""
    settings: dict[str, Any] = BROKER_SCHEMA(
        {
            "host": data[CONF_HOST],
            "port": data[CONF_PORT],
            "username": data.get(CONF_USERNAME) or "",
            "password": data.get(CONF_PASSWORD) or "",
        }
    )
    return settings


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


async def probe_broker(data: dict[str, Any], errors: dict[str, str]) -> bool:
    """In a config flow: connect once; a failure becomes a form error (a broker's refusal
    has its own, not the DTU's)."""
    try:
        await check_connection(broker_settings(data))
    except BrokerAuthFailed:
        errors["base"] = "invalid_broker_auth"
    except BrokerUnavailable:
        errors["base"] = "cannot_connect"
    else:
        return True
    return False
