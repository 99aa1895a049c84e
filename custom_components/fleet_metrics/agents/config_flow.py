"""Adding a host under "Host agents": a name in, its token and agent config out, once.

The token is made when the name is accepted, shown on the next step (with the agent config
to paste), and only its SHA-256 hash is stored, in the host's subentry: nothing can show it
again. The subentry's reconfigure is a menu: "New token" does the same for an existing host
(the old token stops working, and its live connection is cut, when the new one is stored);
"Guests" picks the Proxmox guests shown as devices, stored in the subentry as ``guests`` (a
list of guest ids; none picked: every guest, up to the cap).
"""

from __future__ import annotations

import logging
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import voluptuous as vol
from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from ..const import AGENT_PATH, CONF_TOKEN_HASH, SUBENTRY_HOST
from ..core.sources.agents.store import valid_host_name
from ..core.sources.agents.tokens import hash_token, make_token
from .coordinator import CONF_GUESTS
from .proxmox import MAX_GUESTS

_LOGGER = logging.getLogger(__name__)

FALLBACK_URL: Final = "http://homeassistant.local:8123"
HOST_SCHEMA = vol.Schema({vol.Required(CONF_HOST): str})


def agent_url(hass: HomeAssistant) -> str:
    """HA's own address as the agent's ws:// or wss:// URL; a guess when HA knows none."""
    try:
        base = get_url(hass, allow_ip=True)
    except NoURLAvailableError:
        base = FALLBACK_URL
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, AGENT_PATH, "", ""))


def agent_toml(host: str, url: str, token: str) -> str:
    """The agent config for ``host``; the same keys as the runner's ``hosts add`` prints."""
    return f'host = "{host}"\n\n[[servers]]\nurl = "{url}"\ntoken = "{token}"\n'


def _by_vmid(guest_id: str) -> tuple[str, int, str]:
    """``qemu/99`` before ``qemu/100``: by type, then vmid as a number (text sorts 100
    first); an id not of that shape (picked long ago) after, by its text."""
    kind, _, vmid = guest_id.partition("/")
    if vmid.isascii() and vmid.isdigit() and len(vmid) <= 9:
        return (kind, int(vmid), "")
    return ("~", 0, guest_id)


class HostSubentryFlow(ConfigSubentryFlow):
    """Add a host (``user``, then ``token``) or give it a new token (``reconfigure``)."""

    _host: str
    _token: str
    _url: str
    _config: str

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Ask for the host's name, the one its agent sends in its hello."""
        errors: dict[str, str] = {}
        if user_input is not None:
            name = str(user_input[CONF_HOST]).strip()
            taken = {
                subentry.data.get(CONF_HOST)
                for subentry in self._get_entry().subentries.values()
                if subentry.subentry_type == SUBENTRY_HOST
            }
            if not valid_host_name(name):
                errors[CONF_HOST] = "invalid_host_name"
            elif name in taken:
                errors[CONF_HOST] = "host_exists"
            elif self._new_token(name, errors):
                return await self.async_step_token()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(HOST_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_token(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Show the token once; the host exists (and the token works) once confirmed."""
        if user_input is not None:
            return self.async_create_entry(
                title=self._host,
                data={CONF_HOST: self._host, CONF_TOKEN_HASH: hash_token(self._token)},
                unique_id=self._host,
            )
        return self._show_token("token")

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A new token, or the guests shown."""
        return self.async_show_menu(step_id="reconfigure", menu_options=["new_token", "guests"])

    async def async_step_guests(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Pick the guests shown as devices, from those the host reports and those picked
        before; none picked: every guest (up to the cap)."""
        subentry = self._get_reconfigure_subentry()
        if user_input is not None:
            picked = [str(guest) for guest in user_input.get(CONF_GUESTS, [])][:MAX_GUESTS]
            return self.async_update_and_abort(
                self._get_entry(), subentry, data_updates={CONF_GUESTS: picked}
            )
        current = [str(guest) for guest in subentry.data.get(CONF_GUESTS) or []]
        labels = {guest: guest for guest in current}
        runtime = getattr(self._get_entry(), "runtime_data", None)
        readings = runtime.coordinator.data.get(subentry.data[CONF_HOST]) if runtime else None
        if readings is not None:
            labels.update({gid: g.label for gid, g in readings.proxmox.guests.items()})
        options = [
            SelectOptionDict(value=gid, label=labels[gid]) for gid in sorted(labels, key=_by_vmid)
        ]
        schema = vol.Schema(
            {
                vol.Optional(CONF_GUESTS, default=current): SelectSelector(
                    SelectSelectorConfig(
                        options=options, multiple=True, mode=SelectSelectorMode.DROPDOWN
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="guests",
            data_schema=schema,
            description_placeholders={"host": subentry.data[CONF_HOST]},
        )

    async def async_step_new_token(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Confirm first: the new token replaces the old one for good."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None and self._new_token(subentry.data[CONF_HOST], errors):
            return await self.async_step_reconfigure_token()
        return self.async_show_form(
            step_id="new_token",
            data_schema=vol.Schema({}),
            description_placeholders={"host": subentry.data[CONF_HOST]},
            errors=errors,
        )

    def _new_token(self, host: str, errors: dict[str, str]) -> bool:
        """Make the token and the config shown next; a failure is logged and shown as
        ``unknown`` on this form instead of ending the flow with a server error."""
        try:
            self._token = make_token()
            self._url = agent_url(self.hass)
            self._config = agent_toml(host, self._url, self._token)
        except Exception:
            _LOGGER.exception("Unexpected exception while making a token for %s", host)
            errors["base"] = "unknown"
            return False
        self._host = host
        return True

    async def async_step_reconfigure_token(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        if user_input is not None:
            return self.async_update_and_abort(
                self._get_entry(),
                self._get_reconfigure_subentry(),
                data_updates={CONF_TOKEN_HASH: hash_token(self._token)},
            )
        return self._show_token("reconfigure_token")

    def _show_token(self, step_id: str) -> SubentryFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=vol.Schema({}),
            description_placeholders={
                "host": self._host,
                "token": self._token,
                "url": self._url,
                "config": self._config,
            },
        )
