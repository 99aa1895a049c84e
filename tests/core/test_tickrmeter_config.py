"""A TickrMeter source's settings are refused before start, with the bad key named: empty or
wildcard topics, a topic used twice, a status field table naming no device attribute, and
anything but a number (booleans, strings) where a number goes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.config import ConfigError, validate
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import DEVICE_FIELDS, Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.source import build_tracker

NUMBER_KEYS = ["tick", "request_timeout", "device_timeout", "forget_after", "window", "top",
               "max_pending", "max_symbols", "max_devices", "max_label_values", "max_payload",
               "low_battery"]  # fmt: skip


def config(**source: Any) -> dict[str, Any]:
    return {
        "brokers": {"home": {"host": "127.0.0.1"}},
        "sources": [{"kind": "tickrmeter", "name": "fleet", "broker": "home", **source}],
    }


def refused(**source: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(config(**source))
    return str(caught.value)


def test_defaults_build_a_tracker_with_every_cap() -> None:
    source = validate(config())["sources"][0]
    tracker = build_tracker(source)
    assert tracker.correlator.max_symbols == source["max_symbols"] > 0
    assert tracker.correlator.max_pending == source["max_pending"] > 0
    assert tracker.fleet.max_devices == source["max_devices"] > 0
    assert tracker.max_payload == source["max_payload"] > 0


@pytest.mark.parametrize(
    ("topics", "key"),
    [
        ({"request": ""}, "topics.request"),
        ({"request": "+"}, "topics.request"),
        ({"status": "fleet/#"}, "topics.status"),
        ({"stream": "a/+/b"}, "topics.stream"),
        ({"boots": ["TICKRMETERBOOT", "#"]}, "topics.boots[1]"),
        ({"boots": [""]}, "topics.boots[0]"),
        ({"boots": "TICKRMETERBOOT"}, "topics.boots"),
        ({"request": 5}, "topics.request"),
        ({"request": "A\x00B"}, "topics.request"),
        ({"stream": "STOCKPRICEUPDATE"}, "topics"),
        ({"boots": ["DEVICESTATUS_RES"]}, "topics"),
    ],
)
def test_topics_must_be_plain_and_distinct(topics: dict[str, Any], key: str) -> None:
    assert refused(topics=topics).startswith(f"sources[0].{key}: ")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"fw": "colour"}, "status_fields.fw"),
        ({"fw": "firmware", "bat": "Battery"}, "status_fields.bat"),
        ({"fw": 3}, "status_fields.fw"),
        ({"fw": ["firmware"]}, "status_fields.fw"),
        (["firmware"], "status_fields"),
    ],
)
def test_a_status_field_table_naming_no_device_attribute_is_refused(table: Any, key: str) -> None:
    assert refused(status_fields=table).startswith(f"sources[0].{key}: ")


def test_every_device_attribute_the_schema_accepts_is_one_fleet_accepts() -> None:
    table = {f"key_{name}": name for name in sorted(DEVICE_FIELDS)}
    source = validate(config(status_fields=table))["sources"][0]
    assert build_tracker(source).fleet.status_fields == table
    assert Fleet(status_fields=table).status_fields == table


@pytest.mark.parametrize("key", NUMBER_KEYS)
@pytest.mark.parametrize("value", [True, False, "10", None, [10]])
def test_numbers_are_numbers_not_booleans_or_strings(key: str, value: Any) -> None:
    assert refused(**{key: value}).startswith(f"sources[0].{key}: ")


@pytest.mark.parametrize("value", [1, 0, "true", "yes"])
def test_per_device_is_a_boolean(value: Any) -> None:
    assert refused(per_device=value).startswith("sources[0].per_device: ")


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([*NUMBER_KEYS, "per_device", "status_fields", "topics", "broker"]), values)
def test_any_value_is_accepted_and_builds_or_refused_naming_its_key(key: str, value: Any) -> None:
    error = ""
    try:
        source = validate(config(**{key: value}))["sources"][0]
    except ConfigError as err:
        error = str(err)
    if error:
        assert error.startswith((f"sources[0].{key}", "sources[0].broker")), error
    else:
        build_tracker(source)  # what passes validation must start
