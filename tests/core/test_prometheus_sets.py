"""Families sent as complete sets (``Sample.complete``): the sink holds exactly the newest set.

A top-N ranking or a count by version changes its label sets from tick to tick; without
sets the series that left would stay on ``/metrics`` for the whole TTL.
"""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.exporters.prometheus import PrometheusSink
from custom_components.fleet_metrics.core.sample import CompleteSet, Sample, SetSample
from tests.core.test_prometheus import Clock, render

RANKING = CompleteSet(frozenset({"ranking"}))
PER_HOST = CompleteSet(frozenset({"up"}), scope=("host",))


def ranking(sink: PrometheusSink, time_ns: int, *symbols: str) -> None:
    """One tick's ranking, rank 1 first; no symbols: the empty set."""
    for rank, symbol in enumerate(symbols, start=1):
        tags = {"rank": str(rank), "symbol": symbol}
        sink.add(SetSample("slowest", tags, {"ranking": float(rank)}, time_ns, complete=RANKING))
    if not symbols:
        sink.add(SetSample("slowest", {}, {}, time_ns, complete=RANKING))


def series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Labels -> value of every sample named ``name`` in an exposition."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def exposed(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def test_a_new_set_replaces_the_old_one_at_once() -> None:
    sink = PrometheusSink(clock=Clock())
    ranking(sink, 1, "AAPL", "BTC", "ETH")
    ranking(sink, 2, "SOL", "AAPL", "BTC")
    text = render(sink)
    assert series(text, "slowest_ranking") == {
        (("rank", "1"), ("symbol", "SOL")): 1.0,
        (("rank", "2"), ("symbol", "AAPL")): 2.0,
        (("rank", "3"), ("symbol", "BTC")): 3.0,
    }
    assert sink.series_count() == exposed(text) == 3


def test_a_shorter_set_and_the_empty_set() -> None:
    sink = PrometheusSink(clock=Clock())
    sink.add(Sample("fleet", {}, {"online": 3}, 1))  # no set: left alone throughout
    ranking(sink, 1, "AAPL", "BTC", "ETH")
    ranking(sink, 2, "BTC")
    assert series(render(sink), "slowest_ranking") == {(("rank", "1"), ("symbol", "BTC")): 1.0}
    ranking(sink, 3)
    text = render(sink)
    assert "slowest_ranking" not in text
    assert series(text, "fleet_online") == {(): 3.0}
    assert sink.series_count() == 1
    ranking(sink, 4)  # an empty set of a family the sink no longer has
    ranking(sink, 5, "ETH")
    assert series(render(sink), "slowest_ranking") == {(("rank", "1"), ("symbol", "ETH")): 1.0}


def test_one_set_may_come_in_many_samples_and_names_only_its_own_fields() -> None:
    """Samples of one tick (one ``time_ns``) add up; a field the set does not name, in the
    same samples, keeps every series it had."""
    sink = PrometheusSink(clock=Clock())
    by_firmware = CompleteSet(frozenset({"by_firmware"}))
    for tick, versions in ((1, ["62p", "63"]), (2, ["70"])):
        for version in versions:
            fields = {"by_firmware": 1, "seen": 1}
            sink.add(
                SetSample("devices", {"firmware": version}, fields, tick, complete=by_firmware)
            )
    text = render(sink)
    assert series(text, "devices_by_firmware") == {(("firmware", "70"),): 1.0}
    assert set(series(text, "devices_seen")) == {(("firmware", v),) for v in ("62p", "63", "70")}
    assert sink.series_count() == exposed(text) == 4


def test_each_scope_holds_its_own_set() -> None:
    sink = PrometheusSink(clock=Clock())

    def host(name: str, time_ns: int, *guests: str) -> None:
        for guest in guests:
            tags = {"host": name, "guest": guest}
            sink.add(SetSample("guest", tags, {"up": 1}, time_ns, complete=PER_HOST))
        if not guests:
            sink.add(SetSample("guest", {"host": name}, {}, time_ns, complete=PER_HOST))

    host("a", 1, "100", "101")
    host("b", 1, "200")
    host("a", 2, "102")  # b sends nothing this tick: its set stands
    assert set(series(render(sink), "guest_up")) == {
        (("guest", "102"), ("host", "a")),
        (("guest", "200"), ("host", "b")),
    }
    host("b", 3)
    assert set(series(render(sink), "guest_up")) == {(("guest", "102"), ("host", "a"))}
    assert sink.series_count() == 1


def test_sets_still_expire_after_the_ttl_and_their_bookkeeping_goes_with_them() -> None:
    clock = Clock()
    sink = PrometheusSink(ttl=60.0, clock=clock)
    ranking(sink, 1, "AAPL", "BTC")
    clock.now += 61
    assert render(sink) == ""
    assert sink.series_count() == 0
    ranking(sink, 1, "ETH")  # the same tick as a set the sink has forgotten: a set anew
    assert series(render(sink), "slowest_ranking") == {(("rank", "1"), ("symbol", "ETH")): 1.0}


def test_kept_sets_stay_bounded_by_the_live_series() -> None:
    """Scopes whose series expired are forgotten at the next scrape, so that scope values
    from the wire cannot pile up in the sink's bookkeeping."""
    clock = Clock()
    sink = PrometheusSink(ttl=10.0, clock=clock)
    for index in range(1000):
        clock.now += 1
        tags = {"host": f"h{index}", "guest": "1"}
        sink.add(SetSample("guest", tags, {"up": 1}, index, complete=PER_HOST))
        if index % 50 == 0:
            sink.render()
    sink.render()
    family = sink._families["guest_up"]  # the bookkeeping under test; no public view of it
    assert len(family.sets) <= len(family.series) <= 11


# A tick: per scope (host), the set it sends (None: the scope sends nothing this tick), as
# symbol -> value; the samples of all scopes go in an interleaved order.
SYMBOLS = st.sampled_from(["AAPL", "BTC", "ETH", "SOL", "X", "é"])
HOSTS = ["a", "b", "c"]
TICK = st.fixed_dictionaries(
    {host: st.none() | st.dictionaries(SYMBOLS, st.integers(0, 9), max_size=4) for host in HOSTS}
)


@settings(max_examples=200, deadline=None)
@given(st.lists(TICK, max_size=8), st.randoms(use_true_random=False), st.booleans())
def test_after_any_sequence_of_sets_each_scope_holds_exactly_its_last(
    ticks: list[dict[str, dict[str, int] | None]], random: Random, scrape_between: bool
) -> None:
    sink = PrometheusSink(clock=Clock())
    expected: dict[tuple[tuple[str, str], ...], float] = {}
    for time_ns, tick in enumerate(ticks, start=1):
        samples = [Sample("other", {"host": "a"}, {"value": time_ns}, time_ns)]
        for host, members in tick.items():
            if members is None:
                continue
            expected = {key: value for key, value in expected.items() if ("host", host) not in key}
            for symbol, value in members.items():
                expected[(("host", host), ("symbol", symbol))] = float(value)
                tags = {"host": host, "symbol": symbol}
                samples.append(SetSample("guest", tags, {"up": value}, time_ns, complete=PER_HOST))
            samples.append(SetSample("guest", {"host": host}, {}, time_ns, complete=PER_HOST))
        random.shuffle(samples)
        for sample in samples:
            sink.add(sample)
        if scrape_between:
            assert series(render(sink), "guest_up") == expected
    text = render(sink)
    assert series(text, "guest_up") == expected
    assert sink.series_count() == exposed(text) == len(expected) + (1 if ticks else 0)
