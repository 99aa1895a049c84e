from __future__ import annotations

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_SCAN_INTERVAL, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.config_flow import _opendtu_url
from custom_components.fleet_metrics.const import CONF_KIND, CONF_WEBSOCKET, DOMAIN
from custom_components.fleet_metrics.core.sources.opendtu.client import DEFAULT_USERNAME
from tests.opendtu_fake import FakeOpenDtu, fixture_text, start_fake

from .conftest import DTU_UNIQUE_ID, Reloads, setup_entry
from .test_translations import STRINGS


async def start_opendtu_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["opendtu", "tasmota", "tickrmeter", "agents"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "opendtu"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "opendtu"
    return str(result["flow_id"])


async def test_user_flow_creates_entry_with_mac_unique_id(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    flow_id = await start_opendtu_flow(hass)
    host = opendtu.url.removeprefix("http://")
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: host})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "OpenDTU-Buero"
    assert result["data"] == {CONF_KIND: "opendtu", CONF_URL: opendtu.url}
    assert result["result"].unique_id == DTU_UNIQUE_ID
    await hass.async_block_till_done()


async def test_hostname_is_the_unique_id_without_network_status(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    opendtu.network = None
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: opendtu.url})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "opendtu-buero"
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        ({"/api/system/status": (429, "Too Many Requests")}, "dtu_busy"),
        ({"/api/livedata/status": (200, "null")}, "not_opendtu"),
        (
            {
                "/api/livedata/status": (
                    200,
                    fixture_text("livedata_status_legacy_array_pre_2022_11.json"),
                )
            },
            "not_opendtu",
        ),
        ({"/api/system/status": (404, "Not Found")}, "not_opendtu"),
    ],
)
async def test_user_flow_errors_then_recovery(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    breakage: dict[str, tuple[int, str]],
    error: str,
) -> None:
    flow_id = await start_opendtu_flow(hass)
    opendtu.failures.update(breakage)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: opendtu.url})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    opendtu.failures.clear()
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: opendtu.url})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_user_flow_cannot_connect(hass: HomeAssistant) -> None:
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: "http://127.0.0.1:9"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_user_flow_invalid_url(hass: HomeAssistant) -> None:
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: "ftp://dtu"})
    assert result["errors"] == {CONF_URL: "invalid_url"}


async def test_user_flow_invalid_auth_then_password(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    opendtu.password = "s3cret"
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: opendtu.url})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: opendtu.url, CONF_PASSWORD: "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: opendtu.url, CONF_PASSWORD: "s3cret"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PASSWORD] == "s3cret"
    await hass.async_block_till_done()


async def test_same_dtu_cannot_be_added_twice(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    opendtu_entry.add_to_hass(hass)
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: opendtu.url})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth_stores_new_password_and_reloads_once(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    await setup_entry(hass, opendtu_entry)
    reloads.forget()
    opendtu.password = "new-secret"
    result = await opendtu_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "new-secret"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert opendtu_entry.data[CONF_PASSWORD] == "new-secret"
    await hass.async_block_till_done()
    assert reloads.reloads == reloads.setups == [opendtu_entry.entry_id]
    assert opendtu_entry.state is ConfigEntryState.LOADED


async def test_reauth_after_refused_setup_reloads_once_and_loads(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    """Setup failed before it could register anything: the flow alone brings the entry up."""
    opendtu.password = "changed"
    await setup_entry(hass, opendtu_entry)
    assert opendtu_entry.state is ConfigEntryState.SETUP_ERROR
    reloads.forget()
    result = await opendtu_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "changed"}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert reloads.reloads == reloads.setups == [opendtu_entry.entry_id]
    assert opendtu_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_to_another_dtu_is_refused(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, opendtu_entry)
    result = await opendtu_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    opendtu.network = opendtu.network.replace("34:85:18:A1:B2:C3", "34:85:18:00:00:01")  # type: ignore[union-attr]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: opendtu.url}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"


async def test_reconfigure_changes_url_keeps_password_and_reloads_once(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    await setup_entry(hass, opendtu_entry)
    reloads.forget()
    result = await opendtu_entry.start_reconfigure_flow(hass)
    moved = await start_fake(FakeOpenDtu(overview=opendtu.overview, details=opendtu.details))
    try:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: moved.url}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        assert opendtu_entry.data[CONF_URL] == moved.url != opendtu.url
        assert opendtu_entry.data[CONF_PASSWORD] == "s3cret"
        await hass.async_block_till_done()
        assert reloads.reloads == reloads.setups == [opendtu_entry.entry_id]
        assert opendtu_entry.runtime_data.coordinator.collector.client.url == moved.url
    finally:
        await hass.config_entries.async_unload(opendtu_entry.entry_id)
        await moved.close()


async def test_reconfigure_without_changes_reloads_once(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    await setup_entry(hass, opendtu_entry)
    reloads.forget()
    result = await opendtu_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: opendtu.url}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert reloads.reloads == reloads.setups == [opendtu_entry.entry_id]


async def test_known_dtu_at_new_address_updates_url_and_reloads_once(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    await setup_entry(hass, opendtu_entry)
    reloads.forget()
    moved = await start_fake(FakeOpenDtu(overview=opendtu.overview, details=opendtu.details))
    try:
        flow_id = await start_opendtu_flow(hass)
        result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: moved.url})
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        assert opendtu_entry.data[CONF_URL] == moved.url
        await hass.async_block_till_done()
        assert reloads.reloads == reloads.setups == [opendtu_entry.entry_id]
        assert opendtu_entry.state is ConfigEntryState.LOADED
    finally:
        await hass.config_entries.async_unload(opendtu_entry.entry_id)
        await moved.close()


async def test_options_flow_reloads_once(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    await setup_entry(hass, opendtu_entry)
    reloads.forget()
    result = await hass.config_entries.options.async_init(opendtu_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 15, CONF_WEBSOCKET: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert opendtu_entry.options == {CONF_SCAN_INTERVAL: 15, CONF_WEBSOCKET: False}
    await hass.async_block_till_done()
    coordinator = opendtu_entry.runtime_data.coordinator
    assert coordinator.update_interval.total_seconds() == 15
    assert reloads.reloads == reloads.setups == [opendtu_entry.entry_id]


async def test_options_flow_without_changes_does_not_reload(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry, reloads: Reloads
) -> None:
    await setup_entry(hass, opendtu_entry)
    reloads.forget()
    result = await hass.config_entries.options.async_init(opendtu_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 30, CONF_WEBSOCKET: False}
    )
    await hass.async_block_till_done()
    # The fixture's options lack the scan interval: the first save is a change ...
    assert reloads.reloads == [opendtu_entry.entry_id]
    reloads.forget()
    result = await hass.config_entries.options.async_init(opendtu_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 30, CONF_WEBSOCKET: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert reloads.reloads == reloads.setups == []  # ... the same again is not


# --- the URL field: a bare host is fine, a value naming no host is invalid_url ------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://dtu",
        "not a host",
        "http://",
        "http://[::1",  # urlsplit raises ValueError on it
        "http://dtu .lan",
        "-dtu-.lan",
        "dtu..lan",
        "dtu.lan:port",
        "x" * 64 + ".lan",
    ],
)
async def test_a_value_that_is_no_host_is_invalid_url(hass: HomeAssistant, url: str) -> None:
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: url})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "invalid_url"}


_LABELS = st.from_regex(r"[a-z0-9]([a-z0-9_-]{0,20}[a-z0-9])?", fullmatch=True)
_HOSTS = st.one_of(
    st.lists(_LABELS, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)


@settings(max_examples=300, deadline=None)
@given(
    host=_HOSTS,
    port=st.none() | st.integers(1, 65535),
    scheme=st.sampled_from(["", "http://", "https://"]),
)
def test_every_host_is_a_url_with_http_by_default(host: str, port: int | None, scheme: str) -> None:
    text = f"{scheme}{host}" + (f":{port}" if port else "")
    assert _opendtu_url(text) == (f"{scheme or 'http://'}{host}" + (f":{port}" if port else ""))


@settings(max_examples=300, deadline=None)
@given(
    host=_HOSTS,
    junk=st.characters(exclude_categories=("Cs",), exclude_characters="-_.:/[]?#@%"),
    at=st.integers(min_value=0),
)
def test_a_character_no_host_has_makes_it_invalid(host: str, junk: str, at: int) -> None:
    """One character a host name or address cannot hold, anywhere in it, is refused."""
    if junk.isascii() and junk.isalnum():
        return  # letters and digits belong in host names
    bracketed = host.startswith("[")
    inner = host.strip("[]")
    at %= len(inner) + 1
    broken = inner[:at] + junk + inner[at:]
    url = f"http://[{broken}]" if bracketed else f"http://{broken}"
    if url.endswith(junk) and junk.strip() == "":
        assert _opendtu_url(url) == f"http://{host}", "trailing white space is a paste's"
    else:
        assert _opendtu_url(url) is None


# --- OpenDTU's login is always admin: no username field, none stored, none used -----------


async def test_opendtu_forms_ask_for_no_username(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "opendtu"}
    )
    assert [str(key) for key in result["data_schema"].schema] == [CONF_URL, CONF_PASSWORD]
    await setup_entry(hass, opendtu_entry)
    result = await opendtu_entry.start_reauth_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == [CONF_PASSWORD]
    result = await opendtu_entry.start_reconfigure_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == [CONF_URL, CONF_PASSWORD]


async def test_an_old_entry_with_a_username_logs_in_as_admin_and_drops_it(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    """Entries from before the field was dropped stored one; the DTU only knows admin."""
    opendtu_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        opendtu_entry, data={**opendtu_entry.data, CONF_USERNAME: "not-admin"}
    )
    await hass.config_entries.async_setup(opendtu_entry.entry_id)
    await hass.async_block_till_done()
    assert opendtu_entry.state is ConfigEntryState.LOADED, "the fake accepts admin only"
    result = await opendtu_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: opendtu.url}
    )
    assert result["reason"] == "reconfigure_successful"
    assert CONF_USERNAME not in opendtu_entry.data
    assert opendtu_entry.data[CONF_PASSWORD] == "s3cret"
    await hass.async_block_till_done()


def test_the_help_text_and_the_client_agree_on_admin() -> None:
    step = STRINGS["config"]["step"]["opendtu"]
    assert "username" not in step["data"]
    assert DEFAULT_USERNAME in step["data_description"]["password"]


# --- what a DTU without a name cannot be, and what each kind of entry offers -------------


async def test_a_dtu_with_neither_mac_nor_hostname_is_refused(
    hass: HomeAssistant, opendtu: FakeOpenDtu
) -> None:
    """Nothing would tell it from another DTU once its address changes: no entry."""
    opendtu.network = None
    opendtu.system = opendtu.system.replace('"hostname":"OpenDTU-Buero"', '"hostname":""')
    flow_id = await start_opendtu_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: opendtu.url})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "not_opendtu"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_options_and_sub_entries_follow_the_kind(
    hass: HomeAssistant, opendtu_entry: MockConfigEntry
) -> None:
    """A device entry has options and no sub-entries; host agents the other way round."""
    agents = MockConfigEntry(domain=DOMAIN, unique_id="agents", data={CONF_KIND: "agents"})
    for entry in (opendtu_entry, agents):
        entry.add_to_hass(hass)
    assert opendtu_entry.supports_options
    assert opendtu_entry.supported_subentry_types == {}
    assert not agents.supports_options
    assert set(agents.supported_subentry_types) == {"host"}
