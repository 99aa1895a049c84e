"""NewcomerGate: a new device's samples wait; a forgotten device's never reach a sink."""

from __future__ import annotations

import asyncio
import contextlib

from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.mqtt.session import BrokerSession
from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.source import SourceContext
from custom_components.fleet_metrics.core.sources.newcomers import PER_DEVICE, NewcomerGate
from custom_components.fleet_metrics.core.sources.tasmota.source import TasmotaSource
from tests.core.test_tasmota import payload, validate
from tests.mosquitto import Mosquitto


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sample(device: str, value: float) -> Sample:
    return Sample("m", {"topic": device}, {"v": value}, time_ns=1)


def test_samples_wait_while_new_and_come_out_in_order() -> None:
    clock = Clock()
    gate = NewcomerGate(hold=2.0, capacity=10, clock=clock)
    known = {"a": 100.0}
    assert gate.admit("a", known["a"], [sample("a", 1)]) == []
    clock.now = 101.0
    assert gate.admit("a", known["a"], [sample("a", 2)]) == []
    assert gate.release(known.get) == []  # still new
    clock.now = 102.0
    assert [s.fields["v"] for s in gate.release(known.get)] == [1, 2]
    assert gate.admit("a", known["a"], [sample("a", 3)]) == [sample("a", 3)]
    assert gate.held == 0
    assert gate.dropped == 0


def test_held_samples_come_before_a_fresh_one_once_the_device_is_old_enough() -> None:
    clock = Clock()
    gate = NewcomerGate(hold=1.0, clock=clock)
    gate.admit("a", 100.0, [sample("a", 1)])
    clock.now = 101.5
    out = gate.admit("a", 100.0, [sample("a", 2)])
    assert [s.fields["v"] for s in out] == [1, 2]


def test_a_forgotten_device_is_dropped_and_counted() -> None:
    clock = Clock()
    gate = NewcomerGate(hold=1.0, clock=clock)
    for index in range(50):
        gate.admit(f"g{index}", 100.0, [sample(f"g{index}", index), sample(f"g{index}", 0)])
    clock.now = 102.0
    assert gate.release(lambda key: None) == []
    assert gate.dropped == 100
    assert gate.held == 0


def test_unknown_to_the_table_passes_at_once() -> None:
    gate = NewcomerGate(hold=5.0, clock=Clock())
    assert gate.admit("x", None, [sample("x", 1)]) == [sample("x", 1)]


def test_what_waits_is_bounded_by_devices_and_per_device() -> None:
    clock = Clock()
    gate = NewcomerGate(hold=10.0, capacity=3, clock=clock)
    for index in range(10):
        gate.admit(f"d{index}", 100.0, [sample(f"d{index}", 0)])
    assert gate.held == 3
    assert gate.dropped == 7
    gate.admit("d9", 100.0, [sample("d9", float(i)) for i in range(PER_DEVICE + 5)])
    clock.now = 200.0
    released = gate.release(lambda key: 100.0)
    assert len([s for s in released if s.tags["topic"] == "d9"]) == PER_DEVICE
    assert released[-1].fields["v"] == float(PER_DEVICE + 4), "the newest are kept"


async def test_a_flood_of_devices_reaches_the_sink_only_as_far_as_the_table_holds_it(
    mosquitto: Mosquitto,
) -> None:
    session = BrokerSession("home", mosquitto.settings, backoff=Backoff(initial=0.05, maximum=0.2))
    config = validate(max_devices=20, new_device_hold=1.0)
    source = TasmotaSource("plugs", config, SourceContext({"home": session}))
    emitted: list[Sample] = []
    running = asyncio.create_task(session.run())
    task = asyncio.create_task(source.run(emitted.append))
    sensor = payload("tele_sensor_ds18b20.json")
    try:
        await asyncio.wait_for(session.wait_connected(), 10)
        await asyncio.sleep(0.2)
        await mosquitto.publish([("tele/real/SENSOR", sensor)])
        async with asyncio.timeout(10):
            while not any(s.tags.get("topic") == "real" for s in emitted):
                await asyncio.sleep(0.05)
        assert source.gate.dropped == 0, "a device that stays is never dropped"
        await mosquitto.publish([(f"tele/flood{index}/SENSOR", sensor) for index in range(500)])
        async with asyncio.timeout(10):
            while source.tracker.messages < 501:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # at least one more release after the flood
    finally:
        task.cancel()
        running.cancel()
        for waiting in (task, running):
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    flooded = {s.tags["topic"] for s in emitted} - {"real"}
    # Only devices the table still held at a release reach the sink: at most its size.
    assert 0 < len(flooded) <= 20
    assert flooded == set(source.tracker.devices)
    assert source.gate.dropped >= 480
