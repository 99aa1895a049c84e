from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiohttp
import pytest

from custom_components.fleet_metrics.core.sources.opendtu.client import (
    BadResponse,
    CannotConnect,
    DtuBusy,
    InvalidAuth,
    OpenDtuClient,
)
from custom_components.fleet_metrics.core.sources.opendtu.collector import OpenDtuCollector
from tests.opendtu_fake import FakeOpenDtu, fixture_text


@pytest.fixture
async def session() -> AsyncGenerator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_refresh_fetches_detail_for_summary_only_inverters(
    opendtu: FakeOpenDtu, session: aiohttp.ClientSession
) -> None:
    collector = OpenDtuCollector(OpenDtuClient(session, opendtu.url))
    snapshot = await collector.refresh()
    assert "/api/livedata/status?inv=114182345678" in opendtu.requests
    inverter = snapshot.inverters["114182345678"]
    assert inverter.values["power"] == 70.1
    assert len(inverter.strings) == 2
    assert snapshot.system.firmware == "v26.3.30"
    assert snapshot.network is not None and snapshot.network.mac == "34:85:18:A1:B2:C3"
    assert snapshot.total.power == 70.1


async def test_overview_with_full_data_needs_no_detail(
    opendtu: FakeOpenDtu, session: aiohttp.ClientSession
) -> None:
    opendtu.overview = fixture_text("livedata_status_v23_all_inverters.json")
    snapshot = await OpenDtuCollector(OpenDtuClient(session, opendtu.url)).refresh()
    assert len(snapshot.inverters) == 2
    assert not any("inv=" in r for r in opendtu.requests)


async def test_unknown_serial_in_detail_keeps_the_summary(
    opendtu: FakeOpenDtu, session: aiohttp.ClientSession
) -> None:
    opendtu.overview = fixture_text("livedata_status_overview.json")
    opendtu.details = {}
    snapshot = await OpenDtuCollector(OpenDtuClient(session, opendtu.url)).refresh()
    assert sorted(snapshot.inverters) == ["114183178036", "116191100801", "1164a00ccd81"]
    assert not snapshot.inverters["1164a00ccd81"].reachable


async def test_old_firmware_without_network_status(
    opendtu: FakeOpenDtu, session: aiohttp.ClientSession
) -> None:
    opendtu.network = None
    snapshot = await OpenDtuCollector(OpenDtuClient(session, opendtu.url)).refresh()
    assert snapshot.network is None


async def test_basic_auth(opendtu: FakeOpenDtu, session: aiohttp.ClientSession) -> None:
    opendtu.password = "s3cret"
    with pytest.raises(InvalidAuth):
        await OpenDtuClient(session, opendtu.url).system_status()
    with pytest.raises(InvalidAuth):
        await OpenDtuClient(session, opendtu.url, "admin", "wrong").system_status()
    system = await OpenDtuClient(session, opendtu.url, "admin", "s3cret").system_status()
    assert system.hostname == "OpenDTU-Buero"


@pytest.mark.parametrize(
    ("status", "fixture", "error", "text"),
    [
        (429, "error_429_too_many_requests.txt", DtuBusy, "busy"),
        (500, "error_500_json_overflow.json", BadResponse, "onLivedataStatus"),
        (200, "livedata_status_out_of_memory_v23.txt", BadResponse, "out of memory"),
        (200, "livedata_status_legacy_array_pre_2022_11.json", BadResponse, "Nov 2022"),
        (200, "malformed", BadResponse, "not JSON"),
    ],
)
async def test_error_answers(
    opendtu: FakeOpenDtu,
    session: aiohttp.ClientSession,
    status: int,
    fixture: str,
    error: type[Exception],
    text: str,
) -> None:
    body = '{"inverters": [' if fixture == "malformed" else fixture_text(fixture)
    opendtu.failures["/api/livedata/status"] = (status, body)
    with pytest.raises(error, match=text):
        await OpenDtuClient(session, opendtu.url).livedata()


async def test_nothing_listening_is_cannot_connect(session: aiohttp.ClientSession) -> None:
    with pytest.raises(CannotConnect):
        await OpenDtuClient(session, "http://127.0.0.1:9", timeout=2).system_status()


async def test_live_pushes_update_the_snapshot_and_bad_ones_are_counted(
    opendtu: FakeOpenDtu, session: aiohttp.ClientSession
) -> None:
    collector = OpenDtuCollector(OpenDtuClient(session, opendtu.url))
    await collector.refresh()
    updates: list[float | None] = []
    stream = asyncio.create_task(
        collector.stream(lambda snap, inv: updates.append(inv[0].values.get("power")))
    )
    for message in (
        "{not json",
        fixture_text("ws_livedata_onbattery_extras.json"),
        fixture_text("ws_livedata_message.json"),
    ):
        opendtu.ws_messages.put_nowait(message)
    async with asyncio.timeout(5):
        while not updates:
            await asyncio.sleep(0.01)
    stream.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stream
    assert updates == [72.3]
    assert collector.live_messages == 3
    assert collector.parse_errors == 1
    assert collector.snapshot is not None
    assert collector.snapshot.inverters["114182345678"].values["power"] == 72.3
    assert collector.snapshot.total.yield_total == 48.542


async def test_no_websocket_is_cannot_connect(
    opendtu: FakeOpenDtu, session: aiohttp.ClientSession
) -> None:
    opendtu.websocket = False
    collector = OpenDtuCollector(OpenDtuClient(session, opendtu.url))
    with pytest.raises(CannotConnect, match="404"):
        await collector.stream(lambda *_: None)
