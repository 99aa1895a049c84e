"""UI setup: the user picks a kind, then the kind's own steps test the connection."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_PASSWORD, CONF_SCAN_INTERVAL, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import format_mac
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import (
    CONF_KIND,
    CONF_WEBSOCKET,
    DEFAULT_OPENDTU_SCAN_INTERVAL,
    DOMAIN,
    KIND_OPENDTU,
    MIN_SCAN_INTERVAL,
)
from .core.sources.opendtu.client import (
    DEFAULT_USERNAME,
    BadResponse,
    CannotConnect,
    DtuBusy,
    InvalidAuth,
)
from .core.validators import http_url
from .opendtu import client_from_config

_LOGGER = logging.getLogger(__name__)

OPENDTU_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
        vol.Optional(CONF_USERNAME, default=DEFAULT_USERNAME): str,
        vol.Optional(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
    }
)
REAUTH_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_USERNAME, default=DEFAULT_USERNAME): str,
        vol.Required(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
    }
)


async def _probe_opendtu(hass: HomeAssistant, data: dict[str, Any]) -> tuple[str, str]:
    """Read the DTU the way the integration will; returns (unique id, title).

    The unique id is the DTU's MAC address where the firmware reports one, else its
    hostname, so a DTU that changes IP address is still recognised.
    """
    client = client_from_config(hass, data)
    system = await client.system_status()
    await client.livedata()  # proves read access and a firmware whose data we understand
    network = await client.network_status()
    if network and network.mac:
        unique_id = format_mac(network.mac)
    elif system.hostname:
        unique_id = system.hostname.lower()
    else:
        raise BadResponse("the DTU reports neither a MAC address nor a hostname")
    return unique_id, system.hostname or data[CONF_URL]


async def _try_opendtu(
    hass: HomeAssistant, data: dict[str, Any], errors: dict[str, str]
) -> tuple[str, str] | None:
    """Probe and translate failures into form errors."""
    try:
        data[CONF_URL] = http_url(data[CONF_URL])
    except vol.Invalid:
        errors[CONF_URL] = "invalid_url"
        return None
    try:
        return await _probe_opendtu(hass, data)
    except InvalidAuth:
        errors["base"] = "invalid_auth"
    except DtuBusy:
        errors["base"] = "dtu_busy"
    except CannotConnect:
        errors["base"] = "cannot_connect"
    except BadResponse as err:
        _LOGGER.info("%s does not look like a supported OpenDTU: %s", data[CONF_URL], err)
        errors["base"] = "not_opendtu"
    return None


class FleetMetricsConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return self.async_show_menu(step_id="user", menu_options=[KIND_OPENDTU])

    async def async_step_opendtu(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {CONF_KIND: KIND_OPENDTU, **user_input}
            if probed := await _try_opendtu(self.hass, data, errors):
                unique_id, title = probed
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured(updates={CONF_URL: data[CONF_URL]})
                return self.async_create_entry(title=title, data=data)
        return self.async_show_form(
            step_id="opendtu",
            data_schema=self.add_suggested_values_to_schema(OPENDTU_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None and (done := await self._update_entry(entry, user_input, errors)):
            return done
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                REAUTH_SCHEMA, {CONF_USERNAME: entry.data.get(CONF_USERNAME, DEFAULT_USERNAME)}
            ),
            description_placeholders={"url": entry.data[CONF_URL]},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None and (done := await self._update_entry(entry, user_input, errors)):
            return done
        suggested = user_input or {
            CONF_URL: entry.data[CONF_URL],
            CONF_USERNAME: entry.data.get(CONF_USERNAME, DEFAULT_USERNAME),
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(OPENDTU_SCHEMA, suggested),
            errors=errors,
        )

    async def _update_entry(
        self, entry: ConfigEntry, user_input: dict[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Probe with the changed settings; update the entry only if it is the same DTU."""
        data = {**entry.data, **user_input}
        if probed := await _try_opendtu(self.hass, data, errors):
            await self.async_set_unique_id(probed[0])
            self._abort_if_unique_id_mismatch(reason="wrong_device")
            return self.async_update_reload_and_abort(entry, data=data)
        return None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        return OpenDtuOptionsFlow()


class OpenDtuOptionsFlow(OptionsFlow):
    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_SCAN_INTERVAL,
                    default=options.get(CONF_SCAN_INTERVAL, DEFAULT_OPENDTU_SCAN_INTERVAL),
                ): vol.All(vol.Coerce(int), vol.Range(min=MIN_SCAN_INTERVAL, max=3600)),
                vol.Required(CONF_WEBSOCKET, default=options.get(CONF_WEBSOCKET, True)): bool,
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
