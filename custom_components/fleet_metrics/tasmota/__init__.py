"""Tasmota glue: a broker session and the core tracker behind a push coordinator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady

from ..const import CONF_DISCOVERY_PREFIX, DEFAULT_DISCOVERY_PREFIX, DOMAIN
from ..core.mqtt.session import (
    BrokerAuthFailed,
    BrokerSession,
    BrokerUnavailable,
    check_connection,
)
from ..core.mqtt.settings import BROKER_SCHEMA
from ..core.sources.tasmota.tracker import TasmotaTracker
from .coordinator import TasmotaCoordinator


@dataclass(slots=True)
class TasmotaRuntime:
    coordinator: TasmotaCoordinator


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


async def async_setup_tasmota(hass: HomeAssistant, entry: ConfigEntry) -> TasmotaRuntime:
    settings = broker_settings(dict(entry.data))
    try:
        await check_connection(settings)
    except BrokerAuthFailed as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except BrokerUnavailable as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="broker_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err
    session = BrokerSession(entry.title, settings)
    tracker = TasmotaTracker(entry.data.get(CONF_DISCOVERY_PREFIX, DEFAULT_DISCOVERY_PREFIX))
    coordinator = TasmotaCoordinator(hass, entry, session, tracker)
    coordinator.start()
    return TasmotaRuntime(coordinator)
