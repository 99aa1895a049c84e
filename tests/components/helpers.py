"""What several component test modules need: waiting on HA, setting an entry up, the Tasmota
plug and the TickrMeter fleet a test broker carries. Test modules import from here, never
from each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.fleet_metrics.const import (
    CONF_BOOT_TOPICS,
    CONF_DISCOVERY_PREFIX,
    CONF_KIND,
    CONF_REQUEST_TOPIC,
    CONF_STATUS_TOPIC,
    CONF_STREAM_TOPIC,
    DOMAIN,
    KIND_TASMOTA,
    KIND_TICKRMETER,
)
from tests.mosquitto import Mosquitto

# --- Home Assistant ---------------------------------------------------------------------


async def until(hass: HomeAssistant, predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Let HA run until ``predicate`` holds; a timeout fails the test."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
            await hass.async_block_till_done()


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return state.state if state else None


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add ``entry`` and set it up; the setup must succeed."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def reauth_flows(hass: HomeAssistant, entry_id: str) -> list[ConfigFlowResult]:
    """The reauth flows in progress for one entry."""
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH and flow["context"]["entry_id"] == entry_id
    ]


# --- Tasmota: the energy plug -----------------------------------------------------------

TASMOTA_FIXTURES = Path(__file__).parents[1] / "fixtures" / "tasmota"
PLUG_MAC = "2CF432CC2FC5"


def fixture(name: str) -> bytes:
    return (TASMOTA_FIXTURES / name).read_bytes()


def tasmota_entry(broker: Mosquitto, **extra: object) -> MockConfigEntry:
    """A Tasmota entry for ``broker``; ``extra`` goes into its data (credentials, TLS)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Tasmota",
        unique_id=f"127.0.0.1:{broker.port}/tasmota/discovery",
        data={
            CONF_KIND: "tasmota",
            CONF_HOST: "127.0.0.1",
            CONF_PORT: broker.port,
            CONF_DISCOVERY_PREFIX: "tasmota/discovery",
            **extra,
        },
    )


async def publish_plug(
    broker: Mosquitto, username: str | None = None, password: str | None = None
) -> None:
    """The plug's retained discovery and its LWT, as ``username`` where the broker asks."""
    auth: dict[str, str] = {}
    if username is not None:
        auth["username"] = username
    if password is not None:
        auth["password"] = password
    await broker.publish(
        [
            (
                f"tasmota/discovery/{PLUG_MAC}/config",
                fixture("discovery_config_energy_plug_v11.0.0.json"),
            ),
            (
                f"tasmota/discovery/{PLUG_MAC}/sensors",
                fixture("discovery_sensors_energy_plug_v11.0.0.json"),
            ),
            ("tele/NXSM200_01/LWT", b"Online"),
        ],
        retain=True,
        **auth,
    )


# --- TickrMeter: the fleet --------------------------------------------------------------

TICKRMETER_ENTRY_ID = "01JTICKRMETERFLEETTEST00000"
FLEET = "sensor.tickrmeter_fleet"
TICKRMETER_TOPICS = {
    CONF_REQUEST_TOPIC: "STOCKPRICEUPDATE",
    CONF_STATUS_TOPIC: "DEVICESTATUS_RES",
    CONF_BOOT_TOPICS: "TICKRMETERBOOT, DEVICE_BOOTED",
    CONF_STREAM_TOPIC: "HTTPSTREAMSTOCKS",
}


def tickrmeter_entry(broker: Mosquitto, **options: object) -> MockConfigEntry:
    """The fleet entry for ``broker`` with the default topics; ``options`` as given."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=TICKRMETER_ENTRY_ID,
        title="TickrMeter fleet",
        unique_id=f"127.0.0.1:{broker.port}/tickrmeter/STOCKPRICEUPDATE",
        data={
            CONF_KIND: KIND_TICKRMETER,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: broker.port,
            **TICKRMETER_TOPICS,
        },
        options=options,
    )


def device(index: int) -> str:
    return f"08A6F792DD{index:02X}"


def request(index: int, symbol: str) -> tuple[str, bytes]:
    body = {"type": "UPDATE", "device": device(index), "symbol": symbol}
    return "STOCKPRICEUPDATE", orjson.dumps(body)


def answer(index: int, symbol: str) -> tuple[str, bytes]:
    return device(index), orjson.dumps({"symbol": symbol, "price": "$118593", "type": "UPDATE"})


def status(index: int, firmware: str, battery: int) -> tuple[str, bytes]:
    body = {"status": "online", "firmware_version": firmware, "device": device(index),
            "battery": str(battery)}  # fmt: skip
    return "DEVICESTATUS_RES", orjson.dumps(body)


async def traffic(broker: Mosquitto, symbol: str, devices: int, delay: float) -> None:
    """``devices`` devices ask for ``symbol`` and get the answer ``delay`` seconds later."""
    await broker.publish([request(i, symbol) for i in range(devices)])
    await asyncio.sleep(delay)
    await broker.publish([answer(i, symbol) for i in range(devices)])


async def tick(hass: HomeAssistant, seconds: float = 5) -> None:
    """Move HA's clock on, so the fleet's update interval passes."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await hass.async_block_till_done()  # not the background tasks: the session runs forever


async def start_tickrmeter_flow(hass: HomeAssistant) -> ConfigFlowResult:
    """The user flow, past the menu, at the TickrMeter form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert KIND_TICKRMETER in result["menu_options"]
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": KIND_TICKRMETER}
    )


# --- either broker kind -----------------------------------------------------------------


def broker_entry(kind: str, broker: Mosquitto, **data: object) -> MockConfigEntry:
    """A Tasmota or TickrMeter entry for ``broker`` with ``data`` added (credentials)."""
    base = tasmota_entry(broker) if kind == KIND_TASMOTA else tickrmeter_entry(broker)
    return MockConfigEntry(
        domain=DOMAIN,
        title=base.title,
        unique_id=base.unique_id,
        data={**base.data, **data},
    )
