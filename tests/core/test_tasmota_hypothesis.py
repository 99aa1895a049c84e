"""The Tasmota tracker on hostile input: real fixtures mutated, arbitrary JSON, odd topics.

Whatever arrives, ``handle`` never raises; what it cannot use is counted in its ``Rejects``
(never as an ``exception``, which would mean a parser let something through); samples carry
only finite numbers and booleans; tags are short and printable; the tracker holds no more
than its caps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.rejects import Rejects
from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.tasmota.limits import MAX_NAME, Limits
from custom_components.fleet_metrics.core.sources.tasmota.topics import FullTopic
from custom_components.fleet_metrics.core.sources.tasmota.tracker import TasmotaTracker

FIXTURES = Path(__file__).parents[1] / "fixtures"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies shared by the parser tests ---------------------------------------------------

AWKWARD = '\x00\n\r\t "\\{}[]:,/+#%²\u2028\ufeffé😀'
TEXT = st.text(st.one_of(st.sampled_from(AWKWARD), st.characters()), max_size=12)
KEY = st.one_of(
    TEXT,
    st.sampled_from(["0", "1", "²", "١", "99", "AC", "DC", "INV", "v", "u", "d", "name"]),
    st.integers(MAX_NAME - 1, MAX_NAME + 300).map(lambda n: "K" * n),
)
NUMBER_TEXT = st.sampled_from(
    ["NaN", "nan", "Infinity", "-inf", "1e999", "-1e999", "1_000", "0x10", " 7 ", "²", "9" * 400]
)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 5e-324]),
    TEXT,
    NUMBER_TEXT,
    st.sampled_from(["ON", "OFF", "on", "Online", "Offline", "C", "F", "mmHg", "kWh", "MWh"]),
)
JSON = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEY, inner, max_size=5),
    max_leaves=25,
)


def deep(depth: int, leaf: Any = 1) -> Any:
    """``{"a": {"a": ... leaf}}``, ``depth`` objects deep."""
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document a value could be replaced, the root included."""
    out = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            out += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            out += paths(value, (*prefix, index))
    return out


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``document`` with the value at ``path`` replaced; unchanged when the path is gone."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict) and head in document:
        return {**document, head: replaced(document[head], rest, value)}
    if isinstance(document, list) and isinstance(head, int) and head < len(document):
        copy = list(document)
        copy[head] = replaced(copy[head], rest, value)
        return copy
    return document


@st.composite
def mutations(draw: st.DrawFn, document: Any) -> Any:
    """A real document with one to three places replaced: wrong types, deep nesting,
    strings posing as numbers, keys too long or unprintable."""
    places = paths(document)  # of the original: a deep replacement is never walked
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(places))
        value = draw(st.one_of(JSON, st.integers(2, 1000).map(deep)))
        document = replaced(document, path, value)
    if isinstance(document, dict) and draw(st.booleans()):
        document = {**document, draw(KEY): draw(JSON)}
    return document


def encoded(document: Any) -> bytes:
    """As JSON, the way a device might send it: big integers as digits, NaN as ``NaN``."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def fixture_documents(kind: str) -> list[tuple[str, Any]]:
    out = []
    for path in sorted((FIXTURES / kind).glob("*.json")):
        out.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
    return out


# --- checks -----------------------------------------------------------------------------------

LIMITS = Limits(devices=6, layouts=4, readings=5, fields=5)
COMMANDS = ["SENSOR", "STATE", "STATUS0", "STATUS8", "STATUS10", "STATUS11", "RESULT", "POWER",
            "POWER3", "POWER99", "LWT", "INFO1"]  # fmt: skip


def assert_clean(samples: list[Sample], tracker: TasmotaTracker) -> None:
    for sample in samples:
        for value in sample.fields.values():
            assert isinstance(value, bool | int | float), sample
            assert isinstance(value, bool) or math.isfinite(value), sample
        for value in sample.tags.values():
            assert len(value) <= MAX_NAME and value.isprintable(), sample
    assert tracker.rejects.by_kind["exception"] == 0
    assert len(tracker.devices) <= LIMITS.devices
    assert len(tracker.layouts) <= max(LIMITS.layouts, 2)
    assert len(tracker.by_mac) <= len(tracker.devices)
    for state in tracker.devices.values():
        assert len(state.readings) <= LIMITS.readings
        assert len(state.relays) <= 32
        for reading in state.readings.values():
            assert len(reading.fields) <= LIMITS.fields
        if state.device is not None:
            assert len(state.device.sensors) <= LIMITS.readings


def topic_for(name: str) -> list[str]:
    """Where a fixture of this name is published."""
    if name.startswith("discovery_config"):
        return ["tasmota/discovery/2CF432CC2FC5/config"]
    if name.startswith("discovery_sensors"):
        return ["tasmota/discovery/2CF432CC2FC5/sensors"]
    if name.startswith(("tele_state", "stat_state")):
        return ["tele/dev/STATE", "stat/dev/STATUS11"]
    if name.startswith("stat_status0"):
        return ["stat/dev/STATUS0"]
    if name.startswith("stat_result"):
        return ["stat/dev/RESULT"]
    return ["tele/dev/SENSOR", "stat/dev/STATUS10", "stat/dev/STATUS8", "stat/dev/STATUS0"]


TASMOTA = fixture_documents("tasmota")
DISCOVERY = [document for name, document in TASMOTA if name.startswith("discovery")]


@pytest.mark.parametrize(("name", "document"), TASMOTA, ids=[name for name, _ in TASMOTA])
def test_mutated_real_payloads_are_used_or_counted(name: str, document: Any) -> None:
    tracker = TasmotaTracker(rejects=Rejects("fuzz"), limits=LIMITS)
    # The real device first, so that mutations meet a known device, as they would.
    tracker.handle(
        "tasmota/discovery/2CF432CC2FC5/config",
        (FIXTURES / "tasmota" / "discovery_config_energy_plug_v11.0.0.json").read_bytes(),
    )

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutations(document), st.sampled_from(topic_for(name)))
    def run(mutated: Any, topic: str) -> None:
        before = tracker.rejects.total
        samples = tracker.handle(topic, encoded(mutated))
        assert_clean(samples, tracker)
        assert tracker.rejects.total >= before

    run()


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(COMMANDS),
            st.one_of(JSON.map(encoded), st.binary(max_size=40), st.sampled_from([b"", b"ON"])),
            st.sampled_from(["dev", "a", "b", "c", "d", "e", "f", "g", "h", "K" * 70, "x\x00y"]),
        ),
        max_size=12,
    )
)
def test_arbitrary_json_on_every_command_keeps_the_tracker_bounded(
    messages: list[tuple[str, bytes, str]],
) -> None:
    tracker = TasmotaTracker(rejects=Rejects("fuzz"), limits=LIMITS)
    for command, payload, device in messages:
        assert_clean(tracker.handle(f"tele/{device}/{command}", payload), tracker)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.just("2CF432CC2FC5"),
                st.just("00000049A3BC"),
                TEXT,
                st.from_regex(r"[0-9A-F]{12}", fullmatch=True),
            ),
            st.sampled_from(["config", "sensors"]),
            st.one_of(
                st.sampled_from(DISCOVERY).flatmap(mutations),
                JSON,
            ).map(encoded),
        ),
        max_size=6,
    )
)
def test_discovery_never_leaves_the_caps_or_adds_wildcard_subscriptions(
    messages: list[tuple[str, str, bytes]],
) -> None:
    filters: list[str] = []
    tracker = TasmotaTracker(
        rejects=Rejects("fuzz"),
        limits=LIMITS,
        on_new_layout=lambda layout: filters.extend(layout.filters()),
    )
    for mac, kind, payload in messages:
        assert_clean(tracker.handle(f"tasmota/discovery/{mac}/{kind}", payload), tracker)
    for topic_filter in tracker.filters():
        for level in topic_filter.split("/"):
            assert level == "+" or ("+" not in level and "#" not in level), topic_filter
        assert "\x00" not in topic_filter


@SETTINGS
@given(st.text(st.one_of(st.sampled_from("%/+#"), st.characters()), max_size=40))
def test_topics_are_matched_or_ignored(topic: str) -> None:
    tracker = TasmotaTracker(rejects=Rejects("fuzz"), limits=LIMITS)
    assert_clean(tracker.handle(topic, b'{"DS18B20":{"Temperature":1}}'), tracker)


@SETTINGS
@given(
    st.lists(
        st.sampled_from(
            ["%prefix%", "%topic%", "%hostname%", "%id%", "a", "+", "#", "", "x%topic%"]
        ),
        max_size=6,
    ).map("/".join)
)
def test_full_topics_either_refused_or_whole_level_filters(template: str) -> None:
    try:
        layout = FullTopic(template)
    except ValueError:
        return
    for topic_filter in layout.filters():
        for level in topic_filter.split("/"):
            assert level == "+" or ("+" not in level and "#" not in level), topic_filter
    topic = template.replace("%prefix%", "tele").replace("%topic%", "dev") + "/SENSOR"
    topic = topic.replace("//", "/").replace("%hostname%", "h").replace("%id%", "i")
    parts = layout.parse(topic)
    assert parts is None or (parts.prefix, parts.topic, parts.command) == ("tele", "dev", "SENSOR")


@pytest.mark.parametrize("depth", [5, 100, 990, 1023, 1025, 5000])
@pytest.mark.parametrize("command", ["SENSOR", "STATE", "STATUS0", "RESULT"])
def test_deep_nesting_is_counted_never_a_recursion_error(depth: int, command: str) -> None:
    tracker = TasmotaTracker(rejects=Rejects("fuzz"), max_payload=1 << 20)
    payload = b'{"S":' * depth + b"1" + b"}" * depth
    assert_clean(tracker.handle(f"tele/dev/{command}", payload), tracker)
    if command == "SENSOR" or depth > 1024:  # deeper than sensors nest, or than orjson reads
        assert tracker.rejects.total == 1
