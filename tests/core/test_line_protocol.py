from __future__ import annotations

import math

import pytest

from custom_components.fleet_metrics.core.exporters.line_protocol import (
    LineEncoder,
    encode_sample,
    encode_samples,
)
from custom_components.fleet_metrics.core.sample import Histogram, Sample

from .lp_reference_parser import parse_line

T = 1_700_000_000_123_456_789


def test_basic_line_sorted_tags_and_types() -> None:
    sample = Sample(
        "opendtu_inverter",
        {"serial": "114182345678", "dtu": "roof"},
        {"power_watts": 70.1, "radio_tx_requests": 1832, "reachable": True, "fw": "v26"},
        T,
    )
    assert encode_sample(sample) == (
        "opendtu_inverter,dtu=roof,serial=114182345678 "
        'power_watts=70.1,radio_tx_requests=1832i,reachable=true,fw="v26" '
        "1700000000123456789"
    )


@pytest.mark.parametrize(
    ("measurement", "tags", "fields"),
    [
        ("with space", {"tag key": "tag value"}, {"field key": 1.5}),
        ("com,ma", {"a,b": "c,d"}, {"e,f": 2}),
        ("equals=in=measurement", {"k=ey": "v=al"}, {"f=ld": 3.25}),
        ('quote"d', {"q": 'say "hi"'}, {"text": 'say "hi" \\ back\\slash'}),
        ("back\\slash", {"path": "C:\\temp\\"}, {"x\\y": "ends with backslash\\"}),
        ("unicode", {"name": "Büro 4 – süd ☀"}, {"Temperatur°C": 11.4, "label": "Grüße"}),
        ("ints", {}, {"big": 2**62, "neg": -5, "zero": 0}),
        ("floats", {}, {"tiny": 1e-12, "huge": 1.5e300, "neg": -0.25, "whole": 3.0}),
        ("bools", {}, {"t": True, "f": False}),
    ],
)
def test_round_trip_through_independent_parser(
    measurement: str, tags: dict[str, str], fields: dict[str, object]
) -> None:
    line = encode_sample(Sample(measurement, tags, fields, T))  # type: ignore[arg-type]
    assert line is not None
    assert "\n" not in line, "a raw newline would split the line"
    parsed = parse_line(line)
    assert parsed.measurement == measurement
    assert parsed.tags == tags
    assert parsed.fields == fields
    for key, value in fields.items():
        assert type(parsed.fields[key]) is type(value), key
    assert parsed.timestamp == T


def test_newlines_never_split_a_line() -> None:
    line = encode_sample(Sample("new\nline", {"t": "a\nb\rc"}, {"s": "one\ntwo"}, T))
    assert line is not None
    assert "\n" not in line and "\r" not in line
    parsed = parse_line(line)
    assert parsed.measurement == "new line"
    assert parsed.tags == {"t": "a b c"}
    assert parsed.fields == {"s": "one\\ntwo"}


def test_empty_tag_values_are_dropped() -> None:
    line = encode_sample(Sample("m", {"a": "", "b": "x", "": "y"}, {"v": 1}, T))
    assert line == "m,b=x v=1i 1700000000123456789"


def test_non_finite_floats_are_left_out_and_an_empty_line_is_none() -> None:
    line = encode_sample(Sample("m", {}, {"nan": math.nan, "inf": math.inf, "ok": 1.0}, T))
    assert line == "m ok=1.0 1700000000123456789"
    assert encode_sample(Sample("m", {}, {"nan": math.nan, "ninf": -math.inf}, T)) is None


def test_tags_sorted_by_key() -> None:
    line = encode_sample(Sample("m", {"z": "1", "a": "2", "M": "3"}, {"v": 1}, T))
    assert line is not None
    assert line.startswith("m,M=3,a=2,z=1 ")


def test_encode_samples_skips_empty_and_ends_each_line() -> None:
    text = encode_samples(
        [
            Sample("a", {}, {"v": 1}, T),
            Sample("b", {}, {"v": math.nan}, T),
            Sample("c", {}, {"v": 2}, T),
        ]
    )
    assert text == "a v=1i 1700000000123456789\nc v=2i 1700000000123456789\n"


def test_histogram_becomes_bucket_sum_and_count_fields() -> None:
    histogram = Histogram(((0.1, 3), (math.inf, 10)), sum=4.5, count=10)
    line = encode_sample(Sample("lat", {"symbol": "AAPL"}, {}, T, histogram=histogram))
    assert line is not None
    parsed = parse_line(line)
    assert parsed.fields == {"le_0.1": 3, "le_inf": 10, "sum": 4.5, "count": 10}


def test_remembered_tag_sets_and_field_names_stay_correct_past_the_limit() -> None:
    samples = [
        Sample("m", {"dev ice": f"a,{index}", "z": "1"}, {"v=1": float(index), "n": index}, 5)
        for index in range(5)
    ]
    small = LineEncoder(limit=2)
    first = [small.encode(sample) for sample in samples]
    again = [small.encode(sample) for sample in reversed(samples)]
    assert again == first[::-1]
    assert first[3] == r"m,dev\ ice=a\,3,z=1 v\=1=3.0,n=3i 5"
