"""The sink's series cap: new series beyond it push out the least recently updated tenth."""

from __future__ import annotations

from custom_components.fleet_metrics.core.exporters.prometheus import PrometheusSink
from custom_components.fleet_metrics.core.sample import Sample


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def add(sink: PrometheusSink, device: str, value: float = 1.0) -> None:
    sink.add(Sample("plug", {"device": device}, {"power_watts": value}))


def test_the_cap_holds_and_the_least_recently_updated_go_first() -> None:
    clock = Clock()
    sink = PrometheusSink(clock=clock, max_series=100)
    for index in range(100):
        clock.now += 1
        add(sink, f"d{index}")
    clock.now += 1
    add(sink, "d0", 2.0)  # updated: now the most recent
    assert sink.series_count() == 100
    clock.now += 1
    add(sink, "new")
    assert sink.series_count() == 91  # a tenth forgotten, then the new one
    assert sink.evicted == 10
    text = sink.render()
    assert 'device="d0"' in text and 'device="new"' in text
    assert all(f'device="d{index}"' not in text for index in range(1, 11))
    assert 'device="d11"' in text


def test_updates_of_known_series_never_evict() -> None:
    sink = PrometheusSink(max_series=10)
    for index in range(10):
        add(sink, f"d{index}")
    for _ in range(100):
        for index in range(10):
            add(sink, f"d{index}", float(index))
    assert sink.evicted == 0
    assert sink.series_count() == 10


def test_a_flood_stays_within_the_cap_and_the_count_matches_what_renders() -> None:
    clock = Clock()
    sink = PrometheusSink(clock=clock, max_series=1000, ttl=50.0)
    for index in range(20_000):
        clock.now += 0.001
        sink.add(Sample("m", {"id": f"g{index}"}, {"a": 1.0, "b": 2.0}))
        assert sink.series_count() <= 1000
    rendered = [line for line in sink.render().splitlines() if not line.startswith("#")]
    assert len(rendered) == sink.series_count()
    clock.now += 100  # everything expires at the next render
    assert sink.render() == ""
    assert sink.series_count() == 0
