from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.exporters.line_protocol import (
    LineEncoder,
    encode_sample,
    encode_samples,
)
from custom_components.fleet_metrics.core.sample import FieldValue, Histogram, Sample

from .lp_reference_parser import expected_point, parse_line

T = 1_700_000_000_123_456_789

# Every character class the rules name, plus anything Unicode has (surrogates included).
ODD_CHARACTERS = "\\ ,=\"#\n\r\t\x00\x01\x1f\x7f'é☀\u2028\ud800"
name_chars = st.one_of(
    st.sampled_from(ODD_CHARACTERS), st.characters(exclude_categories=()), st.just("a")
)
names = st.one_of(
    st.sampled_from(["time", "#", "\\", "", " ", "#comment", "a\\", "a\\,b"]),
    st.text(name_chars, max_size=10),
)
field_values: st.SearchStrategy[FieldValue] = st.one_of(
    st.floats(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(name_chars, max_size=12),
)


@st.composite
def samples(draw: st.DrawFn, time_ns: int = T) -> Sample:
    fields = draw(st.dictionaries(names, field_values, max_size=5))
    counters = frozenset(key for key in fields if draw(st.booleans()))
    return Sample(
        draw(names),
        draw(st.dictionaries(names, names, max_size=4)),
        fields,
        time_ns,
        counters,
    )


def check_against_rules(sample: Sample, line: str | None) -> None:
    expected = expected_point(
        sample.measurement, dict(sample.tags), dict(sample.fields), sample.counters
    )
    if expected is None:
        assert line is None
        return
    assert line is not None
    assert "\n" not in line and "\r" not in line, "a raw newline would split the line"
    parsed = parse_line(line)
    assert (parsed.measurement, parsed.tags, parsed.fields) == expected
    for key, value in expected[2].items():
        assert type(parsed.fields[key]) is type(value), key
    assert parsed.timestamp == sample.time_ns


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples())
def test_any_sample_reads_back_as_the_documented_rules_say(sample: Sample) -> None:
    check_against_rules(sample, LineEncoder().encode(sample))


@settings(max_examples=120, deadline=None)
@given(st.lists(samples(), min_size=1, max_size=12))
def test_remembered_text_never_changes_a_line(batch: list[Sample]) -> None:
    """A tiny cache that starts over all the time writes what a fresh encoder writes."""
    small = LineEncoder(limit=2)
    for _ in range(2):
        for sample in batch:
            line = small.encode(sample)
            assert line == LineEncoder().encode(sample)
            check_against_rules(sample, line)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-(10**15), 10**15), st.floats(-1e15, 1e15)), min_size=1))
def test_a_number_field_keeps_its_type_whatever_python_type_arrives(
    values: list[float],
) -> None:
    gauge = {parse_line(encode_sample(Sample("m", {}, {"v": v}, T)) or "").fields["v"].__class__
             for v in values}  # fmt: skip
    assert gauge == {float}
    for value in values:
        line = encode_sample(Sample("m", {}, {"n": value}, T, frozenset({"n"})))
        assert line is not None
        assert line.endswith("i " + str(T)) == isinstance(value, int)


def test_basic_line_sorted_tags_and_types() -> None:
    sample = Sample(
        "opendtu_inverter",
        {"serial": "114182345678", "dtu": "roof"},
        {"power_watts": 70.1, "radio_tx_requests": 1832, "reachable": True, "fw": "v26", "n": 3},
        T,
        frozenset({"radio_tx_requests"}),
    )
    assert encode_sample(sample) == (
        "opendtu_inverter,dtu=roof,serial=114182345678 "
        'power_watts=70.1,radio_tx_requests=1832i,reachable=true,fw="v26",n=3.0 '
        "1700000000123456789"
    )


def test_21_then_21_5_is_float_both_times() -> None:
    assert encode_sample(Sample("m", {}, {"t": 21}, T)) == f"m t=21.0 {T}"
    assert encode_sample(Sample("m", {}, {"t": 21.5}, T)) == f"m t=21.5 {T}"


@pytest.mark.parametrize(
    ("sample", "line"),
    [
        # InfluxDB 1.x answers "invalid tag format" to any spelling of a trailing backslash.
        (Sample("m", {"device": "kitchen\\"}, {"v": 1.0}, T), r"m,device=kitchen/ v=1.0"),
        (Sample("m", {"d": "\\"}, {"v": 1.0}, T), r"m,d=/ v=1.0"),
        (Sample("a\\b", {"k\\": "x\\,y"}, {"f\\": 1.0}, T), r"a/b,k/=x/\,y f/=1.0"),
        (Sample("m", {"d": "a\x00b\x1f"}, {"v": 1.0}, T), r"m,d=a\ b\  v=1.0"),
        (
            Sample("new\nline", {"t": "a\nb\rc"}, {"s": "one\ntwo"}, T),
            r'new\ line,t=a\ b\ c s="one\ntwo"',
        ),
        # "#..." at the start of a line is a comment: 204 and nothing stored.
        (Sample("#m", {}, {"v": 1.0}, T), "_#m v=1.0"),
        (Sample("m#", {"#": "#"}, {"#": 1.0}, T), "m#,#=# #=1.0"),
        (Sample("m", {"time": "x", "k": "time"}, {"time": 1.0}, T), "m,k=time,time_=x time_=1.0"),
        (Sample("m", {"a": "", "b": "x", "": "y"}, {"v": 1.0}, T), "m,b=x v=1.0"),
        # Two keys that the rules make equal: the first one in the sample wins.
        (Sample("m", {"a\n": "1", "a ": "2"}, {"f\t": 1.0, "f ": 2.0}, T), r"m,a\ =1 f\ =1.0"),
        (Sample("m", {}, {"s": 'q"\\'}, T), r'm s="q\"\\"'),
        (Sample("m", {}, {"s": "bad \ud800 half"}, T), 'm s="bad \ufffd half"'),
    ],
)
def test_what_line_protocol_cannot_carry_is_replaced(sample: Sample, line: str) -> None:
    assert encode_sample(sample) == f"{line} {T}"


def test_an_empty_measurement_or_an_oversized_series_key_skips_the_sample() -> None:
    encoder = LineEncoder()
    assert encoder.encode(Sample("", {}, {"v": 1.0}, T)) is None
    assert encoder.encode(Sample("\\", {}, {"v": 1.0}, T)) is not None
    assert encoder.encode(Sample("m", {"k": "x" * 65_530}, {"v": 1.0}, T)) is None
    assert encoder.skipped == 2


def test_field_keys_beyond_the_key_limit_are_left_out() -> None:
    encoder = LineEncoder()
    head = "m,k=" + "x" * 60_000  # 60,004 bytes: 5,527 left for a field key
    line = encoder.encode(Sample("m", {"k": "x" * 60_000}, {"f" * 6_000: 1.0, "ok": 2.0}, T))
    assert line == f"{head} ok=2.0 {T}"
    fits = "é" * 2_763  # 5,526 bytes
    line = encoder.encode(Sample("m", {"k": "x" * 60_000}, {fits: 1.0}, T))
    assert line == f"{head} {fits}=1.0 {T}"
    assert encoder.encode(Sample("m", {"k": "x" * 60_000}, {fits + "é": 1.0}, T)) is None


def test_strings_are_cut_at_the_string_limit_on_a_character_boundary() -> None:
    line = encode_sample(Sample("m", {}, {"s": "é" * 40_000}, T))
    assert line is not None
    value = parse_line(line).fields["s"]
    assert isinstance(value, str)
    assert value == "é" * 32_767 and len(value.encode()) == 65_534


def test_out_of_range_numbers_are_left_out() -> None:
    line = encode_sample(
        Sample("m", {}, {"big": 2**63, "huge": 10**400, "ok": 2**63 - 1}, T, frozenset({"big"}))
    )
    assert line == f"m ok={float(2**63 - 1)!r} {T}"
    line = encode_sample(Sample("m", {}, {"c": 2**63 - 1, "d": -(2**63)}, T, frozenset("cd")))
    assert line == f"m c={2**63 - 1}i,d={-(2**63)}i {T}"


def test_a_value_of_no_field_type_is_left_out() -> None:
    sample = Sample("m", {}, {"bad": None, "ok": 1.0}, T)  # type: ignore[dict-item]
    assert encode_sample(sample) == f"m ok=1.0 {T}"


def test_non_finite_floats_are_left_out_and_an_empty_line_is_none() -> None:
    line = encode_sample(Sample("m", {}, {"nan": math.nan, "inf": math.inf, "ok": 1.0}, T))
    assert line == "m ok=1.0 1700000000123456789"
    assert encode_sample(Sample("m", {}, {"nan": math.nan, "ninf": -math.inf}, T)) is None


def test_tags_sorted_by_key() -> None:
    line = encode_sample(Sample("m", {"z": "1", "a": "2", "M": "3"}, {"v": 1.0}, T))
    assert line is not None
    assert line.startswith("m,M=3,a=2,z=1 ")


def test_encode_samples_skips_empty_and_ends_each_line() -> None:
    text = encode_samples(
        [
            Sample("a", {}, {"v": 1}, T),
            Sample("b", {}, {"v": math.nan}, T),
            Sample("c", {}, {"v": 2}, T, frozenset({"v"})),
        ]
    )
    assert text == "a v=1.0 1700000000123456789\nc v=2i 1700000000123456789\n"


def test_histogram_counts_are_integers_and_sum_a_float() -> None:
    histogram = Histogram(((0.1, 3), (math.inf, 10)), sum=4, count=10)
    line = encode_sample(Sample("lat", {"symbol": "AAPL"}, {}, T, histogram=histogram))
    assert line is not None
    parsed = parse_line(line)
    assert parsed.fields == {"le_0.1": 3, "le_inf": 10, "sum": 4.0, "count": 10}
    assert [type(v) for v in parsed.fields.values()] == [int, int, float, int]


def test_remembered_tag_sets_and_field_names_stay_correct_past_the_limit() -> None:
    samples = [
        Sample(
            "m",
            {"dev ice": f"a,{index}", "z": "1"},
            {"v=1": float(index), "n": index},
            5,
            frozenset({"n"}),
        )
        for index in range(5)
    ]
    small = LineEncoder(limit=2)
    first = [small.encode(sample) for sample in samples]
    again = [small.encode(sample) for sample in reversed(samples)]
    assert again == first[::-1]
    assert first[3] == r"m,dev\ ice=a\,3,z=1 v\=1=3.0,n=3i 5"
