"""OpenDTU discovery over mDNS: the announcement HA's zeroconf hands the flow, pointed at the
fake DTU. A new DTU is confirmed by the user; a known one at a new address gets its URL
updated (discovery-update-info); what does not answer, or answers unlike an OpenDTU, aborts.

OpenDTU (src/NetworkSettings.cpp, ``handleMDNS``) registers ``_http._tcp`` and ``_opendtu._tcp``
on port 80, with one TXT record ``git_hash``, under its host name (``OpenDTU-%06X`` unless
changed), once mDNS is switched on in its network settings (off by default).
"""

from __future__ import annotations

import logging
from ipaddress import ip_address
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.loader import async_get_zeroconf
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.config_flow import _discovered_url, _follows_discovery
from custom_components.fleet_metrics.const import CONF_KIND, DOMAIN, KIND_OPENDTU
from custom_components.fleet_metrics.core.sources.opendtu.client import OpenDtuClient
from tests.mosquitto import free_port
from tests.opendtu_fake import FakeOpenDtu, start_fake

from .conftest import DTU_UNIQUE_ID, Reloads, setup_entry
from .test_translations import STRINGS

SERVICE_TYPE = "_opendtu._tcp.local."  # MDNS.addService("opendtu", "tcp", 80)


def announcement(port: int, host: str = "127.0.0.1", name: str = "OpenDTU-Buero") -> Any:
    """What HA's zeroconf makes of the DTU's mDNS records."""
    return ZeroconfServiceInfo(
        ip_address=ip_address(host),
        ip_addresses=[ip_address(host)],
        port=port,
        hostname=f"{name}.local.",
        type=SERVICE_TYPE,
        name=f"{name}.{SERVICE_TYPE}",
        properties={"git_hash": "a1b2c3d"},
    )


def port_of(fake: FakeOpenDtu) -> int:
    assert fake.server is not None and fake.server.port is not None
    return fake.server.port


async def discover(hass: HomeAssistant, info: ZeroconfServiceInfo) -> Any:
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=info
    )


def dtu_entry(url: str, **data: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="OpenDTU-Buero",
        unique_id=DTU_UNIQUE_ID,
        data={CONF_KIND: KIND_OPENDTU, CONF_URL: url, **data},
        options={"websocket": False},
    )


async def moved_dtu(opendtu: FakeOpenDtu, password: str | None = None) -> FakeOpenDtu:
    """The same DTU (same MAC) answering at another port, as after a new DHCP lease."""
    return await start_fake(
        FakeOpenDtu(overview=opendtu.overview, details=opendtu.details, password=password)
    )


# --- HA finds the integration for what OpenDTU announces -----------------------------------


async def test_ha_zeroconf_matches_the_type_opendtu_registers(hass: HomeAssistant) -> None:
    matchers = await async_get_zeroconf(hass)
    assert {"domain": DOMAIN} in matchers[SERVICE_TYPE]
    # Not the generic _http._tcp OpenDTU registers too: every web server would match.
    assert all(m.get("domain") != DOMAIN for m in matchers.get("_http._tcp.local.", []))


# --- a new DTU -----------------------------------------------------------------------------


async def test_a_new_dtu_is_confirmed_then_added(hass: HomeAssistant, opendtu: FakeOpenDtu) -> None:
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "OpenDTU-Buero", "url": opendtu.url}
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["title_placeholders"] == {"name": "OpenDTU-Buero"}
    assert flow["context"]["unique_id"] == DTU_UNIQUE_ID  # so "Ignore" works
    assert [str(key) for key in result["data_schema"].schema] == [CONF_PASSWORD]

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "OpenDTU-Buero"
    assert result["data"] == {CONF_KIND: KIND_OPENDTU, CONF_URL: opendtu.url}
    assert result["result"].unique_id == DTU_UNIQUE_ID
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_the_same_announcement_twice_is_one_flow(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    first = await discover(hass, announcement(port_of(opendtu)))
    assert first["step_id"] == "zeroconf_confirm"
    second = await discover(hass, announcement(port_of(opendtu)))
    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"


async def test_adding_the_dtu_by_hand_ends_its_discovery(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    await discover(hass, announcement(port_of(opendtu)))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "opendtu"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: opendtu.url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_a_dtu_that_wants_its_password_asks_for_it_at_the_confirmation(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    """Read-only access switched off: the DTU is identified once the password is given."""
    opendtu.password = "s3cret"
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["step_id"] == "zeroconf_confirm"
    (key,) = result["data_schema"].schema
    assert str(key) == CONF_PASSWORD and key.__class__.__name__ == "Required"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "s3cret"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_KIND: KIND_OPENDTU, CONF_URL: opendtu.url, "password": "s3cret"}
    assert result["result"].unique_id == DTU_UNIQUE_ID
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_a_busy_dtu_is_read_again_at_the_confirmation(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    opendtu.failures["/api/system/status"] = (429, "Too Many Requests")
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["step_id"] == "zeroconf_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "dtu_busy"}
    opendtu.failures.clear()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == DTU_UNIQUE_ID
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


# --- a known DTU ---------------------------------------------------------------------------


async def test_a_known_dtu_at_a_new_address_gets_its_url_updated(
    hass: HomeAssistant, opendtu: FakeOpenDtu, reloads: Reloads
) -> None:
    entry = dtu_entry(opendtu.url)
    await setup_entry(hass, entry)
    reloads.forget()
    moved = await moved_dtu(opendtu)
    try:
        result = await discover(hass, announcement(port_of(moved)))
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        assert entry.data[CONF_URL] == moved.url != opendtu.url
        await hass.async_block_till_done()
        assert reloads.reloads == reloads.setups == [entry.entry_id]
        assert entry.state is ConfigEntryState.LOADED
        assert entry.runtime_data.coordinator.collector.client.url == moved.url
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await moved.close()


async def test_a_known_dtu_that_wants_its_password_is_updated_after_it(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    entry = dtu_entry(opendtu.url, password="s3cret")
    entry.add_to_hass(hass)
    moved = await moved_dtu(opendtu, password="s3cret")
    try:
        result = await discover(hass, announcement(port_of(moved)))
        assert result["step_id"] == "zeroconf_confirm"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PASSWORD: "s3cret"}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        assert entry.data == {CONF_KIND: KIND_OPENDTU, CONF_URL: moved.url, "password": "s3cret"}
        await hass.async_block_till_done()
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await moved.close()


async def test_a_known_dtu_reached_by_name_keeps_its_url(
    hass: HomeAssistant, opendtu: FakeOpenDtu, reloads: Reloads
) -> None:
    """A host name follows the DTU by itself (or is a proxy the user chose): not replaced."""
    by_name = f"http://localhost:{port_of(opendtu)}"
    entry = dtu_entry(by_name)
    entry.add_to_hass(hass)
    moved = await moved_dtu(opendtu)
    try:
        result = await discover(hass, announcement(port_of(moved)))
        assert result["reason"] == "already_configured"
        assert entry.data[CONF_URL] == by_name
        await hass.async_block_till_done()
        assert reloads.reloads == []
    finally:
        await moved.close()


async def test_a_known_dtu_at_its_address_is_not_even_read(
    hass: HomeAssistant, opendtu: FakeOpenDtu, reloads: Reloads
) -> None:
    entry = dtu_entry(opendtu.url)
    entry.add_to_hass(hass)
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert opendtu.requests == []
    assert reloads.reloads == []


async def test_an_ignored_dtu_stays_ignored(hass: HomeAssistant, opendtu: FakeOpenDtu) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=DTU_UNIQUE_ID, source="ignore").add_to_hass(hass)
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# --- what aborts ---------------------------------------------------------------------------


async def test_an_unreachable_announcement_aborts_cannot_connect(hass: HomeAssistant) -> None:
    result = await discover(hass, announcement(free_port()))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


@pytest.mark.parametrize(
    "breakage",
    [
        {"/api/system/status": (404, "Not Found")},  # some other web server
        {"/api/livedata/status": (200, "null")},
        {"/api/system/status": (200, "[1, 2]")},  # JSON, but not its shape
    ],
)
async def test_something_that_is_no_opendtu_aborts(
    hass: HomeAssistant, opendtu: FakeOpenDtu, breakage: dict[str, tuple[int, str]]
) -> None:
    opendtu.failures.update(breakage)
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_opendtu"
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_the_unforeseen_aborts_unknown_and_is_logged(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any) -> Any:
        raise ZeroDivisionError("a library bug")

    monkeypatch.setattr(OpenDtuClient, "system_status", broken)
    result = await discover(hass, announcement(port_of(opendtu)))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unknown"
    assert any(
        r.levelno == logging.ERROR and r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError)
        for r in caplog.records
    )


def test_every_abort_of_discovery_has_its_string() -> None:
    aborts = STRINGS["config"]["abort"]
    assert {"cannot_connect", "not_opendtu", "unknown", "already_configured"} <= set(aborts)
    assert {"{name}", "{url}"} <= {
        word.strip("?.,")
        for word in STRINGS["config"]["step"]["zeroconf_confirm"]["description"].split()
    }
    assert STRINGS["config"]["flow_title"] == "{name}"


# --- the URL from the announcement, and which stored URLs follow it ------------------------


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("192.168.1.50", 80, "http://192.168.1.50"),
        ("192.168.1.50", 8080, "http://192.168.1.50:8080"),
        ("2001:db8::50", 80, "http://[2001:db8::50]"),
        ("2001:db8::50", 8080, "http://[2001:db8::50]:8080"),
    ],
)
def test_the_announced_address_becomes_the_url(host: str, port: int, url: str) -> None:
    assert _discovered_url(announcement(port, host)) == url


@pytest.mark.parametrize(
    ("url", "follows"),
    [
        ("http://192.168.1.50", True),
        ("http://192.168.1.50:8080", True),
        ("http://[2001:db8::50]", True),
        ("http://opendtu.local", False),
        ("https://dtu.example.net:8443", False),
        ("", False),
    ],
)
def test_a_stored_ip_address_follows_discovery_a_name_does_not(url: str, follows: bool) -> None:
    assert _follows_discovery(url) is follows
