"""The TickrMeter simulator read by the core's fleet tracker: on a simulated clock for the
timing (slow symbol, backend outage), and through a real Mosquitto into the source."""

from __future__ import annotations

import asyncio

import voluptuous as vol
from fleet_metrics.core.backoff import Backoff
from fleet_metrics.core.mqtt.session import BrokerSession
from fleet_metrics.core.sample import Sample
from fleet_metrics.core.source import SourceContext
from fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from fleet_metrics.core.sources.tickrmeter.fleet import Fleet
from fleet_metrics.core.sources.tickrmeter.source import SCHEMA, TickrMeterSource
from fleet_metrics.core.sources.tickrmeter.tracker import FleetTracker
from fleet_metrics.simulators.broker import BrokerAddress, publish_forever
from fleet_metrics.simulators.tickrmeter import (
    OUTAGE_SYMBOL,
    SLOW_SYMBOL,
    SYMBOLS,
    TickrMeterSimulator,
)

from tests.mosquitto import Mosquitto

from .helpers import running


def test_on_a_simulated_clock_the_tracker_finds_the_slow_and_the_failing_symbol() -> None:
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    tracker = FleetTracker(
        Correlator(request_timeout=10.0, clock=clock), Fleet(device_timeout=120, clock=clock)
    )
    simulator = TickrMeterSimulator(devices=50, request_every=5, outage_every=60, outage_for=20)
    simulator.start(0.0)
    outage_requests = 0
    while now[0] < 300:
        for topic, payload in simulator.due(now[0]):
            tracker.handle(topic, payload)
            outage_requests += topic == "STOCKPRICEUPDATE" and OUTAGE_SYMBOL.encode() in payload
        tracker.correlator.sweep()
        now[0] += 0.05
    stats = tracker.correlator.symbols
    assert set(stats) == set(SYMBOLS)
    assert len(tracker.fleet.devices) == 50
    assert tracker.malformed == 0 and tracker.rejects.total == 0
    mean = {symbol: s.latency_sum / s.responses for symbol, s in stats.items()}
    assert 2.0 <= mean[SLOW_SYMBOL] <= 4.0
    assert max(v for symbol, v in mean.items() if symbol != SLOW_SYMBOL) < 1.0
    # A third of the time the outage symbol's backend is silent: about that share times out.
    outage = stats[OUTAGE_SYMBOL]
    assert 0.2 < outage.timeouts / outage_requests < 0.5
    assert outage.responses > 0, "it answers between outages"
    assert all(s.timeouts == 0 for symbol, s in stats.items() if symbol != OUTAGE_SYMBOL)
    assert simulator.unanswered >= outage.timeouts


def test_the_outage_comes_after_a_quiet_stretch_and_repeats() -> None:
    simulator = TickrMeterSimulator(devices=1, outage_every=120, outage_for=40)
    simulator.start(1000.0)
    down = [simulator.in_outage(1000.0 + t) for t in range(0, 360)]
    assert down[:80] == [False] * 80 and down[80:120] == [True] * 40
    assert down == down[:120] * 3


async def test_through_a_broker_the_source_sees_the_whole_fleet(mosquitto: Mosquitto) -> None:
    simulator = TickrMeterSimulator(devices=60, request_every=0.5, slow_latency=(0.3, 0.5))
    session = BrokerSession("home", mosquitto.settings, backoff=Backoff(initial=0.05, maximum=0.2))
    config = vol.Schema(SCHEMA)({"broker": "home", "tick": 0.3})
    source = TickrMeterSource("fleet", config, SourceContext({"home": session}))
    samples: list[Sample] = []
    address = BrokerAddress("127.0.0.1", mosquitto.port)
    async with running(session.run(), source.run(samples.append)):
        await asyncio.wait_for(session.wait_connected(), 10)
        await asyncio.sleep(0.2)
        async with running(publish_forever(address, "tickrmeter-sim", simulator.run)):
            async with asyncio.timeout(15):
                while source.tracker.counts.received["status"] < 60 or not any(
                    s.measurement == "tickrmeter_devices" and s.fields.get("known") == 60
                    for s in samples
                ):
                    await asyncio.sleep(0.05)
    assert source.stats.parse_errors == 0
    assert len(source.tracker.correlator.symbols) == len(SYMBOLS)
    assert sum(s.responses for s in source.tracker.correlator.symbols.values()) > 0
