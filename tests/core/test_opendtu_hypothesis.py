"""The OpenDTU parser, collector and samples on hostile input: real answers mutated.

Any JSON gives a model or ``PayloadError`` and nothing else; the model holds finite numbers
and short printable names; a live push the collector cannot read is counted, never raised.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.rejects import Rejects
from custom_components.fleet_metrics.core.sources.opendtu.client import OpenDtuClient
from custom_components.fleet_metrics.core.sources.opendtu.collector import (
    MAX_INVERTERS,
    OpenDtuCollector,
)
from custom_components.fleet_metrics.core.sources.opendtu.models import (
    DtuSnapshot,
    Hints,
    Inverter,
    SystemInfo,
    Totals,
)
from custom_components.fleet_metrics.core.sources.opendtu.parser import (
    MAX_NAME,
    MAX_STRINGS,
    PayloadError,
    parse_livedata,
    parse_network_status,
    parse_system_status,
)
from custom_components.fleet_metrics.core.sources.opendtu.samples import snapshot_samples
from tests.core.test_tasmota_hypothesis import JSON, encoded, fixture_documents, mutations

FIXTURES = Path(__file__).parents[1] / "fixtures" / "opendtu"
OPENDTU = fixture_documents("opendtu")
PARSERS = {
    "livedata": parse_livedata,
    "ws_livedata": parse_livedata,
    "system_status": parse_system_status,
    "network_status": parse_network_status,
}


def parsers_for(name: str) -> list[Any]:
    found = [parse for prefix, parse in PARSERS.items() if name.startswith(prefix)]
    return found or list(PARSERS.values())


def assert_finite(value: Any) -> None:
    """Every float anywhere in a model or sample is finite."""
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            assert_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            assert_finite(item)


def assert_inverter_clean(inverter: Inverter) -> None:
    for name in (inverter.serial, inverter.name):
        assert 0 < len(name) <= MAX_NAME and name.isprintable()
    assert_finite(dataclasses.asdict(inverter))
    assert all(0 <= index < MAX_STRINGS for index in inverter.strings)
    for string in inverter.strings.values():
        assert len(string.name) <= MAX_NAME and (not string.name or string.name.isprintable())
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in inverter.radio.values())


def parsed(parse: Any, document: Any) -> Any:
    """The parser's result, or None for the one error it may raise."""
    try:
        return parse(document)
    except PayloadError:
        return None


@pytest.mark.parametrize(("name", "document"), OPENDTU, ids=[name for name, _ in OPENDTU])
def test_mutated_real_answers_parse_or_are_a_payload_error(name: str, document: Any) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutations(document), st.sampled_from(parsers_for(name)))
    def run(mutated: Any, parse: Any) -> None:
        # Through JSON as the DTU sends it: big integers become floats, NaN is refused.
        try:
            body = json.loads(encoded(mutated))
        except ValueError:
            return
        result = parsed(parse, body)
        if result is None:
            return
        assert_finite(dataclasses.asdict(result))
        for inverter in getattr(result, "inverters", []):
            assert_inverter_clean(inverter)
        if parse is parse_livedata:
            snapshot = DtuSnapshot(
                SystemInfo(), None, {i.serial: i for i in result.inverters}, Totals(), Hints()
            )
            for sample in snapshot_samples("dtu", snapshot):
                assert_finite(dict(sample.fields))

    run()


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.lists(JSON), st.dictionaries(st.just("inverters"), JSON)))
def test_arbitrary_json_is_a_model_or_a_payload_error(document: Any) -> None:
    for parse in PARSERS.values():
        result = parsed(parse, document)
        if result is not None:
            assert_finite(dataclasses.asdict(result))


def inverter(**changes: Any) -> dict[str, Any]:
    body = json.loads((FIXTURES / "livedata_status_inverter_hm800.json").read_text())
    raw = body["inverters"][0]
    raw.update(changes)
    return cast(dict[str, Any], body)


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        # "²" is a digit to str.isdigit, but int("²") raises.
        ({"DC": {"²": {"Power": {"v": 1, "u": "W"}}, "0": {}}}, lambda i: list(i.strings) == [0]),
        ({"DC": {"١": {}, "99999999999999999999": {}}}, lambda i: i.strings == {}),
        # A unit that is an object is no unit (and not hashable).
        (
            {"INV": {"0": {"YieldTotal": {"v": 5, "u": {"k": "Wh"}, "d": 2}}}},
            lambda i: i.values["yield_total"] == 5,
        ),
        (
            {"INV": {"0": {"YieldDay": {"v": 1e308, "u": "MWh", "d": 0}}}},
            lambda i: "yield_day" not in i.values,
        ),
        (
            {"AC": {"0": {"Power": {"v": "NaN"}, "Voltage": {"v": "Infinity"}}}},
            lambda i: "power" not in i.values and "voltage" not in i.values,
        ),
        (
            {
                "radio_stats": {
                    "tx_request": True,
                    "rx_success": -1,
                    "other": 5,
                    "rx_fail_partial": 2,
                }
            },
            lambda i: i.radio == {"rx_fail_partial": 2},
        ),
        ({"name": {"an": "object"}}, lambda i: i.name == i.serial),
        ({"serial": "x" * 500}, None),
        ({"serial": "bad\nserial"}, None),
    ],
)
def test_odd_shapes_seen_in_the_wild(changes: dict[str, Any], check: Any) -> None:
    live = parse_livedata(inverter(**changes))
    if check is None:
        assert live.inverters == []
        return
    (parsed_inverter,) = live.inverters
    assert_inverter_clean(parsed_inverter)
    assert check(parsed_inverter)
    snapshot = DtuSnapshot(
        SystemInfo(), None, {parsed_inverter.serial: parsed_inverter}, Totals(), Hints()
    )
    for sample in snapshot_samples("dtu", snapshot):
        assert_finite(dict(sample.fields))


def collector() -> OpenDtuCollector:
    # apply_live never touches the client's session.
    client = OpenDtuClient(cast(aiohttp.ClientSession, None), "http://dtu.invalid")
    return OpenDtuCollector(client, Rejects("roof"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            JSON.map(lambda d: encoded(d).decode("utf-8", "replace")),
            st.sampled_from(OPENDTU).flatmap(lambda f: mutations(f[1])).map(json.dumps),
        ),
        max_size=6,
    )
)
def test_live_pushes_are_merged_or_counted_never_raised(pushes: list[str]) -> None:
    live = collector()
    live.snapshot = DtuSnapshot(SystemInfo(), None, {}, Totals(), Hints())
    for push in pushes:
        live.apply_live(push)
    assert live.live_messages == len(pushes)
    assert live.rejects.by_kind["exception"] == 0
    assert live.parse_errors == live.rejects.total
    assert live.snapshot is not None
    for kept in live.snapshot.inverters.values():
        assert_inverter_clean(kept)


def test_live_pushes_cannot_grow_the_inverter_table_without_end() -> None:
    live = collector()
    live.snapshot = DtuSnapshot(SystemInfo(), None, {}, Totals(), Hints())
    for number in range(MAX_INVERTERS + 20):
        live.apply_live(json.dumps({"inverters": [{"serial": f"{number:012d}"}]}))
    assert len(live.snapshot.inverters) == MAX_INVERTERS
    assert live.rejects.by_kind["cap"] == 20
