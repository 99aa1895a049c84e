"""TickrMeter statistics survive: an options change applies in place, a restart restores what
the store saved; a corrupt or foreign store is ignored with a warning (real Mosquitto)."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from custom_components.fleet_metrics.const import (
    CONF_P95_LATENCY,
    CONF_SYMBOLS,
    CONF_TIMEOUT_RATIO,
    CONF_UPDATE_INTERVAL,
)
from custom_components.fleet_metrics.core.sources.tickrmeter.health import Thresholds
from custom_components.fleet_metrics.core.sources.tickrmeter.state import FORMAT
from custom_components.fleet_metrics.tickrmeter.coordinator import TickrMeterCoordinator
from custom_components.fleet_metrics.tickrmeter.store import STORE_VERSION, store_key
from tests.mosquitto import Mosquitto

from .conftest import Reloads
from .helpers import FLEET, setup, state_of, status, tick, tickrmeter_entry, traffic, until

KEY = store_key("01JTICKRMETERFLEETTEST00000")


async def fleet_with_history(hass: HomeAssistant, broker: Mosquitto) -> TickrMeterCoordinator:
    """Three devices known, two symbols answered (BTC slowly), state written."""
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_online") == "0")
    await broker.publish([status(0, "62p", 78), status(1, "62p", 12), status(2, "61k", 90)])
    await traffic(broker, "AAPL", devices=3, delay=0.05)
    await traffic(broker, "BTC", devices=2, delay=0.3)
    coordinator: TickrMeterCoordinator = hass.config_entries.async_entries("fleet_metrics")[
        0
    ].runtime_data.coordinator
    symbols = coordinator.tracker.correlator.symbols
    await until(hass, lambda: "BTC" in symbols and symbols["BTC"].responses == 2)
    await tick(hass)
    assert state_of(hass, f"{FLEET}_devices_known") == "3"
    return coordinator


def windows(coordinator: TickrMeterCoordinator) -> dict[str, Any]:
    correlator = coordinator.tracker.correlator
    return {symbol: stats.latency.summary() for symbol, stats in correlator.symbols.items()}


async def test_options_apply_in_place_and_keep_the_statistics(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    reloads: Reloads,
    entity_registry: er.EntityRegistry,
) -> None:
    entry = tickrmeter_entry(mosquitto, **{CONF_SYMBOLS: ["AAPL"]})
    await setup(hass, entry)
    coordinator = await fleet_with_history(hass, mosquitto)
    before = windows(coordinator)
    assert before["BTC"].count == 2
    reloads.forget()

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_UPDATE_INTERVAL: 2, CONF_SYMBOLS: ["BTC"], CONF_TIMEOUT_RATIO: 20,
         CONF_P95_LATENCY: 2.5},
    )  # fmt: skip
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert reloads.reloads == reloads.setups == [], "applied in place, not reloaded"
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator is coordinator
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 2
    assert coordinator.health.thresholds == Thresholds(timeout_ratio=0.2, p95_seconds=2.5)
    assert windows(coordinator) == before, "latency windows kept"
    assert state_of(hass, f"{FLEET}_devices_known") == "3", "devices kept"
    assert float(state_of(hass, f"{FLEET}_btc_latency_p95") or 0) > 200, "the new symbol"
    # The symbol no longer picked loses its sensors, from the registry too.
    assert entity_registry.async_get(f"{FLEET}_aapl_latency_p95") is None
    assert hass.states.get(f"{FLEET}_aapl_latency_p95") is None
    await tick(hass, 2)
    assert state_of(hass, f"{FLEET}_devices_known") == "3"


async def test_a_restart_restores_devices_counters_and_windows(
    hass: HomeAssistant, mosquitto: Mosquitto, hass_storage: dict[str, Any]
) -> None:
    entry = tickrmeter_entry(mosquitto)
    await setup(hass, entry)
    coordinator = await fleet_with_history(hass, mosquitto)
    before = windows(coordinator)
    totals = coordinator.tracker.correlator.totals()
    received = dict(coordinator.tracker.counts.received)

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert hass_storage[KEY]["version"] == STORE_VERSION
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    restored = entry.runtime_data.coordinator
    assert restored is not coordinator
    assert windows(restored) == before
    assert restored.tracker.correlator.totals() == totals
    assert dict(restored.tracker.counts.received) == received
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_known") == "3")  # connected
    assert state_of(hass, f"{FLEET}_devices_online") == "3"
    assert float(state_of(hass, f"{FLEET}_latency_p95") or 0) > 200


async def test_ha_stopping_writes_the_statistics_at_the_final_write(
    hass: HomeAssistant, mosquitto: Mosquitto, hass_storage: dict[str, Any]
) -> None:
    """Entries are not unloaded when HA stops: the stop event schedules the save."""
    entry = tickrmeter_entry(mosquitto)
    await setup(hass, entry)
    await fleet_with_history(hass, mosquitto)
    assert KEY not in hass_storage

    hass.set_state(CoreState.stopping)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    hass.set_state(CoreState.final_write)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    hass.set_state(CoreState.running)
    saved = hass_storage[KEY]

    # The next start of HA finds only what the stop wrote.
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass_storage[KEY] = saved
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_known") == "3")
    assert entry.runtime_data.coordinator.tracker.correlator.symbols["BTC"].responses == 2


@pytest.mark.parametrize(
    ("stored", "warning"),
    [
        ({"version": STORE_VERSION, "data": {"fleet": "garbage"}}, "saved statistics ignored"),
        ({"version": STORE_VERSION, "data": ["not", "ours"]}, "not ours"),
        ({"version": STORE_VERSION + 1, "data": {}}, "unreadable"),
        (
            {"version": STORE_VERSION, "data": {"fleet": {"format": FORMAT, "version": 99}}},
            "another version",
        ),
    ],
)
async def test_a_corrupt_or_foreign_store_is_ignored_with_a_warning(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    stored: dict[str, Any],
    warning: str,
) -> None:
    hass_storage[KEY] = {"key": KEY, "minor_version": 1, **stored}
    entry = tickrmeter_entry(mosquitto)
    await setup(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert warning in caplog.text
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_known") == "0")


async def test_removing_the_entry_deletes_its_statistics(
    hass: HomeAssistant, mosquitto: Mosquitto, hass_storage: dict[str, Any]
) -> None:
    entry = tickrmeter_entry(mosquitto)
    await setup(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert KEY in hass_storage
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert KEY not in hass_storage
