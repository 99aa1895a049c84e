"""The Tasmota simulator read by the real core Tasmota source through a real Mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import orjson
import voluptuous as vol
from fleet_metrics.core.backoff import Backoff
from fleet_metrics.core.mqtt.session import BrokerSession
from fleet_metrics.core.sample import Sample
from fleet_metrics.core.source import SourceContext
from fleet_metrics.core.sources.tasmota.discovery import parse_config, parse_sensors
from fleet_metrics.core.sources.tasmota.source import SCHEMA, TasmotaSource
from fleet_metrics.core.sources.tasmota.telemetry import Notes, sensor_readings, state_fields
from fleet_metrics.simulators.broker import BrokerAddress, publish_forever
from fleet_metrics.simulators.clock import SimClock
from fleet_metrics.simulators.tasmota import TasmotaSimulator, default_devices

from tests.mosquitto import Mosquitto

from .helpers import running


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_discovery_payloads_are_what_the_core_parser_reads() -> None:
    """Every device's discovery names its topic, MAC, model and firmware; plugs a relay."""
    for device in default_devices():
        parsed = parse_config(device.mac, orjson.loads(orjson.dumps(device.discovery_config())))
        assert (parsed.mac, parsed.topic, parsed.name) == (device.mac, device.topic, device.name)
        assert (parsed.model, parsed.firmware) == (device.model, device.firmware)
        assert parsed.relays == (1 if device.kind == "plug" else 0)
        assert parsed.firmware.split(".")[0] in ("13", "14")
        sensors = parse_sensors({"sn": device.sensor(datetime.now()), "ver": 1}, 10)
        assert sensors == (["ENERGY"] if device.kind == "plug" else ["BME280"])


def test_state_and_sensor_payloads_parse_into_fields() -> None:
    for device in default_devices():
        fields = state_fields(device.state(datetime.now(), 3725))
        assert fields["uptime_seconds"] == 3725
        notes = Notes()
        readings = sensor_readings(device.sensor(datetime.now()), notes)
        fields = {name for reading in readings for name in reading.fields}
        expected = "power_watts" if device.kind == "plug" else "temperature_celsius"
        assert expected in fields, device.name
        assert (notes.skipped.count, notes.bad_names, notes.over_cap) == (0, 0, 0), device.name


async def test_the_core_source_finds_every_device_and_growing_energy(
    mosquitto: Mosquitto,
) -> None:
    clock = SimClock(start_hour=12, speed=3600)  # an hour of energy per second
    simulator = TasmotaSimulator(clock=clock, tele_period=0.1, flap_every=0.6, flap_for=0.4)
    session = BrokerSession("home", mosquitto.settings, backoff=Backoff(initial=0.05, maximum=0.2))
    config = vol.Schema(SCHEMA)({"broker": "home", "new_device_hold": 0})
    source = TasmotaSource("plugs", config, SourceContext({"home": session}))
    samples: list[Sample] = []
    address = BrokerAddress("127.0.0.1", mosquitto.port)
    flapper = next(d for d in simulator.devices if d.flaps)

    def totals(name: str) -> list[float]:
        return [
            float(s.fields["total_joules"])
            for s in samples
            if s.measurement == "tasmota_energy" and s.tags["device"] == name
        ]

    def online(topic: str) -> list[bool]:
        return [
            bool(s.fields["online"])
            for s in samples
            if s.measurement == "tasmota_device" and s.tags["topic"] == topic
            and "online" in s.fields
        ]  # fmt: skip

    async with running(session.run(), source.run(samples.append)):
        await session.wait_connected()
        await asyncio.sleep(0.2)  # subscribed before the devices speak
        async with running(publish_forever(address, "tasmota-sim", simulator.run)):
            await until(lambda: len(set(totals("Kitchen fridge"))) >= 3)
            await until(lambda: online(flapper.topic)[-2:] == [False, True])

    devices = {state.device.name: state.device for state in source.tracker.devices.values()
               if state.device is not None}  # fmt: skip
    assert set(devices) == {d.name for d in simulator.devices}
    assert {d.model for d in devices.values()} == {d.model for d in simulator.devices}
    fridge = totals("Kitchen fridge")
    assert fridge == sorted(fridge) and fridge[-1] > fridge[0]
    assert any(s.measurement == "tasmota_sensor" for s in samples)
    went = online(flapper.topic)
    assert went[0] is True and False in went and went[-1] is True
    assert source.stats.parse_errors == 0
