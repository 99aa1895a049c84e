"""UI setup: the user picks a kind, then the kind's own steps test the connection."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SCAN_INTERVAL,
    CONF_URL,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import format_mac
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .agents.config_flow import HostSubentryFlow
from .broker import probe_broker
from .compat import ReloadingOptionsFlow
from .const import (
    CONF_BOOT_TOPICS,
    CONF_CA_FILE,
    CONF_CERT_FILE,
    CONF_DISCOVERY_PREFIX,
    CONF_EXCLUDED_DEVICES,
    CONF_KEY_FILE,
    CONF_KIND,
    CONF_P95_LATENCY,
    CONF_PROTOCOL,
    CONF_REQUEST_TOPIC,
    CONF_STATUS_TOPIC,
    CONF_STREAM_TOPIC,
    CONF_SYMBOLS,
    CONF_TIMEOUT_RATIO,
    CONF_TLS,
    CONF_TLS_INSECURE,
    CONF_UPDATE_INTERVAL,
    CONF_WEBSOCKET,
    DEFAULT_DISCOVERY_PREFIX,
    DEFAULT_OPENDTU_SCAN_INTERVAL,
    DEFAULT_P95_LATENCY,
    DEFAULT_TICKRMETER_UPDATE_INTERVAL,
    DEFAULT_TIMEOUT_RATIO_PERCENT,
    DOMAIN,
    KIND_AGENTS,
    KIND_OPENDTU,
    KIND_TASMOTA,
    KIND_TICKRMETER,
    MIN_SCAN_INTERVAL,
    MQTT_PROTOCOLS,
    SUBENTRY_HOST,
)
from .core.sources.opendtu.client import (
    BadResponse,
    CannotConnect,
    DtuBusy,
    InvalidAuth,
)
from .core.sources.tickrmeter.tracker import Topics
from .core.validators import http_url
from .opendtu import client_from_config
from .tasmota import TasmotaRuntime
from .tasmota.entity import device_key
from .tickrmeter import TickrMeterRuntime, split_topics

_LOGGER = logging.getLogger(__name__)

PASSWORD_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
# No username: OpenDTU's web login is always "admin" (the client sends it), so a field for it
# could only be filled in wrong.
OPENDTU_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
        vol.Optional(CONF_PASSWORD): PASSWORD_SELECTOR,
    }
)
BROKER_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_HOST): str,
    vol.Required(CONF_PORT, default=1883): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
    vol.Optional(CONF_USERNAME): str,
    vol.Optional(CONF_PASSWORD): PASSWORD_SELECTOR,
    vol.Required(CONF_PROTOCOL, default=MQTT_PROTOCOLS[0]): SelectSelector(
        # Labels in code: hassfest refuses "3.1.1" as a translation key.
        SelectSelectorConfig(
            options=[SelectOptionDict(value=v, label=f"MQTT {v}") for v in MQTT_PROTOCOLS]
        )
    ),
    # TLS: no CA file trusts the system's CAs; a client certificate only where the broker
    # asks for one; "insecure" skips the host name check (a broker reached by IP address).
    vol.Required(CONF_TLS, default=False): bool,
    vol.Optional(CONF_CA_FILE): str,
    vol.Optional(CONF_CERT_FILE): str,
    vol.Optional(CONF_KEY_FILE): str,
    vol.Required(CONF_TLS_INSECURE, default=False): bool,
}
TASMOTA_SCHEMA = vol.Schema(
    {
        **BROKER_FIELDS,
        vol.Required(CONF_DISCOVERY_PREFIX, default=DEFAULT_DISCOVERY_PREFIX): str,
    }
)
_TOPICS = Topics()
TICKRMETER_SCHEMA = vol.Schema(
    {
        **BROKER_FIELDS,
        vol.Required(CONF_REQUEST_TOPIC, default=_TOPICS.request): str,
        vol.Required(CONF_STATUS_TOPIC, default=_TOPICS.status): str,
        vol.Required(CONF_BOOT_TOPICS, default=", ".join(_TOPICS.boots)): str,
        vol.Required(CONF_STREAM_TOPIC, default=_TOPICS.stream): str,
    }
)
TOPIC_FIELDS = (CONF_REQUEST_TOPIC, CONF_STATUS_TOPIC, CONF_BOOT_TOPICS, CONF_STREAM_TOPIC)
# Reauth asks for what the device or broker checks: the DTU only a password, a broker both.
REAUTH_SCHEMAS = {
    KIND_OPENDTU: vol.Schema({vol.Required(CONF_PASSWORD): PASSWORD_SELECTOR}),
    KIND_TASMOTA: vol.Schema(
        {vol.Optional(CONF_USERNAME): str, vol.Required(CONF_PASSWORD): PASSWORD_SELECTOR}
    ),
}
REAUTH_SCHEMAS[KIND_TICKRMETER] = REAUTH_SCHEMAS[KIND_TASMOTA]


# One DNS label: letters, digits, '-' (not at either end) and '_' (common in LAN names).
def _opendtu_url(value: Any) -> str | None:
    """The DTU's base URL (a bare host gets ``http://``), or None when it names no host."""
    try:
        return http_url(value)
    except vol.Invalid:
        return None


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
    return unique_id, system.hostname or "OpenDTU"


async def _try_opendtu(
    hass: HomeAssistant, data: dict[str, Any], errors: dict[str, str]
) -> tuple[str, str] | None:
    """Probe and translate failures into form errors."""
    if (url := _opendtu_url(data[CONF_URL])) is None:
        errors[CONF_URL] = "invalid_url"
        return None
    data[CONF_URL] = url
    data.pop(CONF_USERNAME, None)  # entries made before the field was dropped stored "admin"
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


async def _try_tasmota(
    hass: HomeAssistant, data: dict[str, Any], errors: dict[str, str]
) -> tuple[str, str] | None:
    """Connect to the broker once; returns (unique id, title).

    One entry per broker and discovery prefix: two fleets may share a broker.
    """
    if not await probe_broker(hass, data, errors):
        return None
    host, port = data[CONF_HOST], data[CONF_PORT]
    prefix = data.get(CONF_DISCOVERY_PREFIX, DEFAULT_DISCOVERY_PREFIX)
    return f"{host}:{port}/{prefix}", "Tasmota"


async def _try_tickrmeter(
    hass: HomeAssistant, data: dict[str, Any], errors: dict[str, str]
) -> tuple[str, str] | None:
    """Check the topics, then connect once; one entry per broker and request topic."""
    for key in TOPIC_FIELDS:
        topics = split_topics(str(data.get(key, "")))
        if not topics or any(char in topic for topic in topics for char in "+#"):
            errors[key] = "invalid_topic"
    if errors or not await probe_broker(hass, data, errors):
        return None
    host, port = data[CONF_HOST], data[CONF_PORT]
    return f"{host}:{port}/tickrmeter/{data[CONF_REQUEST_TOPIC]}", "TickrMeter fleet"


Probe = Callable[[HomeAssistant, dict[str, Any], dict[str, str]], Awaitable[tuple[str, str] | None]]
PROBES: dict[str, Probe] = {
    KIND_OPENDTU: _try_opendtu,
    KIND_TASMOTA: _try_tasmota,
    KIND_TICKRMETER: _try_tickrmeter,
}
SCHEMAS = {
    KIND_OPENDTU: OPENDTU_SCHEMA,
    KIND_TASMOTA: TASMOTA_SCHEMA,
    KIND_TICKRMETER: TICKRMETER_SCHEMA,
}


async def _probe(
    kind: str, hass: HomeAssistant, data: dict[str, Any], errors: dict[str, str]
) -> tuple[str, str] | None:
    """The kind's probe; whatever it did not foresee is logged and shown as ``unknown``."""
    try:
        return await PROBES[kind](hass, data, errors)
    except Exception:
        _LOGGER.exception("Unexpected exception while checking the %s settings", kind)
        errors["base"] = "unknown"
        return None


def _discovered_url(info: ZeroconfServiceInfo) -> str:
    """The DTU's URL from its mDNS announcement: the address, not the ``.local`` name (HA's
    resolver need not speak mDNS); OpenDTU announces port 80, which the URL leaves out."""
    host = f"[{info.ip_address}]" if info.ip_address.version == 6 else str(info.ip_address)
    return f"http://{host}" if info.port in (None, 80) else f"http://{host}:{info.port}"


def _follows_discovery(url: str) -> bool:
    """Whether a stored DTU URL should take the announced address: one that names an IP
    address goes stale when DHCP moves the DTU; a host name (``opendtu.local``, a reverse
    proxy) still reaches it and is the user's choice."""
    try:
        ipaddress.ip_address(urlsplit(url).hostname or "")
    except ValueError:
        return False
    return True


def _ha_mqtt_broker(hass: HomeAssistant) -> dict[str, Any]:
    """The broker HA's own MQTT integration uses, to prefill the form."""
    for entry in hass.config_entries.async_entries("mqtt"):
        if broker := entry.data.get("broker"):
            return {
                CONF_HOST: broker,
                CONF_PORT: entry.data.get(CONF_PORT, 1883),
                CONF_USERNAME: entry.data.get(CONF_USERNAME, ""),
            }
    return {}


class FleetMetricsConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    def __init__(self) -> None:
        # What discovery found, for the confirm step: the entry's data, and whether the DTU
        # refused to be read without its password.
        self._discovered: dict[str, Any] = {}
        self._needs_password = False

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return self.async_show_menu(
            step_id="user",
            menu_options=[KIND_OPENDTU, KIND_TASMOTA, KIND_TICKRMETER, KIND_AGENTS],
        )

    async def async_step_agents(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One "Host agents" entry per HA: HA has one agent endpoint, hosts go under it."""
        if any(e.data.get(CONF_KIND) == KIND_AGENTS for e in self._async_current_entries()):
            return self.async_abort(reason="single_instance_allowed")
        await self.async_set_unique_id(KIND_AGENTS)
        self._abort_if_unique_id_configured()
        if user_input is not None:
            return self.async_create_entry(title="Host agents", data={CONF_KIND: KIND_AGENTS})
        return self.async_show_form(step_id="agents", data_schema=vol.Schema({}))

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Hosts are added under the "Host agents" entry."""
        if config_entry.data.get(CONF_KIND) == KIND_AGENTS:
            return {SUBENTRY_HOST: HostSubentryFlow}
        return {}

    @classmethod
    @callback
    def async_supports_options_flow(cls, config_entry: ConfigEntry) -> bool:
        """Every kind but host agents, whose hosts are its subentries, has options."""
        return config_entry.data.get(CONF_KIND) != KIND_AGENTS

    async def async_step_opendtu(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        return await self._kind_step(KIND_OPENDTU, user_input, user_input)

    async def async_step_tasmota(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        return await self._kind_step(
            KIND_TASMOTA, user_input, user_input or _ha_mqtt_broker(self.hass)
        )

    async def async_step_tickrmeter(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        return await self._kind_step(
            KIND_TICKRMETER, user_input, user_input or _ha_mqtt_broker(self.hass)
        )

    async def _kind_step(
        self, kind: str, user_input: dict[str, Any] | None, suggested: Mapping[str, Any] | None
    ) -> ConfigFlowResult:
        """The form of one kind: probe what was entered, create the entry once it answers."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {CONF_KIND: kind, **user_input}
            if probed := await _probe(kind, self.hass, data, errors):
                unique_id, title = probed
                # A discovery of the same DTU waiting for confirmation does not block this;
                # HA ends it when this entry is made.
                await self.async_set_unique_id(unique_id, raise_on_progress=False)
                # A known DTU found at a new address gets its address updated, and HA
                # reloads it (once: see compat.reload_on_options_change).
                updates = {CONF_URL: data[CONF_URL]} if kind == KIND_OPENDTU else None
                self._abort_if_unique_id_configured(updates=updates)
                return self.async_create_entry(title=title, data=data)
        return self.async_show_form(
            step_id=kind,
            data_schema=self.add_suggested_values_to_schema(SCHEMAS[kind], suggested),
            errors=errors,
        )

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """An OpenDTU announcing ``_opendtu._tcp`` (mDNS switched on in its network settings).

        The DTU is read as the user step reads it: the MAC it reports tells a known DTU (its
        address is updated) from a new one (shown for confirmation). A DTU that is busy or
        refuses to be read without its password is identified at the confirmation instead.
        """
        url = _discovered_url(discovery_info)
        self._async_abort_entries_match({CONF_KIND: KIND_OPENDTU, CONF_URL: url})
        data: dict[str, Any] = {CONF_KIND: KIND_OPENDTU, CONF_URL: url}
        name = discovery_info.name.removesuffix(f".{discovery_info.type}")
        try:
            unique_id, name = await _probe_opendtu(self.hass, data)
        except InvalidAuth:
            self._needs_password = True
        except DtuBusy:
            pass
        except CannotConnect:
            return self.async_abort(reason="cannot_connect")
        except BadResponse as err:
            _LOGGER.info("%s announces OpenDTU but does not answer like one: %s", url, err)
            return self.async_abort(reason="not_opendtu")
        except Exception:
            _LOGGER.exception("Unexpected exception while reading the OpenDTU at %s", url)
            return self.async_abort(reason="unknown")
        else:
            await self._set_discovered_unique_id(unique_id, url)
        self._discovered = data
        self.context["title_placeholders"] = {"name": name}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The user adds the discovered DTU (with its password where it asks for one)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**self._discovered, **{k: v for k, v in user_input.items() if v}}
            if probed := await _probe(KIND_OPENDTU, self.hass, data, errors):
                unique_id, title = probed
                await self._set_discovered_unique_id(unique_id, data[CONF_URL], in_flow=True)
                return self.async_create_entry(title=title, data=data)
        password = vol.Required if self._needs_password else vol.Optional
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=vol.Schema({password(CONF_PASSWORD): PASSWORD_SELECTOR}),
            description_placeholders={
                "name": self.context.get("title_placeholders", {}).get("name", "OpenDTU"),
                "url": self._discovered[CONF_URL],
            },
            errors=errors,
        )

    async def _set_discovered_unique_id(
        self, unique_id: str, url: str, *, in_flow: bool = False
    ) -> None:
        """Abort for a known DTU, moving its URL to the announced address where the stored
        one names an IP address (discovery-update-info; HA reloads the entry)."""
        await self.async_set_unique_id(unique_id, raise_on_progress=not in_flow)
        known = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, unique_id)
        follows = known is not None and _follows_discovery(str(known.data.get(CONF_URL, "")))
        self._abort_if_unique_id_configured(updates={CONF_URL: url} if follows else None)

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
                REAUTH_SCHEMAS[entry.data[CONF_KIND]],
                {CONF_USERNAME: entry.data.get(CONF_USERNAME, "")},
            ),
            description_placeholders={
                "url": entry.data.get(CONF_URL) or entry.data.get(CONF_HOST, "")
            },
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reconfigure_entry()
        if entry.data[CONF_KIND] not in SCHEMAS:
            return self.async_abort(reason="nothing_to_reconfigure")
        errors: dict[str, str] = {}
        if user_input is not None and (done := await self._update_entry(entry, user_input, errors)):
            return done
        schema = SCHEMAS[entry.data[CONF_KIND]]
        suggested = user_input or {k: v for k, v in entry.data.items() if k != CONF_PASSWORD}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def _update_entry(
        self, entry: ConfigEntry, user_input: dict[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Probe with the changed settings; update the entry if they reach the same DTU, or,
        for a broker kind, any broker no other entry reads the same way.

        A DTU is a device: its MAC must stay. A broker entry's unique id is its address and
        prefix or request topic, which is what a move changes; it follows them unless another
        entry has them. HA reloads the entry here; the options listener (compat) does not.
        """
        kind = entry.data[CONF_KIND]
        data = {**entry.data, **user_input}
        if not (probed := await _probe(kind, self.hass, data, errors)):
            return None
        unique_id = probed[0]
        if kind == KIND_OPENDTU:
            await self.async_set_unique_id(unique_id)
            self._abort_if_unique_id_mismatch(reason="wrong_device")
            return self.async_update_reload_and_abort(entry, data=data)
        other = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, unique_id)
        if other is not None and other.entry_id != entry.entry_id:
            errors["base"] = "broker_in_use"
            return None
        return self.async_update_reload_and_abort(entry, unique_id=unique_id, data=data)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        flows: dict[str, type[OptionsFlow]] = {
            KIND_OPENDTU: OpenDtuOptionsFlow,
            KIND_TASMOTA: TasmotaOptionsFlow,
            KIND_TICKRMETER: TickrMeterOptionsFlow,
        }
        return flows[config_entry.data[CONF_KIND]]()


class OpenDtuOptionsFlow(ReloadingOptionsFlow):
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


class TasmotaOptionsFlow(ReloadingOptionsFlow):
    """Pick devices to leave out; the list offers every device seen on the broker."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self.async_step_devices(user_input)

    async def async_step_devices(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        current = list(self.config_entry.options.get(CONF_EXCLUDED_DEVICES, []))
        choices: dict[str, str] = {key: key for key in current}
        runtime = getattr(self.config_entry, "runtime_data", None)
        if isinstance(runtime, TasmotaRuntime):
            for state in runtime.coordinator.tracker.devices.values():
                choices[device_key(state)] = f"{state.name} ({device_key(state)})"
        schema = vol.Schema(
            {
                vol.Optional(CONF_EXCLUDED_DEVICES, default=current): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=key, label=label)
                            for key, label in sorted(choices.items(), key=lambda kv: kv[1])
                        ],
                        multiple=True,
                    )
                )
            }
        )
        return self.async_show_form(step_id="devices", data_schema=schema)


class TickrMeterOptionsFlow(OptionsFlow):
    """How often state is written, which symbols get sensors, when a symbol is degraded.

    Each applies to the running fleet, so the flow never reloads the entry (a plain
    ``OptionsFlow`` on every HA): a reload would forget every device and latency window.
    """

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self.async_step_tickrmeter(user_input)

    async def async_step_tickrmeter(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        if user_input is not None:
            runtime = getattr(self.config_entry, "runtime_data", None)
            if self.config_entry.state is ConfigEntryState.LOADED and isinstance(
                runtime, TickrMeterRuntime
            ):
                await runtime.coordinator.async_apply_options(user_input)
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        current = list(options.get(CONF_SYMBOLS, []))
        seen: set[str] = set(current)
        runtime = getattr(self.config_entry, "runtime_data", None)
        if isinstance(runtime, TickrMeterRuntime):
            seen.update(runtime.coordinator.tracker.correlator.symbols)
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_UPDATE_INTERVAL,
                    default=options.get(CONF_UPDATE_INTERVAL, DEFAULT_TICKRMETER_UPDATE_INTERVAL),
                ): vol.All(vol.Coerce(int), vol.Range(min=1, max=300)),
                vol.Optional(CONF_SYMBOLS, default=current): SelectSelector(
                    SelectSelectorConfig(options=sorted(seen), multiple=True, custom_value=True)
                ),
                vol.Required(
                    CONF_TIMEOUT_RATIO,
                    default=options.get(CONF_TIMEOUT_RATIO, DEFAULT_TIMEOUT_RATIO_PERCENT),
                ): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=100)),
                vol.Required(
                    CONF_P95_LATENCY, default=options.get(CONF_P95_LATENCY, DEFAULT_P95_LATENCY)
                ): vol.All(vol.Coerce(float), vol.Range(min=0.01, max=300)),
            }
        )
        return self.async_show_form(step_id="tickrmeter", data_schema=schema)
