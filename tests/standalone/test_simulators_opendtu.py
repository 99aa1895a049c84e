"""The OpenDTU simulator read by the core's OpenDTU client, collector and source."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
import voluptuous as vol
from fleet_metrics.core.sample import Sample
from fleet_metrics.core.sources.opendtu.client import OpenDtuClient
from fleet_metrics.core.sources.opendtu.collector import OpenDtuCollector
from fleet_metrics.core.sources.opendtu.models import DtuSnapshot, Inverter
from fleet_metrics.core.sources.opendtu.source import SCHEMA, OpenDtuSource
from fleet_metrics.simulators.clock import SimClock, is_night, sun
from fleet_metrics.simulators.opendtu import OpenDtuSimulator
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import running

HM800, HMS2000 = "114182345678", "116491234567"


@contextlib.asynccontextmanager
async def dtu(hour: float, speed: float = 1.0, interval: float = 2.0) -> AsyncIterator[str]:
    simulator = OpenDtuSimulator(clock=SimClock(start_hour=hour, speed=speed), interval=interval)
    url = await simulator.start()
    try:
        yield url
    finally:
        await simulator.stop()


async def refresh(url: str) -> tuple[OpenDtuCollector, DtuSnapshot]:
    async with aiohttp.ClientSession() as session:
        collector = OpenDtuCollector(OpenDtuClient(session, url))
        return collector, await collector.refresh()


async def test_at_noon_both_inverters_produce_with_every_string() -> None:
    async with dtu(hour=12) as url:
        collector, snapshot = await refresh(url)
    assert snapshot.system.firmware == "v26.3.30"
    assert snapshot.network is not None and snapshot.network.hostname == "OpenDTU-Demo"
    assert set(snapshot.inverters) == {HM800, HMS2000}
    for serial, strings in ((HM800, 2), (HMS2000, 4)):
        inverter = snapshot.inverters[serial]
        assert inverter.reachable and inverter.producing
        assert len(inverter.strings) == strings
        assert inverter.values["power"] > 0
        assert all(s.values["power"] > 0 for s in inverter.strings.values())
    assert snapshot.total.power == pytest.approx(
        sum(i.values["power"] for i in snapshot.inverters.values()), abs=0.2
    )
    assert collector.parse_errors == 0


async def test_at_night_the_hms_is_unreachable_and_the_hm_gives_nothing() -> None:
    async with dtu(hour=23) as url:
        _, snapshot = await refresh(url)
    hms, hm = snapshot.inverters[HMS2000], snapshot.inverters[HM800]
    assert not hms.reachable and not hms.producing
    assert hm.reachable and not hm.producing
    assert hm.values["power"] == 0


async def test_live_pushes_merge_and_yields_grow() -> None:
    async with dtu(hour=11, speed=3600, interval=0.1) as url, aiohttp.ClientSession() as session:
        collector = OpenDtuCollector(OpenDtuClient(session, url))
        first = await collector.refresh()
        updates: list[list[Inverter]] = []

        def on_update(_: DtuSnapshot, updated: list[Inverter]) -> None:
            updates.append(updated)

        async with running(collector.stream(on_update)), asyncio.timeout(10):
            while len(updates) < 6:
                await asyncio.sleep(0.02)
    assert collector.parse_errors == 0
    assert {i.serial for batch in updates for i in batch} == {HM800, HMS2000}
    assert collector.snapshot is not None
    before = first.inverters[HM800].values["yield_total"]
    assert collector.snapshot.inverters[HM800].values["yield_total"] > before


async def test_the_core_source_emits_inverter_and_string_samples() -> None:
    async with dtu(hour=13, interval=0.2) as url:
        config = vol.Schema(SCHEMA)({"url": url, "interval": 0.5})
        source = OpenDtuSource("roof", config)
        samples: list[Sample] = []
        async with running(source.run(samples.append)), asyncio.timeout(10):
            while not {"opendtu_inverter", "opendtu_string"} <= {s.measurement for s in samples}:
                await asyncio.sleep(0.02)
    assert source.connected is True
    assert source.stats.parse_errors == 0


@settings(max_examples=500, deadline=None)
@given(hour=st.floats(-48, 48, allow_nan=False))
def test_the_sun_is_between_0_and_1_and_down_at_night(hour: float) -> None:
    light = sun(hour)
    assert 0.0 <= light <= 1.0
    assert is_night(hour) == (light == 0.0)
    if hour % 24 < 5 or hour % 24 > 21:
        assert light == 0.0
    if 9 <= hour % 24 <= 17:
        assert light > 0.5


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0, 23.99),
    speed=st.floats(0.5, 10_000),
    elapsed=st.floats(0, 1_000),
)
def test_the_clock_runs_speed_times_faster(start: float, speed: float, elapsed: float) -> None:
    now = [100.0]
    clock = SimClock(start_hour=start, speed=speed, monotonic=lambda: now[0])
    assert clock.hour() == pytest.approx(start)
    now[0] += elapsed
    # The monotonic clock moved by what float addition kept of ``elapsed`` (100 + 2e-16 is 100).
    moved = now[0] - 100.0
    assert clock.seconds() == pytest.approx(start * 3600 + moved * speed)
    assert 0 <= clock.hour() < 24
    assert clock.day() == int((start * 3600 + moved * speed) // 86_400)
