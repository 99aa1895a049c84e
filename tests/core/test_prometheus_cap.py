"""The sink's series cap: new series beyond it push out the least recently updated tenth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.exporters.prometheus import PrometheusSink
from custom_components.fleet_metrics.core.sample import CompleteSet, Sample, SetSample


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


RANKING = CompleteSet(frozenset({"ranking"}))


def test_replaced_sets_leave_the_count_and_never_push_others_out() -> None:
    """A new set's series are counted once the old set's left: a ranking that changes every
    tick, next to series that fill the rest of the cap, evicts nothing."""
    sink = PrometheusSink(clock=Clock(), max_series=10)
    for index in range(5):
        add(sink, f"d{index}")
    for tick in range(100):
        for rank in range(1, 6):
            tags = {"rank": str(rank), "symbol": f"s{tick + rank}"}
            sink.add(SetSample("slowest", tags, {"ranking": 1.0}, tick, complete=RANKING))
        assert sink.series_count() == 10
    assert sink.evicted == 0
    text = sink.render()
    assert len([line for line in text.splitlines() if not line.startswith("#")]) == 10
    assert all(f'device="d{index}"' in text for index in range(5))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(0, 30), max_size=12)),
        max_size=30,
    ),
    st.integers(1, 20),
)
def test_the_count_matches_what_renders_whatever_sets_and_cap(
    steps: list[tuple[int, list[int]]], cap: int
) -> None:
    """Sets of any size against a small cap, with plain series in between: the count is
    what renders, and the cap holds."""
    clock = Clock()
    sink = PrometheusSink(clock=clock, max_series=cap, ttl=20.0)
    for tick, (plain, symbols) in enumerate(steps):
        clock.now += 1
        for index in range(plain):
            add(sink, f"d{tick}-{index}")
        for symbol in symbols:
            tags = {"symbol": f"s{symbol}"}
            sink.add(SetSample("slowest", tags, {"ranking": 1.0}, tick, complete=RANKING))
        if not symbols:
            sink.add(SetSample("slowest", {}, {}, tick, complete=RANKING))
        assert sink.series_count() <= cap
        if tick % 3 == 0:
            rendered = [line for line in sink.render().splitlines() if not line.startswith("#")]
            assert len(rendered) == sink.series_count()
    rendered = [line for line in sink.render().splitlines() if not line.startswith("#")]
    assert len(rendered) == sink.series_count() <= cap
