from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.exporters.prometheus import (
    PrometheusSink,
    sanitize_label_name,
    sanitize_metric_name,
)
from custom_components.fleet_metrics.core.sample import Histogram, Sample


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def render(sink: PrometheusSink) -> str:
    """The sink's own renderer, held byte for byte to prometheus_client's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(sink)
    expected = generate_latest(registry).decode()
    text = sink.render()
    assert text == expected
    return text


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("opendtu_inverter_power_watts", "opendtu_inverter_power_watts"),
        ("Power DC", "power_dc"),
        ("DS18B20-1_temperature", "ds18b20_1_temperature"),
        ("1st", "_1st"),
        ("node:cpu", "node_cpu"),
        ("a:b", "ab"),  # "b" is an abbreviated unit (bytes) to promtool
        ("Temperatur°C", "temperatur_c"),
        ("", "value"),
        ("tasmota_sensor_total", "tasmota_sensor_total_value"),
        ("x_count", "x_count_value"),
        ("x_sum", "x_sum_value"),
        ("x_bucket", "x_bucket_value"),
        ("uptime_minutes", "uptimeminutes"),
        ("size_kilobytes_free", "sizekilobytes_free"),
        ("duration_ms", "durationms"),
        ("speed_m_s", "speedms"),
        ("pump_gauge_level", "pumpgauge_level"),
        ("minutes_left", "minutesleft"),
        ("fahrenheit", "fahrenheitvalue"),
        ("millicelsius", "millicelsiusvalue"),
        ("temperature_celsius", "temperature_celsius"),
    ],
)
def test_gauge_names_are_sanitised(raw: str, clean: str) -> None:
    assert sanitize_metric_name(raw) == clean
    assert sanitize_metric_name(raw, "gauge") == clean


@pytest.mark.parametrize(
    ("raw", "kind", "clean"),
    [
        ("requests_total", "counter", "requests_total"),
        ("requests_count", "counter", "requests_count"),
        ("latency_count", "histogram", "latency_count_value"),
        ("latency_seconds", "histogram", "latency_seconds"),
        ("latency_total", "histogram", "latency_total_value"),
    ],
)
def test_only_counters_keep_total_and_histogram_endings(raw: str, kind: str, clean: str) -> None:
    assert sanitize_metric_name(raw, kind) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("device id", "device_id"),
        ("a:b", "a_b"),
        ("__x", "x"),
        ("9", "_9"),
        ("fooBar", "foobar"),
        ("le", "tag_le"),
        ("quantile", "tag_quantile"),
        ("", "label"),
    ],
)
def test_label_names_are_sanitised(raw: str, clean: str) -> None:
    assert sanitize_label_name(raw) == clean


def test_gauges_counters_help_and_labels_pass_promtool() -> None:
    sink = PrometheusSink(
        help_texts={"opendtu_inverter_power_watts": "AC output power."}, clock=Clock()
    )
    sink.add(
        Sample(
            "opendtu_inverter",
            {"serial": "114182345678", "inverter": 'Büro "4"\\süd', "string name": "x"},
            {"power_watts": 70.1, "radio_tx_requests": 1832, "reachable": True, "fw": "text"},
            counters=frozenset({"radio_tx_requests"}),
        )
    )
    text = render(sink)
    promtool_check(text)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    power = families["opendtu_inverter_power_watts"]
    assert power.type == "gauge"
    assert power.documentation == "AC output power."
    assert power.samples[0].value == pytest.approx(70.1)
    assert power.samples[0].labels == {
        "serial": "114182345678",
        "inverter": 'Büro "4"\\süd',
        "string_name": "x",
    }
    requests = families["opendtu_inverter_radio_tx_requests"]
    assert requests.type == "counter"
    assert requests.samples[0].name == "opendtu_inverter_radio_tx_requests_total"
    assert families["opendtu_inverter_reachable"].samples[0].value == 1.0
    assert "opendtu_inverter_fw" not in families, "strings are not sample values"


def test_last_value_wins_per_series_and_series_are_kept_apart() -> None:
    sink = PrometheusSink(clock=Clock())
    sink.add(Sample("m", {"dev": "a"}, {"v": 1.0}))
    sink.add(Sample("m", {"dev": "b"}, {"v": 2.0}))
    sink.add(Sample("m", {"dev": "a"}, {"v": 3.0}))
    values = {
        s.labels["dev"]: s.value
        for f in text_string_to_metric_families(render(sink))
        for s in f.samples
    }
    assert values == {"a": 3.0, "b": 2.0}
    assert sink.series_count() == 2


def test_series_expire_after_the_ttl() -> None:
    clock = Clock()
    sink = PrometheusSink(ttl=60, clock=clock)
    sink.add(Sample("m", {"dev": "old"}, {"v": 1.0}))
    clock.now += 30
    sink.add(Sample("m", {"dev": "new"}, {"v": 2.0}))
    clock.now += 45  # old is 75 s old, new 45 s
    text = render(sink)
    assert 'dev="new"' in text
    assert 'dev="old"' not in text
    clock.now += 60
    assert render(sink) == ""
    assert sink.series_count() == 0


def test_empty_tag_values_are_not_labels() -> None:
    sink = PrometheusSink(clock=Clock())
    sink.add(Sample("m", {"dev": "a", "name": ""}, {"v": 1.0}))
    (family,) = text_string_to_metric_families(render(sink))
    assert family.samples[0].labels == {"dev": "a"}


def test_histogram_samples_render_as_a_histogram_family_that_promtool_accepts() -> None:
    sink = PrometheusSink(clock=Clock())
    histogram = Histogram(((0.1, 3), (0.5, 7), (1.0, 9), (math.inf, 10)), sum=4.2, count=10)
    sink.add(
        Sample(
            "tickrmeter_stock_update_latency_seconds",
            {"symbol": "AAPL"},
            {},
            histogram=histogram,
        )
    )
    text = render(sink)
    promtool_check(text)
    (family,) = text_string_to_metric_families(text)
    assert family.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 3, "0.5": 7, "1.0": 9, "+Inf": 10}
    by_name = {s.name: s.value for s in family.samples}
    assert by_name["tickrmeter_stock_update_latency_seconds_count"] == 10
    assert by_name["tickrmeter_stock_update_latency_seconds_sum"] == pytest.approx(4.2)


def test_render_matches_prometheus_client_on_awkward_values_and_labels() -> None:
    sink = PrometheusSink(help_texts={"m_v": "Help with \\ and\nnewline."}, clock=Clock())
    values = [0.0, -1.5, 1e7, 123456789.0, 1e-9, 2**53, math.inf, -math.inf, math.nan, True]
    for index, value in enumerate(values):
        sink.add(Sample("m", {"i": str(index), "odd": 'a"b\\c\nd'}, {"v": value}))
    sink.add(Sample("m", {}, {"v": 5, "c": 7}, counters=frozenset({"c"})))
    latency = Histogram(((0.005, 1), (2.5, 3), (math.inf, 4)), sum=3.25, count=4)
    sink.add(Sample("h", {}, {}, histogram=latency))
    sink.add(Sample("h", {"zone": "b", "area": "a"}, {}, histogram=latency))
    text = render(sink)
    promtool_check(text)
    assert 'm_v{i="2",odd="a\\"b\\\\c\\nd"} 1e+07' in text
    assert 'h_bucket{area="a",le="0.005",zone="b"} 1.0' in text


def test_tags_that_give_one_label_keep_the_first_tag_name() -> None:
    sink = PrometheusSink(clock=Clock())
    sink.add(Sample("m", {"a_b": "underscore", "a b": "space", "le": "x"}, {"v": 1.0}))
    sink.add(Sample("m", {"A_B": "upper", "z": "1"}, {"v": 2.0}))
    text = render(sink)
    promtool_check(text)
    assert [s.labels for f in text_string_to_metric_families(text) for s in f.samples] == [
        {"a_b": "space", "tag_le": "x"},
        {"a_b": "upper", "z": "1"},
    ]


def test_gauge_named_like_a_counter_is_renamed_and_passes_promtool() -> None:
    sink = PrometheusSink(clock=Clock())
    sink.add(Sample("tasmota_sensor", {"sensor": "SML"}, {"Total": 5.0, "Uptime_h": 3.0}))
    sink.add(Sample("x", {}, {"requests_total": 7}, counters=frozenset({"requests_total"})))
    text = render(sink)
    promtool_check(text)
    names = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert names == {
        "tasmota_sensor_total_value": "gauge",
        "tasmota_sensor_uptimeh": "gauge",
        "x_requests_total": "counter",
    }


def test_a_declared_name_is_written_verbatim_and_an_undeclared_one_is_still_linted() -> None:
    sink = PrometheusSink(ttl=60.0, clock=Clock())
    sink.add_help(
        {
            "node_memory_MemTotal_bytes": "Memory information field MemTotal_bytes.",
            "node_cpu_seconds": "Seconds the CPUs spent in each mode.",
        }
    )
    sink.add(Sample("node_memory", {"host": "h"}, {"MemTotal_bytes": 8.0}, 1))
    sink.add(Sample("node_memory", {"host": "h"}, {"MemFree_bytes": 2.0}, 1))  # not declared
    sink.add(
        Sample("node_cpu", {"host": "h", "mode": "idle"}, {"seconds": 5.0}, 1,
               counters=frozenset({"seconds"}))
    )  # fmt: skip
    text = render(sink)
    assert "# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n" in text
    assert 'node_memory_MemTotal_bytes{host="h"} 8.0\n' in text
    assert 'node_memory_memfree_bytes{host="h"} 2.0\n' in text  # rule 1 still applies
    assert "node_memory_MemFree_bytes" not in text
    assert 'node_cpu_seconds_total{host="h",mode="idle"} 5.0\n' in text


@pytest.mark.parametrize("declared", ["bad name", "1st_metric", "a-b", ""])
def test_a_declared_name_that_is_no_prometheus_name_is_still_sanitized(declared: str) -> None:
    sink = PrometheusSink(ttl=60.0, clock=Clock())
    sink.add_help({declared: "declared, but not a valid name"})
    sink.add(Sample(declared, {}, {"": 1.0} if declared else {"value": 1.0}, 1))
    text = render(sink)
    promtool_check(text)
    for family in text_string_to_metric_families(text):
        assert family.name == sanitize_metric_name(family.name, "gauge")


def test_samples_for_the_other_sink_are_skipped() -> None:
    sink = PrometheusSink(ttl=60.0, clock=Clock())
    sink.add(Sample("lp_only", {}, {"v": 1.0}, 1, sink="line_protocol"))
    sink.add(Sample("prom_only", {}, {"v": 1.0}, 1, sink="prometheus"))
    sink.add(Sample("both", {}, {"v": 1.0}, 1))
    text = render(sink)
    assert "lp_only" not in text and "prom_only_v" in text and "both_v" in text
