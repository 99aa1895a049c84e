from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import voluptuous as vol

from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.opendtu.source import SCHEMA, OpenDtuSource
from tests.opendtu_fake import FakeOpenDtu, fixture_text


def make_source(url: str, **overrides: Any) -> OpenDtuSource:
    config = vol.Schema(SCHEMA)({"url": url, "interval": 0.05, **overrides})
    return OpenDtuSource("roof", config)


async def run_until(
    source: OpenDtuSource, seen: list[Sample], done: Callable[[], bool], timeout: float = 5
) -> None:
    task = asyncio.create_task(source.run(seen.append))
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def by_measurement(seen: list[Sample], measurement: str) -> list[Sample]:
    return [s for s in seen if s.measurement == measurement]


async def test_poll_emits_dtu_inverter_and_string_samples_in_base_units(
    opendtu: FakeOpenDtu,
) -> None:
    source = make_source(opendtu.url, websocket=False)
    seen: list[Sample] = []
    await run_until(source, seen, lambda: len(by_measurement(seen, "opendtu_string")) >= 2)
    inverter = by_measurement(seen, "opendtu_inverter")[0]
    assert inverter.tags == {"dtu": "roof", "serial": "114182345678", "inverter": "HM800"}
    fields = inverter.fields
    assert fields["power_watts"] == 70.1
    assert fields["yield_day_joules"] == 48 * 3600
    assert fields["yield_total_joules"] == pytest.approx(48.54 * 3_600_000)
    assert fields["efficiency_ratio"] == pytest.approx(0.95245)
    assert fields["limit_relative_ratio"] == 1.0
    assert fields["reachable"] is True
    assert fields["rssi_dbm"] == -30.0
    assert fields["radio_tx_requests"] == 1832
    assert "radio_tx_requests" in inverter.counters
    strings = by_measurement(seen, "opendtu_string")
    assert {s.tags["string"] for s in strings} == {"0", "1"}
    assert strings[0].fields["irradiation_ratio"] == pytest.approx(0.08902)
    dtu = next(s for s in by_measurement(seen, "opendtu_dtu") if "up" in s.fields)
    assert dtu.fields["up"] is True
    assert dtu.fields["uptime_seconds"] == 34314
    info = next(s for s in by_measurement(seen, "opendtu_dtu") if "info" in s.fields)
    assert info.tags["firmware"] == "v26.3.30"
    assert source.stats.samples == len(seen)


async def test_unreachable_dtu_reports_down_and_recovers(
    opendtu: FakeOpenDtu, caplog: pytest.LogCaptureFixture
) -> None:
    opendtu.failures["/api/system/status"] = (500, '{"message":"boom"}')
    source = make_source(opendtu.url, websocket=False)
    seen: list[Sample] = []
    await run_until(source, seen, lambda: sum(s.fields.get("up") is False for s in seen) >= 3)
    assert source.connected is False
    assert source.stats.parse_errors >= 3
    assert caplog.text.count("DTU unavailable") == 1, "a lasting failure is logged once"
    del opendtu.failures["/api/system/status"]
    seen.clear()
    await run_until(source, seen, lambda: any(s.fields.get("up") is True for s in seen))
    assert source.connected is True


async def test_live_websocket_pushes_become_samples(opendtu: FakeOpenDtu) -> None:
    source = make_source(opendtu.url, live_poll_interval=60)
    seen: list[Sample] = []

    def pushed() -> bool:
        if opendtu.ws_messages.empty() and not any(
            s.fields.get("power_watts") == 72.3 for s in seen
        ):
            opendtu.ws_messages.put_nowait(fixture_text("ws_livedata_message.json"))
        return any(s.fields.get("power_watts") == 72.3 for s in seen)

    await run_until(source, seen, pushed)
    polls = [r for r in opendtu.requests if r == "/api/system/status"]
    assert len(polls) == 1, "while live, the next full poll waits for live_poll_interval"


async def test_without_websocket_it_falls_back_to_polling(
    opendtu: FakeOpenDtu, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    opendtu.websocket = False
    source = make_source(opendtu.url, live_poll_interval=60)
    seen: list[Sample] = []
    await run_until(source, seen, lambda: opendtu.requests.count("/api/system/status") >= 3)
    assert "live WebSocket ended" in caplog.text
    assert opendtu.requests.count("/livedata") == 1, "the retry waits for websocket_retry"


async def test_malformed_pushes_and_answers_are_counted_and_the_stream_goes_on(
    opendtu: FakeOpenDtu,
) -> None:
    """Frames that are no JSON, odd shapes and keys that break naive parsing (a DC string
    "²") are counted by kind; the live stream stays open and polling goes on."""
    source = make_source(opendtu.url, live_poll_interval=60)
    seen: list[Sample] = []
    hostile = [
        "not json",
        "[1, 2",
        '{"inverters": 5}',
        '{"inverters": [{"serial": "114182345678", "DC": {"²": {}}, '
        '"AC": {"0": {"Power": {"v": 1, "u": {"an": "object"}}}}}]}',
        '{"inverters": [{"serial": "114182345678", "AC": {"0": {"Power": {"v": 72.3}}}}]}',
    ]

    def pushed() -> bool:
        if hostile and opendtu.sockets:
            opendtu.ws_messages.put_nowait(hostile.pop(0))
        return any(s.fields.get("power_watts") == 72.3 for s in seen)

    # live_poll_interval is 60 s: only the pushes themselves can bring the counters up.
    await run_until(source, seen, lambda: pushed() and source.stats.parse_errors == 3)
    assert dict(source.rejects.by_kind) == {"json": 2, "shape": 1}
    assert source.stats.parse_errors == source.rejects.total == 3
    assert opendtu.requests.count("/livedata") == 1, "one connection took every frame"
    assert any(s.fields.get("power_watts") == 1 for s in seen), "the odd but usable push"


@pytest.mark.parametrize(
    ("body", "kind"),
    [("not json", "json"), ("[]", "shape"), ('{"inverters": {"a": 1}}', "shape")],
)
async def test_bad_answers_are_counted_by_kind(opendtu: FakeOpenDtu, body: str, kind: str) -> None:
    opendtu.failures["/api/livedata/status"] = (200, body)
    source = make_source(opendtu.url, websocket=False)
    seen: list[Sample] = []
    await run_until(source, seen, lambda: source.rejects.total >= 2)
    assert set(source.rejects.by_kind) == {kind}
    assert source.stats.parse_errors == source.rejects.total
    assert all(s.fields == {"up": False} for s in seen)
