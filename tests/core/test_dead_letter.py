from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.dead_letter import DeadLetterFile
from custom_components.fleet_metrics.core.rejects import Rejected


def read(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_one_json_object_per_record(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    sink = DeadLetterFile(path, payload_limit=8)
    sink.record(Rejected("kitchen", "json", "not JSON", "tele/x/SENSOR", b"{oops"))
    sink.record(Rejected("kitchen", "too_large", "big", "t", b"0123456789"))
    sink.record(Rejected("line_protocol", "http_400", "bad", "http://h/write", b"\xff\xfe"))
    first, second, third = read(path)
    assert first["source"] == "kitchen" and first["kind"] == "json"
    assert first["topic"] == "tele/x/SENSOR" and first["payload"] == "{oops"
    assert first["truncated"] is False and first["utf8"] is True
    assert datetime.fromisoformat(str(first["time"])).utcoffset() is not None
    assert str(first["time"]).endswith("Z")
    assert second["payload"] == "01234567" and second["truncated"] is True
    assert second["payload_bytes"] == 10
    assert third["utf8"] is False and third["payload"] == "\ufffd\ufffd"


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=40),
    reason=st.text(st.characters(exclude_categories=()), max_size=20),
    limit=st.integers(1, 16),
)
def test_any_payload_and_reason_become_one_valid_line(
    tmp_path_factory: pytest.TempPathFactory, payload: bytes, reason: str, limit: int
) -> None:
    path = tmp_path_factory.mktemp("dl") / "dead.jsonl"
    sink = DeadLetterFile(path, payload_limit=limit)
    sink.record(Rejected("s", "k", reason, reason, payload))
    [record] = read(path)
    assert record["truncated"] == (len(payload) > limit)
    cut = payload[:limit]
    assert record["payload"] == cut.decode(errors="replace")
    window = payload[: limit + 3]  # the kept part and the character the cut goes through
    try:
        window.decode()
        valid = True
    except UnicodeDecodeError as err:
        valid = len(window) < len(payload) and err.reason == "unexpected end of data"
    assert record["utf8"] == valid
    assert sink.errors == 0


def test_size_is_bounded_by_rotation(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    sink = DeadLetterFile(path, max_bytes=2_000, backups=2, batch_bytes=1)
    for index in range(200):
        sink.record(Rejected("s", "k", f"r{index}", "", b"x" * 50))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["dead.jsonl", "dead.jsonl.1", "dead.jsonl.2"]
    assert all((tmp_path / name).stat().st_size <= 2_000 for name in files)
    assert read(path)[-1]["reason"] == "r199"
    newest_rotated = read(tmp_path / "dead.jsonl.1")
    assert newest_rotated[-1]["reason"] == f"r{199 - len(read(path))}"


def test_disk_errors_are_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = DeadLetterFile(tmp_path / "missing-dir" / "dead.jsonl")
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            sink.record(Rejected("s", "k", "r"))
    assert sink.errors == 3
    assert len([r for r in caplog.records if "cannot be written" in r.message]) == 1


async def test_on_the_event_loop_records_are_written_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    sink = DeadLetterFile(path, flush_delay=0.2, batch_bytes=100_000, max_pending=3_000)
    for index in range(100):
        sink.record(Rejected("s", "k", f"r{index}", "", b"x" * 10))
    assert not path.exists(), "nothing is written per record"
    assert 0 < sink.records < 100 and sink.dropped == 100 - sink.records
    await asyncio.sleep(0.4)
    assert len(read(path)) == sink.records
    sink.record(Rejected("s", "k", "last"))
    sink.close()
    assert read(path)[-1]["reason"] == "last"
