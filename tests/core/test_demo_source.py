from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.demo import DemoCrash, DemoSource


async def test_demo_emits_all_fields_and_counts(tmp_path: Path) -> None:
    source = DemoSource("demo", {"interval": 0.01, "trigger_file": str(tmp_path / "crash")})
    seen: list[Sample] = []
    task = asyncio.create_task(source.run(seen.append))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) >= 3
    first = seen[0]
    assert first.measurement == "demo"
    assert set(first.fields) == {
        "temperature_celsius",
        "humidity_ratio",
        "pressure_pascals",
        "ticks",
    }
    assert first.counters == frozenset({"ticks"})
    assert 0 < float(first.fields["humidity_ratio"]) < 1
    assert [s.fields["ticks"] for s in seen] == list(range(1, len(seen) + 1))
    assert source.stats.samples == len(seen)


async def test_demo_crashes_while_the_trigger_file_exists(tmp_path: Path) -> None:
    trigger = tmp_path / "crash"
    trigger.touch()
    source = DemoSource("demo", {"interval": 0.01, "trigger_file": str(trigger)})
    with pytest.raises(DemoCrash, match="trigger file"):
        await source.run(lambda _: None)
