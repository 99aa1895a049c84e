"""The automation blueprints in blueprints/automation/fleet_metrics.

Each file is loaded the way Home Assistant loads a blueprint (``Blueprint`` with the
automation schema, so selectors and ``!input`` references are checked), its inputs are
compared with what the README promises, and each is then used by a real automation in a
test Home Assistant: the trigger fires, the user's action runs with the variables the
description names, and what must not notify does not.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.fleet_metrics.const import (
    DOMAIN,
    EVENT_SYMBOL_DEGRADED,
    EVENT_SYMBOL_RECOVERED,
)

FOLDER = Path(__file__).resolve().parents[2] / "blueprints" / "automation" / "fleet_metrics"
NOTIFIED = "blueprint_test_notified"

# blueprint file -> {input: the selector it must use}
EXPECTED_INPUTS = {
    "host_offline.yaml": {
        "hosts": "entity",
        "offline_for": "duration",
        "notify_action": "action",
        "back_online_action": "action",
    },
    "tasmota_offline.yaml": {
        "devices": "entity",
        "offline_for": "duration",
        "notify_action": "action",
    },
    "tickrmeter_symbol_health.yaml": {
        "fleet": "config_entry",
        "degraded_action": "action",
        "recovered_action": "action",
    },
}


def load(name: str) -> Blueprint:
    path = FOLDER / name
    return Blueprint(
        load_yaml_dict(path),
        path=str(path),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


def test_every_blueprint_in_the_folder_is_tested() -> None:
    assert sorted(path.name for path in FOLDER.glob("*.yaml")) == sorted(EXPECTED_INPUTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_INPUTS))
def test_blueprint_loads_with_its_inputs_and_selectors(name: str) -> None:
    blueprint = load(name)
    assert blueprint.domain == "automation"
    assert blueprint.validate() is None  # min_version is met by the pinned Home Assistant
    assert blueprint.metadata["source_url"].endswith(f"/blueprints/automation/{DOMAIN}/{name}")
    inputs = blueprint.inputs
    assert {key: next(iter(spec["selector"])) for key, spec in inputs.items()} == (
        EXPECTED_INPUTS[name]
    )
    for key, spec in inputs.items():
        assert spec.get("name") and spec.get("description"), f"{name}: {key} is unexplained"
        selector = spec["selector"]
        if "entity" in selector:
            filters = selector["entity"]["filter"]
            assert filters and all(
                f["integration"] == [DOMAIN] or f["integration"] == DOMAIN for f in filters
            )
        if "config_entry" in selector:
            assert selector["config_entry"]["integration"] == DOMAIN


def install(name: str, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(FOLDER / name, target / name)


async def use_blueprint(hass: HomeAssistant, name: str, inputs: dict[str, Any]) -> None:
    """One automation from the blueprint, as a user's automations.yaml would write it."""
    target = Path(hass.config.path("blueprints", "automation", DOMAIN))
    await hass.async_add_executor_job(install, name, target)
    config = {"automation": [{"use_blueprint": {"path": f"{DOMAIN}/{name}", "input": inputs}}]}
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    assert hass.states.async_entity_ids("automation"), "the automation was not created"


def notify(message: str) -> list[dict[str, Any]]:
    """A stand-in for a notify action: an event that carries the rendered message."""
    return [{"event": NOTIFIED, "event_data": {"message": message}}]


def messages(events: list[Event]) -> list[str]:
    return [str(event.data["message"]) for event in events]


async def later(hass: HomeAssistant, freezer: FrozenDateTimeFactory, **delta: float) -> None:
    """Move the clock (states' last_changed follow it) and run the timers that are due."""
    freezer.tick(timedelta(**delta))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_host_offline_notifies_after_the_delay_and_when_back(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass.states.async_set("binary_sensor.pve1_online", "on", {"friendly_name": "pve1 Online"})
    hass.states.async_set("binary_sensor.pve2_online", "on", {"friendly_name": "pve2 Online"})
    notified = async_capture_events(hass, NOTIFIED)
    await use_blueprint(
        hass,
        "host_offline.yaml",
        {
            "hosts": ["binary_sensor.pve1_online", "binary_sensor.pve2_online"],
            "offline_for": {"minutes": 5},
            "notify_action": notify("{{ host }} offline"),
            "back_online_action": notify("{{ host }} back"),
        },
    )
    # pve2 blips for a minute: neither reported offline nor back.
    hass.states.async_set("binary_sensor.pve2_online", "off", {"friendly_name": "pve2 Online"})
    await later(hass, freezer, minutes=1)
    hass.states.async_set("binary_sensor.pve2_online", "on", {"friendly_name": "pve2 Online"})
    await hass.async_block_till_done()
    await later(hass, freezer, minutes=10)
    assert messages(notified) == []

    hass.states.async_set("binary_sensor.pve1_online", "off", {"friendly_name": "pve1 Online"})
    await later(hass, freezer, minutes=4)
    assert messages(notified) == []
    await later(hass, freezer, minutes=6)
    assert messages(notified) == ["pve1 Online offline"]
    hass.states.async_set("binary_sensor.pve1_online", "on", {"friendly_name": "pve1 Online"})
    await hass.async_block_till_done()
    assert messages(notified) == ["pve1 Online offline", "pve1 Online back"]


async def test_tasmota_device_dropping_off_notifies_once(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass.states.async_set("binary_sensor.plug_connectivity", "on", {"friendly_name": "Plug"})
    notified = async_capture_events(hass, NOTIFIED)
    await use_blueprint(
        hass,
        "tasmota_offline.yaml",
        {
            "devices": ["binary_sensor.plug_connectivity"],
            "offline_for": {"minutes": 2},
            "notify_action": notify("{{ device }} dropped off"),
        },
    )
    # Losing the broker makes the sensor unavailable, which is no drop-off.
    hass.states.async_set("binary_sensor.plug_connectivity", "unavailable")
    await later(hass, freezer, minutes=5)
    hass.states.async_set("binary_sensor.plug_connectivity", "on", {"friendly_name": "Plug"})
    await hass.async_block_till_done()
    assert messages(notified) == []

    hass.states.async_set("binary_sensor.plug_connectivity", "off", {"friendly_name": "Plug"})
    await later(hass, freezer, minutes=3)
    await later(hass, freezer, minutes=10)
    assert messages(notified) == ["Plug dropped off"]


async def test_symbol_health_follows_its_own_fleet_only(hass: HomeAssistant) -> None:
    notified = async_capture_events(hass, NOTIFIED)
    await use_blueprint(
        hass,
        "tickrmeter_symbol_health.yaml",
        {
            "fleet": "entry-a",
            "degraded_action": notify("{{ symbol }} slow: {{ reasons }} {{ timeout_percent }}%"),
            "recovered_action": notify("{{ symbol }} ok, p95 {{ p95_seconds }}"),
        },
    )
    data = {
        "symbol": "AAPL",
        "reasons": ["timeout_ratio", "p95_latency"],
        "timeout_ratio": 0.25,
        "p95_latency_seconds": 7.123,
        "timeout_ratio_threshold": 0.1,
        "p95_latency_threshold_seconds": 5.0,
    }
    hass.bus.async_fire(EVENT_SYMBOL_DEGRADED, {**data, "entry_id": "entry-b"})
    await hass.async_block_till_done()
    assert messages(notified) == []

    hass.bus.async_fire(EVENT_SYMBOL_DEGRADED, {**data, "entry_id": "entry-a"})
    await hass.async_block_till_done()
    recovered = {**data, "reasons": [], "timeout_ratio": None, "p95_latency_seconds": 0.4}
    hass.bus.async_fire(EVENT_SYMBOL_RECOVERED, {**recovered, "entry_id": "entry-a"})
    await hass.async_block_till_done()
    assert messages(notified) == [
        "AAPL slow: timeout_ratio, p95_latency 25.0%",
        "AAPL ok, p95 0.4",
    ]
