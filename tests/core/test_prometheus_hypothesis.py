"""The Prometheus encoder on arbitrary names, tags and values.

For any measurement, tag keys and values, field names and values: ``render()`` writes exactly
the bytes ``generate_latest`` writes over the same sink, and ``promtool check metrics`` (lint
included) accepts the result. promtool runs once over everything the examples produced, one
sink holding them all, which also puts every example's names next to every other's.
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.exporters.prometheus import (
    PrometheusSink,
    sanitize_label_name,
    sanitize_metric_name,
)
from custom_components.fleet_metrics.core.sample import Histogram, Sample
from tests.core.test_prometheus import Clock, promtool_check

# Characters that trouble exposition formats, then any code point at all (surrogates too).
AWKWARD = '\x00\n\r\t "\\_:{}=,#.-/\u2028\ufeffé°😀'
CHARS = st.one_of(st.sampled_from(AWKWARD), st.characters(exclude_categories=()))
TEXT = st.text(CHARS, max_size=24)
# Words promtool's lint cares about, glued with separators, so that they actually occur.
WORDS = st.sampled_from(
    ["total", "count", "sum", "bucket", "gauge", "counter", "ms", "s", "kb", "minutes",
     "kilobytes", "fahrenheit", "celsius", "le", "quantile", "fooBar", "x", "9", ""]
)  # fmt: skip
NAME = st.one_of(TEXT, st.lists(WORDS, max_size=5).map("_".join), WORDS)
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    TEXT,
)


def _histogram(bounds: list[float], counts: list[int], total: float) -> Histogram:
    uppers = [*sorted(set(bounds)), math.inf]
    cumulative = sorted(counts)[: len(uppers)]
    return Histogram(tuple(zip(uppers, cumulative, strict=True)), total, cumulative[-1])


HISTOGRAM = st.builds(
    _histogram,
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3),
    st.lists(st.integers(0, 1000), min_size=4, max_size=4),
    st.floats(0, 1e9),
)


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    fields = draw(st.dictionaries(NAME, VALUE, max_size=4))
    counters = draw(st.sets(st.sampled_from(sorted(fields)))) if fields else set()
    return Sample(
        draw(NAME),
        draw(st.dictionaries(NAME, TEXT, max_size=4)),
        fields,
        counters=frozenset(counters),
        histogram=draw(st.none() | HISTOGRAM),
    )


def test_render_equals_generate_latest_and_promtool_accepts_it() -> None:
    everything = PrometheusSink(clock=Clock())

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(samples(), min_size=1, max_size=4))
    def one_sink(batch: list[Sample]) -> None:
        sink = PrometheusSink(clock=Clock())
        for sample in batch:
            sink.add(sample)
            everything.add(sample)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(sink)
        assert sink.render().encode() == generate_latest(registry)
        for family in text_string_to_metric_families(sink.render()):
            if family.type != "counter":
                assert not family.name.endswith("_total")

    one_sink()
    text = everything.render()
    assert text.count("# TYPE") > 100, "the examples should produce many families"
    promtool_check(text)


@settings(max_examples=500, deadline=None)
@given(NAME)
def test_label_names_are_valid_and_never_reserved(name: str) -> None:
    label = sanitize_label_name(name)
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", label)
    assert not label.startswith("__")
    assert label not in ("le", "quantile")


def test_metric_names_are_valid_stable_and_pass_promtool_together() -> None:
    """Each name is valid, sanitising it again changes nothing, only a counter may end in
    ``_total``; then all of them, as gauge, counter or histogram, go to promtool in one file."""
    names: set[tuple[str, str]] = set()

    @settings(max_examples=1000, deadline=None)
    @given(NAME, st.sampled_from(["gauge", "counter", "histogram"]))
    def collect(name: str, kind: str) -> None:
        clean = sanitize_metric_name(name, kind)
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", clean)
        assert sanitize_metric_name(clean, kind) == clean
        if kind != "counter":
            assert not clean.endswith(("_total", "_count", "_sum", "_bucket"))
        names.add((clean, kind))

    collect()
    sink = PrometheusSink(clock=Clock())
    histogram = Histogram(((1.0, 1), (math.inf, 2)), 3.0, 2)
    seen: set[str] = set()
    for name, kind in sorted(names):
        if name in seen:
            continue  # one family per name, as the sink keeps it
        seen.add(name)
        if kind == "histogram":
            sink.add(Sample(name, {}, {}, histogram=histogram))
        else:
            counters = frozenset({""} if kind == "counter" else ())
            sink.add(Sample(name, {}, {"": 1.0}, counters=counters))
    assert len(seen) > 200
    promtool_check(sink.render())
