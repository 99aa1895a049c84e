"""Lines from the encoder against a real InfluxDB 1.x: accepted, and read back as sent.

"As sent" means after the encoder's documented replacements (tests/core/lp_reference_parser
``expected_point``), so this checks the rules against the server, not only the parser.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.exporters.line_protocol import LineEncoder
from custom_components.fleet_metrics.core.exporters.line_protocol_output import (
    LineProtocolOutput,
)
from custom_components.fleet_metrics.core.rejects import Rejected
from custom_components.fleet_metrics.core.sample import Sample
from tests.influxd import Influxd

from .lp_reference_parser import expected_point
from .test_line_protocol import samples

Point = tuple[str, dict[str, str], dict[str, object]]
T0 = 1_700_000_000_000_000_000


def read_back(server: Influxd, database: str) -> dict[int, Point]:
    """Every point in the database by time: (measurement, tags, fields).

    One query per measurement: across measurements InfluxQL gives a field name one type.
    """
    shown = server.query("SHOW MEASUREMENTS", database)["results"][0].get("series", [])
    names = [row[0] for row in shown[0]["values"]] if shown else []
    series_list = []
    for name in names:
        quoted = '"' + name.replace('"', '\\"') + '"'
        answer = server.query(f"SELECT *::field FROM {quoted} GROUP BY *", database)
        series_list += answer["results"][0].get("series", [])
    points: dict[int, Point] = {}
    for series in series_list:
        tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
        columns = series["columns"]
        for row in series["values"]:
            fields = {c: v for c, v in zip(columns[1:], row[1:], strict=True) if v is not None}
            points[row[0]] = (series["name"], tags, fields)
    return points


def same_value(sent: object, read: object) -> bool:
    if isinstance(sent, float) and not isinstance(sent, bool):
        return (
            isinstance(read, int | float)
            and not isinstance(read, bool)
            and (math.isclose(sent, read, rel_tol=0, abs_tol=0) or sent == read)
        )
    return type(sent) is type(read) and sent == read


def without_type_conflicts(batch: list[Sample]) -> list[tuple[Sample, Point]]:
    """Samples whose every field keeps the type an earlier sample gave it: a conflict is the
    data's fault, which InfluxDB rightly refuses."""
    types: dict[tuple[str, str], type] = {}
    kept = []
    for sample in batch:
        expected = expected_point(
            sample.measurement, dict(sample.tags), dict(sample.fields), sample.counters
        )
        if expected is None:
            continue
        claims = {(expected[0], key): type(value) for key, value in expected[2].items()}
        if any(types.setdefault(key, kind) is not kind for key, kind in claims.items()):
            continue
        kept.append((sample, expected))
    return kept


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(samples(), min_size=1, max_size=15))
def test_every_encoded_line_is_accepted_and_reads_back_as_sent(
    influxd: Influxd,
    batch: list[Sample],
) -> None:
    timed = [
        Sample(s.measurement, s.tags, s.fields, T0 + index, s.counters)
        for index, s in enumerate(batch)
    ]
    kept = without_type_conflicts(timed)
    encoder = LineEncoder()
    lines = [encoder.encode(sample) for sample, _ in kept]
    assert None not in lines
    database = influxd.fresh_database()
    try:
        if lines:
            status, answer = influxd.write(database, ("\n".join(lines) + "\n").encode())  # type: ignore[arg-type]
            assert status == 204, (answer, lines)
        points = read_back(influxd, database)
    finally:
        influxd.drop_database(database)
    assert len(points) == len(kept)
    for sample, (name, tags, fields) in kept:
        read_name, read_tags, read_fields = points[sample.time_ns]
        assert (read_name, read_tags) == (name, tags)
        assert read_fields.keys() == fields.keys()
        for key, value in fields.items():
            assert same_value(value, read_fields[key]), (key, value, read_fields[key])


def test_the_hard_cases_are_accepted(influxd: Influxd) -> None:
    hard = [
        Sample("tasmota", {"device": "kitchen\\"}, {"v": 1.0}),
        Sample("m", {"d": "\\"}, {"v": 1.0}),
        Sample("m", {"d": "a\x00b"}, {"nul\x00": "x\x00y"}),
        Sample("#comment", {}, {"v": 1.0}),
        Sample("m", {"time": "x"}, {"time": 1.0}),
        Sample("m", {"k": "v" * 65_000}, {"f" * 600: 1.0, "ok": 1.0}),
        Sample("m", {}, {"s": "x" * 70_000}),
        Sample("m", {}, {"s": "ends in a backslash\\"}),
        Sample("m", {"k": "a\\ b"}, {"f\\,": 1.0}),
    ]
    encoder = LineEncoder()
    database = influxd.fresh_database()
    for index, sample in enumerate(hard):
        line = encoder.encode(
            Sample(sample.measurement, sample.tags, sample.fields, T0 + index, sample.counters)
        )
        assert line is not None
        status, answer = influxd.write(database, line.encode() + b"\n")
        assert status == 204, (answer, line[:200])
    assert len(read_back(influxd, database)) == len(hard)
    influxd.drop_database(database)


async def test_the_output_writes_around_a_type_conflict_in_a_real_influxd(
    influxd: Influxd,
) -> None:
    """InfluxDB 1.x refuses a field type conflict with 400 "partial write" and writes the
    rest: the output must count the refusal and not send the good lines again."""
    database = influxd.fresh_database()
    seed = f'conflict v="text" {T0}\n'.encode()  # the same shard: types are per shard
    assert influxd.write(database, seed)[0] == 204
    rejected: list[Rejected] = []
    out = LineProtocolOutput(
        influxd.write_url(database),
        on_rejected=rejected.append,
        backoff=Backoff(initial=0.0, maximum=0.0),
    )
    for index in range(10):
        name = "conflict" if index == 4 else "fine"
        out.add(Sample(name, {}, {"v": float(index)}, T0 + index))
    assert await out.flush() == 9
    await out.close()
    assert out.lines_rejected == 1 and out.pending == 0
    assert [(r.kind, r.payload) for r in rejected] == [("http_400", b"")]
    assert "field type conflict" in rejected[0].reason
    answer: Any = influxd.query("SELECT count(v) FROM fine", database)
    assert orjson.loads(orjson.dumps(answer))["results"][0]["series"][0]["values"][0][1] == 9
    influxd.drop_database(database)
