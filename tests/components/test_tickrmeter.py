"""TickrMeter in Home Assistant: a fleet device fed through a real Mosquitto."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.fleet_metrics.const import (
    CONF_BOOT_TOPICS,
    CONF_KIND,
    CONF_P95_LATENCY,
    CONF_REQUEST_TOPIC,
    CONF_SYMBOLS,
    CONF_TIMEOUT_RATIO,
    CONF_UPDATE_INTERVAL,
    EVENT_SYMBOL_DEGRADED,
    EVENT_SYMBOL_RECOVERED,
    KIND_TICKRMETER,
)
from custom_components.fleet_metrics.core.sources.tickrmeter.health import Thresholds
from tests.mosquitto import Mosquitto

from .conftest import Reloads
from .helpers import (
    FLEET,
    TICKRMETER_TOPICS,
    device,
    setup,
    start_tickrmeter_flow,
    state_of,
    status,
    tick,
    traffic,
    until,
)
from .helpers import tickrmeter_entry as entry_for

# --- config flow ------------------------------------------------------------------------


async def test_flow_creates_entry_with_default_topics(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    result = await start_tickrmeter_flow(hass)
    assert result["step_id"] == KIND_TICKRMETER
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: mosquitto.port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "TickrMeter fleet"
    assert result["data"] == {
        CONF_KIND: KIND_TICKRMETER, CONF_HOST: "127.0.0.1", CONF_PORT: mosquitto.port,
        **TICKRMETER_TOPICS,
        "protocol": "3.1.1", "tls": False, "tls_insecure": False,
    }  # fmt: skip
    assert result["result"].unique_id == f"127.0.0.1:{mosquitto.port}/tickrmeter/STOCKPRICEUPDATE"
    await hass.async_block_till_done()
    # The title, and so the device and entity ids, leave the broker address out.
    entity_ids = hass.states.async_entity_ids()
    assert "sensor.tickrmeter_fleet_latency_p95" in entity_ids
    assert not [entity_id for entity_id in entity_ids if "127" in entity_id]
    duplicate = await start_tickrmeter_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        duplicate["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: mosquitto.port}
    )
    assert result["reason"] == "already_configured"


async def test_flow_refuses_wildcards_and_an_unreachable_broker(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path)  # not started
    result = await start_tickrmeter_flow(hass)
    form = {CONF_HOST: "127.0.0.1", CONF_PORT: broker.port}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, CONF_REQUEST_TOPIC: "STOCK/#", CONF_BOOT_TOPICS: " , "}
    )
    assert result["errors"] == {
        CONF_REQUEST_TOPIC: "invalid_topic",
        CONF_BOOT_TOPICS: "invalid_topic",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "cannot_connect"}


# --- the fleet device ---------------------------------------------------------------------


async def test_fleet_sensors_are_written_once_per_interval(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    entry = entry_for(mosquitto, **{CONF_SYMBOLS: ["AAPL", "NEVER"], CONF_UPDATE_INTERVAL: 5})
    await setup(hass, entry)
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    assert entities == snapshot(name="entities")
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_online") == "0")  # connected

    await mosquitto.publish([status(0, "62p", 78), status(1, "62p", 12), status(2, "61k", 90)])
    await traffic(mosquitto, "AAPL", devices=3, delay=0.05)
    await traffic(mosquitto, "BTC", devices=2, delay=0.3)
    tracker = entry.runtime_data.coordinator.tracker
    await until(hass, lambda: tracker.correlator.symbols.get("BTC", None) is not None
                and tracker.correlator.symbols["BTC"].responses == 2)  # fmt: skip
    # Everything has arrived, but nothing is written before the interval is over.
    assert state_of(hass, f"{FLEET}_devices_online") == "0"

    await tick(hass)
    assert state_of(hass, f"{FLEET}_devices_online") == "3"
    assert state_of(hass, f"{FLEET}_devices_known") == "3"
    assert state_of(hass, f"{FLEET}_devices_with_low_battery") == "1"
    firmware = hass.states.get(f"{FLEET}_firmware_versions")
    assert firmware.state == "2"
    assert firmware.attributes["devices_by_firmware"] == {"61k": 1, "62p": 2}
    slowest = hass.states.get(f"{FLEET}_slowest_symbol")
    assert slowest.state == "BTC"
    ranking = slowest.attributes["ranking"]
    assert [row["symbol"] for row in ranking] == ["BTC", "AAPL"]
    assert ranking[0]["p95_latency_ms"] > 200
    p95 = hass.states.get(f"{FLEET}_latency_p95")
    assert p95.attributes["unit_of_measurement"] == "ms"
    assert float(p95.state) > 200
    assert float(hass.states.get(f"{FLEET}_aapl_latency_p95").state) < 200
    assert state_of(hass, f"{FLEET}_never_latency_p95") == "unknown"
    assert state_of(hass, f"{FLEET}_requests_pending") == "0"

    await tick(hass)  # two snapshots: now there are rates
    assert float(state_of(hass, f"{FLEET}_requests_per_minute") or 0) > 0
    assert state_of(hass, f"{FLEET}_response_ratio") == "100.0"
    assert state_of(hass, f"{FLEET}_aapl_response_ratio") == "100.0"
    assert state_of(hass, f"{FLEET}_timeouts_per_minute") == "0.0"


async def test_degraded_and_recovered_events(hass: HomeAssistant, mosquitto: Mosquitto) -> None:
    entry = entry_for(mosquitto, **{CONF_P95_LATENCY: 0.1, CONF_TIMEOUT_RATIO: 50})
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    assert coordinator.health.thresholds == Thresholds(timeout_ratio=0.5, p95_seconds=0.1)
    events: list[Event] = []
    hass.bus.async_listen(EVENT_SYMBOL_DEGRADED, events.append)
    hass.bus.async_listen(EVENT_SYMBOL_RECOVERED, events.append)
    await tick(hass)
    await traffic(mosquitto, "TSLA", devices=6, delay=0.3)
    await until(hass, lambda: coordinator.tracker.correlator.pending == 0
                and "TSLA" in coordinator.tracker.correlator.symbols)  # fmt: skip
    await tick(hass)
    await tick(hass)
    (degraded,) = events
    assert degraded.event_type == EVENT_SYMBOL_DEGRADED
    assert degraded.data["entry_id"] == entry.entry_id
    assert degraded.data["symbol"] == "TSLA"
    assert degraded.data["reasons"] == ["latency"]
    assert degraded.data["p95_latency_seconds"] > 0.2
    assert degraded.data["timeout_ratio"] == 0.0
    assert degraded.data["p95_latency_threshold_seconds"] == 0.1

    coordinator.health.thresholds = Thresholds(timeout_ratio=0.5, p95_seconds=1.0)
    await tick(hass)
    assert [event.event_type for event in events] == [EVENT_SYMBOL_DEGRADED, EVENT_SYMBOL_RECOVERED]
    assert events[1].data["symbol"] == "TSLA"
    assert events[1].data["reasons"] == []


async def test_broker_loss_makes_the_fleet_unavailable(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_online") == "0")
    await mosquitto.stop()
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_online") == STATE_UNAVAILABLE)
    await mosquitto.start()
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_online") == "0", 20)


async def test_options_offer_seen_symbols_and_add_their_sensors_without_a_reload(
    hass: HomeAssistant, mosquitto: Mosquitto, reloads: Reloads
) -> None:
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    await traffic(mosquitto, "ETH", devices=1, delay=0)
    tracker = entry.runtime_data.coordinator.tracker
    await until(hass, lambda: "ETH" in tracker.correlator.symbols)
    reloads.forget()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == KIND_TICKRMETER
    selector = result["data_schema"].schema[CONF_SYMBOLS]
    assert selector.config["options"] == ["ETH"]
    assert selector.config["custom_value"] is True
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_UPDATE_INTERVAL: 2, CONF_SYMBOLS: ["ETH", "DOGE"], CONF_TIMEOUT_RATIO: 20,
         CONF_P95_LATENCY: 2.5},
    )  # fmt: skip
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert reloads.reloads == reloads.setups == [], "applied to the running fleet"
    coordinator = entry.runtime_data.coordinator
    assert "ETH" in coordinator.tracker.correlator.symbols, "what it knew is kept"
    assert coordinator.update_interval == timedelta(seconds=2)
    assert coordinator.health.thresholds == Thresholds(timeout_ratio=0.2, p95_seconds=2.5)
    assert hass.states.get(f"{FLEET}_eth_requests_per_minute") is not None
    assert hass.states.get(f"{FLEET}_doge_timeouts_per_minute") is not None


@pytest.mark.parametrize("password", ["s3cret"])
async def test_diagnostics(
    hass: HomeAssistant, tmp_path: Path, hass_client: ClientSessionGenerator, password: str
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": password})
    await broker.start()
    try:
        entry = entry_for(broker)
        entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, "username": "fleet", CONF_PASSWORD: password}
        )
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await broker.publish([status(0, "62p", 50), ("DEVICESTATUS_RES", b"{broken")],
                             username="fleet", password=password)  # fmt: skip
        tracker = entry.runtime_data.coordinator.tracker
        await until(hass, lambda: tracker.malformed == 1)
        await tick(hass)
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        text = str(diagnostics)
        assert password not in text
        assert "127.0.0.1" not in text, "the broker's address"
        assert diagnostics["entry"]["data"][CONF_PASSWORD] == "**REDACTED**"
        assert diagnostics["entry"]["data"][CONF_HOST] == "**REDACTED**"
        # The configured topics carry no device id and help to diagnose: they stay.
        assert diagnostics["entry"]["data"][CONF_REQUEST_TOPIC] == "STOCKPRICEUPDATE"
        assert diagnostics["messages_received"]["status"] == 2
        assert diagnostics["broker"]["state"] == "connected"
        assert diagnostics["messages_malformed"] == {"status": 1}
        assert sum(diagnostics["rejects"].values()) == 1, "the broken status message"
        assert diagnostics["snapshot"]["fleet"]["by_firmware"] == {"62p": 1}
        assert device(0) not in str(diagnostics), "device ids stay out of diagnostics"
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


async def test_an_exception_in_the_handler_is_counted_and_the_entry_keeps_going(
    hass: HomeAssistant, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a payload makes the tracker raise: counted, and the next message counts."""
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    handle = coordinator.tracker.handle

    def fragile(topic: str, payload: bytes) -> None:
        if b"BOOM" in payload:
            raise TypeError("unhashable type: 'dict'")
        handle(topic, payload)

    monkeypatch.setattr(coordinator.tracker, "handle", fragile)
    await mosquitto.publish([("STOCKPRICEUPDATE", b'{"symbol": "BOOM"}')])
    await until(hass, lambda: coordinator.rejects.by_kind["exception"] == 1, 20)
    await traffic(mosquitto, "ETH", devices=1, delay=0)
    await until(hass, lambda: "ETH" in coordinator.tracker.correlator.symbols, 20)
    assert entry.state is ConfigEntryState.LOADED
    assert coordinator.session.handler_errors == 0, "the guard, not the session, caught it"
