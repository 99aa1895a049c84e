"""What the user sees when a flow meets the unforeseen or a refusal that is not the DTU's.

An exception no step expected (a library bug, a resolver that breaks) is logged with its
traceback and shown as ``unknown`` on the same form, which still works once the fault is
gone: never an HTTP 500 that ends the flow. Each flow is driven through HA's flow manager.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.fleet_metrics.agents.config_flow as agents_flow
import custom_components.fleet_metrics.broker as broker
from custom_components.fleet_metrics.const import CONF_KIND, DOMAIN, SUBENTRY_HOST
from custom_components.fleet_metrics.core.sources.opendtu.client import OpenDtuClient
from tests.mosquitto import Mosquitto
from tests.opendtu_fake import FakeOpenDtu

from .agents.conftest import HOST, agents_entry
from .helpers import tasmota_entry, tickrmeter_entry
from .test_translations import STRINGS


class Unforeseen(Exception):
    """Stands for any exception a step does not name."""


async def _raise(*args: Any, **kwargs: Any) -> Any:
    raise Unforeseen("boom")


def _logged_with_traceback(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        record.levelno == logging.ERROR
        and record.exc_info is not None
        and isinstance(record.exc_info[1], Unforeseen)
        for record in caplog.records
    )


async def _user_form(hass: HomeAssistant, kind: str) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": kind}
    )
    assert result["step_id"] == kind
    return str(result["flow_id"])


def _break_opendtu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpenDtuClient, "system_status", _raise)


def _break_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker, "check_connection", _raise)


@pytest.mark.parametrize("kind", ["opendtu", "tasmota", "tickrmeter"])
async def test_user_step_shows_unknown_logs_it_and_recovers(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    if kind == "opendtu":
        _break_opendtu(monkeypatch)
        form: dict[str, Any] = {CONF_URL: opendtu.url}
    else:
        _break_broker(monkeypatch)
        form = {CONF_HOST: "127.0.0.1", CONF_PORT: mosquitto.port}
    flow_id = await _user_form(hass, kind)
    result = await hass.config_entries.flow.async_configure(flow_id, form)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert _logged_with_traceback(caplog)
    monkeypatch.undo()
    result = await hass.config_entries.flow.async_configure(flow_id, form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


EntryMaker = Callable[[FakeOpenDtu, Mosquitto], MockConfigEntry]


def _opendtu_entry(opendtu: FakeOpenDtu, broker: Mosquitto) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id="34:85:18:a1:b2:c3",
        data={CONF_KIND: "opendtu", CONF_URL: opendtu.url, CONF_PASSWORD: "old"},
    )


CASES: list[tuple[EntryMaker, Callable[[pytest.MonkeyPatch], None], dict[str, Any]]] = [
    (_opendtu_entry, _break_opendtu, {CONF_PASSWORD: "new"}),
    (lambda _, broker: tasmota_entry(broker), _break_broker, {CONF_PASSWORD: "new"}),
    (lambda _, broker: tickrmeter_entry(broker), _break_broker, {CONF_PASSWORD: "new"}),
]


@pytest.mark.parametrize(
    ("make", "break_it", "answer"), CASES, ids=["opendtu", "tasmota", "tickrmeter"]
)
@pytest.mark.parametrize("source", ["reauth", SOURCE_RECONFIGURE])
async def test_reauth_and_reconfigure_show_unknown_and_log_it(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    make: EntryMaker,
    break_it: Callable[[pytest.MonkeyPatch], None],
    answer: dict[str, Any],
    source: str,
) -> None:
    entry = make(opendtu, mosquitto)
    entry.add_to_hass(hass)
    start: Callable[[HomeAssistant], Awaitable[Any]] = (
        entry.start_reauth_flow if source == "reauth" else entry.start_reconfigure_flow
    )
    result = await start(hass)
    if source == SOURCE_RECONFIGURE:
        answer = {key: value for key, value in entry.data.items() if key != CONF_KIND}
    before = dict(entry.data)
    break_it(monkeypatch)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert _logged_with_traceback(caplog)
    assert entry.data == before, "nothing stored from a failed check"


async def test_host_subentry_steps_show_unknown_and_log_it(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    entry = agents_entry()
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    monkeypatch.setattr(agents_flow, "make_token", lambda: (_ for _ in ()).throw(Unforeseen()))
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_HOST), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_HOST: "pve2"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "unknown"}
    assert _logged_with_traceback(caplog)
    caplog.clear()

    (subentry_id,) = entry.subentries
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_HOST),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "new_token"}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "new_token"
    assert result["errors"] == {"base": "unknown"}
    assert _logged_with_traceback(caplog)
    monkeypatch.undo()
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["step_id"] == "reconfigure_token"
    assert entry.subentries[subentry_id].data[CONF_HOST] == HOST


def test_unknown_has_a_string_in_both_flows() -> None:
    assert "log" in STRINGS["config"]["error"]["unknown"]
    assert "log" in STRINGS["config_subentries"]["host"]["error"]["unknown"]


# --- a broker's refusal is the broker's, not the DTU's --------------------------------------


@pytest.mark.parametrize("kind", ["tasmota", "tickrmeter"])
async def test_refused_broker_credentials_say_broker(
    hass: HomeAssistant, tmp_path: Path, kind: str
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        flow_id = await _user_form(hass, kind)
        form = {CONF_HOST: "127.0.0.1", CONF_PORT: broker.port, CONF_USERNAME: "fleet"}
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**form, CONF_PASSWORD: "wrong"}
        )
        assert result["errors"] == {"base": "invalid_broker_auth"}
        text = STRINGS["config"]["error"]["invalid_broker_auth"]
        assert "broker" in text and "OpenDTU" not in text and "DTU" not in text
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**form, CONF_PASSWORD: "right"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        await hass.config_entries.async_unload(result["result"].entry_id)
    finally:
        await broker.stop()


async def test_broker_reauth_offers_the_stored_user_not_admin(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    entry = tasmota_entry(mosquitto, **{CONF_USERNAME: "fleet", CONF_PASSWORD: "old"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    fields = {str(key): key for key in result["data_schema"].schema}
    assert set(fields) == {CONF_USERNAME, CONF_PASSWORD}
    assert fields[CONF_USERNAME].description["suggested_value"] == "fleet"
