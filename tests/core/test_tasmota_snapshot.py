"""The discovery ``sensors`` snapshot: kept for Home Assistant, never a sample, bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.tasmota.limits import Limits
from custom_components.fleet_metrics.core.sources.tasmota.tracker import TasmotaTracker

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tasmota"
MAC = "2CF432CC2FC5"
CONFIG = (FIXTURES / "discovery_config_energy_plug_v11.0.0.json").read_bytes()
SNAPSHOT = (FIXTURES / "discovery_sensors_energy_plug_v11.0.0.json").read_bytes()
TELEMETRY = [
    ("tele/NXSM200_01/SENSOR", (FIXTURES / "tele_sensor_energy_plug_pow_r2.json").read_bytes()),
    ("tele/NXSM200_01/STATE", (FIXTURES / "tele_state_esp8266_relay.json").read_bytes()),
    ("tele/NXSM200_01/SENSOR", (FIXTURES / "tele_sensor_ds18b20.json").read_bytes()),
]


def without_time(samples: list[Sample]) -> list[tuple[object, ...]]:
    return [(s.measurement, dict(s.tags), dict(s.fields)) for s in samples]


def test_the_snapshot_is_kept_until_telemetry_brings_each_reading() -> None:
    tracker = TasmotaTracker()
    tracker.handle(f"tasmota/discovery/{MAC}/config", CONFIG)
    assert tracker.handle(f"tasmota/discovery/{MAC}/sensors", SNAPSHOT) == []
    (state,) = tracker.devices.values()
    assert state.readings == {}
    ((key, energy),) = state.snapshot.items()
    assert key == ("tasmota_energy", (("sensor", "ENERGY"),))
    assert energy.fields["total_joules"] == pytest.approx(72.814 * 3_600_000)
    tracker.handle(*TELEMETRY[0])
    assert state.snapshot == {}, "telemetry brought the reading"
    assert state.readings[key].fields["total_joules"] == pytest.approx(6.294 * 3_600_000)
    tracker.handle(f"tasmota/discovery/{MAC}/sensors", SNAPSHOT)  # the device rebooted
    assert state.snapshot == {}, "a reading telemetry brought is never taken from a snapshot"


names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=5),
    st.lists(st.floats(-1e6, 1e6), max_size=5),
    st.none(),
)
sensor_bodies = st.dictionaries(names, values, max_size=6)
snapshots = st.dictionaries(
    st.sampled_from(["ENERGY", "DS18B20", "AM2301", "Switch1", "Time", "x" * 70]),
    st.one_of(sensor_bodies, st.sampled_from(["ON", "OFF"]), st.integers(0, 9)),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(snapshot=snapshots, where=st.integers(0, len(TELEMETRY)))
def test_samples_are_the_same_with_or_without_snapshots_and_it_stays_bounded(
    snapshot: dict[str, Any], where: int
) -> None:
    """Whatever a snapshot holds and whenever it comes, the runner's samples and rejections
    are those without it, and it keeps within the reading and field caps."""
    limits = Limits(readings=3, fields=4)
    plain, with_snapshot = TasmotaTracker(limits=limits), TasmotaTracker(limits=limits)
    for tracker in (plain, with_snapshot):
        tracker.handle(f"tasmota/discovery/{MAC}/config", CONFIG)
    message = orjson.dumps({"sn": snapshot, "ver": 1}, option=orjson.OPT_NON_STR_KEYS)
    for index, (topic, body) in enumerate(TELEMETRY):
        if index == where:
            assert with_snapshot.handle(f"tasmota/discovery/{MAC}/sensors", message) == []
        assert without_time(plain.handle(topic, body)) == without_time(
            with_snapshot.handle(topic, body)
        )
    if where == len(TELEMETRY):
        assert with_snapshot.handle(f"tasmota/discovery/{MAC}/sensors", message) == []
    assert plain.rejects.by_kind == with_snapshot.rejects.by_kind
    assert plain.skipped.count == with_snapshot.skipped.count
    (state,) = with_snapshot.devices.values()
    assert len(state.snapshot) <= limits.readings
    assert all(len(reading.fields) <= limits.fields for reading in state.snapshot.values())
    assert not set(state.snapshot) & set(state.readings)
