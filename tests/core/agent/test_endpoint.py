"""The agent endpoint on a real aiohttp server, with a real WebSocket client on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from custom_components.fleet_metrics.core.agent import protocol
from custom_components.fleet_metrics.core.agent.outbox import SeriesIds
from custom_components.fleet_metrics.core.agent.protocol import (
    CLOSE_MALFORMED,
    Ack,
    Batch,
    Hello,
    Welcome,
    decode,
    encode,
    encode_rows,
)
from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.agents.endpoint import handle_agent
from custom_components.fleet_metrics.core.sources.agents.exposition import HostsExposition
from custom_components.fleet_metrics.core.sources.agents.hub import Hub, HubLimits
from custom_components.fleet_metrics.core.sources.agents.store import HostRecord
from custom_components.fleet_metrics.core.sources.agents.tokens import (
    FailureLimiter,
    hash_token,
    make_token,
)


@dataclass
class Server:
    hub: Hub
    url: str
    emitted: list[Sample]
    tokens: dict[str, str]
    records: dict[str, HostRecord]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    emitted: list[Sample] = []
    tokens = {name: make_token() for name in ("alpha", "beta")}
    records = {
        name: HostRecord(name, hash_token(token), time.time()) for name, token in tokens.items()
    }
    hub = Hub(
        emitted.append,
        HubLimits(grace=0.3, max_samples_per_batch=50, max_series_per_host=20),
        reload_hosts=lambda: records,
        limiter=FailureLimiter(limit=5, window=60.0),
    )
    hub.set_hosts(records)
    app = web.Application()

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handle_agent(request, hub)

    app.router.add_get("/api/agent", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Server(hub, f"http://127.0.0.1:{port}/api/agent", emitted, tokens, records)
    hub.close_all()  # cancels the grace timers
    await runner.cleanup()


def _sample(value: float = 1.0) -> Sample:
    return Sample("load", {}, {"load1": value, "load5": 0.5, "load15": 0.25}, time_ns=1)


async def _connect(
    session: aiohttp.ClientSession, server: Server, host: str = "alpha", token: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    token = server.tokens[host] if token is None else token
    return await session.ws_connect(server.url, headers={"Authorization": f"Bearer {token}"})


async def _hello(ws: aiohttp.ClientWebSocketResponse, host: str = "alpha", boot: str = "b1") -> int:
    await ws.send_str(encode(Hello(host, "1.0", boot, ())).decode())
    welcome = decode((await ws.receive(timeout=5)).data)
    assert isinstance(welcome, Welcome)
    return welcome.resume_from


async def _send(ws: aiohttp.ClientWebSocketResponse, seq: int, value: float = 1.0) -> int:
    await ws.send_str(encode(Batch(seq, time.time(), (_sample(value),))).decode())
    ack = decode((await ws.receive(timeout=5)).data)
    assert isinstance(ack, Ack)
    return ack.seq


async def _closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    message = await ws.receive(timeout=5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    return ws.close_code


def _loads(server: Server) -> list[float]:
    """load1 of every batch applied, from telegraf's ``system`` lines."""
    return [float(s.fields["load1"]) for s in server.emitted if "load1" in s.fields]


def _up(server: Server) -> dict[str, float]:
    text = HostsExposition(server.hub).render()
    return {
        sample.labels["host"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fleet_agent_up"
    }


async def test_hello_welcome_batches_and_cumulative_acks(server: Server) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        assert await _hello(ws) == 0
        assert server.hub.hosts["alpha"].online
        assert [await _send(ws, seq, seq) for seq in (1, 2, 3)] == [1, 2, 3]
    assert _loads(server) == [1.0, 2.0, 3.0]
    # The same boot resumes where it was; every sample carries the host label.
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        assert await _hello(ws) == 3
    assert all(s.tags.get("host") == "alpha" for s in server.emitted)


async def test_a_batch_seen_before_is_acked_and_not_applied_again(server: Server) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await _hello(ws)
        assert await _send(ws, 1, 1) == 1
        assert await _send(ws, 2, 2) == 2
        assert await _send(ws, 1, 99) == 2  # replayed after a lost ack: cumulative ack
        assert await _send(ws, 2, 99) == 2
        assert await _send(ws, 5, 5) == 5  # 3 and 4 never came
    state = server.hub.hosts["alpha"]
    assert _loads(server) == [1.0, 2.0, 5.0]
    assert (state.batches_duplicate, state.seq_gaps, state.batches_received) == (2, 2, 3)


async def test_a_new_boot_starts_from_zero(server: Server) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await _hello(ws, boot="b1")
        await _send(ws, 1)
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        assert await _hello(ws, boot="b2") == 0
        assert await _send(ws, 1, 7) == 1
    assert _loads(server)[-1] == 7.0


@pytest.mark.parametrize("case", ["wrong token", "unknown host", "other host's token"])
async def test_refusals_look_the_same(server: Server, case: str) -> None:
    host, token = {
        "wrong token": ("alpha", make_token()),
        "unknown host": ("nobody", make_token()),
        "other host's token": ("alpha", server.tokens["beta"]),
    }[case]
    async with aiohttp.ClientSession() as session:
        ws = await _connect(session, server, "alpha", token)
        await ws.send_str(encode(Hello(host, "1", "b", ())).decode())
        assert await _closed_with(ws) == protocol.CLOSE_NOT_AUTHORISED
    assert server.hub.stats.auth_failures == 1
    assert not any(state.online for state in server.hub.hosts.values())


async def test_token_in_url_and_missing_header_are_refused_before_the_upgrade(
    server: Server,
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{server.url}?token={server.tokens['alpha']}")
        assert err.value.status == 400
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(server.url)
        assert err.value.status == 401
    assert server.hub.stats.token_in_url == 1
    assert server.hub.rejects.by_kind["token_in_url"] == 1


async def test_a_flood_of_failed_logins_is_rate_limited_per_address(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(5):
            ws = await _connect(session, server, "alpha", make_token())
            await ws.send_str(encode(Hello("alpha", "1", "b", ())).decode())
            assert await _closed_with(ws) == protocol.CLOSE_NOT_AUTHORISED
        # Now even the right token from this address waits for the window to end.
        for _ in range(20):
            ws = await _connect(session, server)
            assert await _closed_with(ws) == protocol.CLOSE_RATE_LIMITED
    assert server.hub.stats.rate_limited == 20
    assert server.hub.limiter.refused == 20
    assert server.hub.stats.auth_failures == 5


@pytest.mark.parametrize(
    ("frame", "code", "kind"),
    [
        ("{not json", protocol.CLOSE_MALFORMED, "malformed"),
        ('{"type": "batch", "v": 1, "seq": "one"}', protocol.CLOSE_MALFORMED, "malformed"),
        ('{"type": "batch", "v": 9, "seq": 1}', protocol.CLOSE_VERSION, "malformed"),
        ('{"type": "ack", "v": 1, "seq": 1}', protocol.CLOSE_MALFORMED, "malformed"),
        ("x" * (protocol.MAX_MESSAGE_BYTES + 1), protocol.CLOSE_TOO_LARGE, "too_large"),
    ],
)
async def test_bad_messages_close_with_their_code_and_are_counted(
    server: Server, frame: str, code: int, kind: str
) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await _hello(ws)
        await ws.send_str(frame)
        assert await _closed_with(ws) == code
    assert server.hub.rejects.by_kind[kind] == 1


async def test_a_frame_over_aiohttps_cap_is_closed_and_counted(server: Server) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await _hello(ws)
        await ws.send_str("x" * (3 * protocol.MAX_MESSAGE_BYTES))
        assert await _closed_with(ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert server.hub.rejects.by_kind["too_large"] == 1


async def test_a_bad_hello_is_malformed(server: Server) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await ws.send_str(encode(Batch(1, 1.0, ())).decode())
        assert await _closed_with(ws) == protocol.CLOSE_MALFORMED


async def test_a_second_connection_replaces_the_first_without_going_offline(
    server: Server,
) -> None:
    changes: list[tuple[str, bool]] = []
    server.hub.subscribe(
        on_online=lambda s: changes.append((s.name, True)),
        on_offline=lambda s: changes.append((s.name, False)),
    )
    async with aiohttp.ClientSession() as session:
        first = await _connect(session, server)
        await _hello(first)
        await _send(first, 1)
        second = await _connect(session, server)
        assert await _hello(second) == 1
        assert await _closed_with(first) == protocol.CLOSE_REPLACED
        await asyncio.sleep(0.6)  # twice the grace: the old connection's end changed nothing
        assert server.hub.hosts["alpha"].online
        assert await _send(second, 2) == 2
        await second.close()
    assert changes == [("alpha", True)]
    assert server.hub.stats.replaced == 1


async def test_offline_only_after_the_grace_period_and_all_offline_at_start(
    server: Server,
) -> None:
    assert not any(state.online for state in server.hub.hosts.values())
    assert _up(server) == {"alpha": 0.0, "beta": 0.0}
    changes: list[bool] = []
    server.hub.subscribe(lambda _: changes.append(True), lambda _: changes.append(False))
    async with aiohttp.ClientSession() as session:
        ws = await _connect(session, server)
        await _hello(ws)
        await ws.close()
        await asyncio.sleep(0.1)
        assert server.hub.hosts["alpha"].online  # within the grace
        ws = await _connect(session, server)  # a quick reconnect: no flap
        await _hello(ws)
        await ws.close()
        await asyncio.sleep(0.6)
    assert not server.hub.hosts["alpha"].online
    assert changes == [True, False]
    assert _up(server) == {"alpha": 0.0, "beta": 0.0}


@pytest.mark.parametrize("change", ["removed", "rotated"])
async def test_a_revoked_host_is_cut_off_at_once(server: Server, change: str) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await _connect(session, server)
        await _hello(ws)
        records = dict(server.records)
        if change == "removed":
            del records["alpha"]
        else:
            records["alpha"] = HostRecord("alpha", hash_token(make_token()), 0.0)
        server.records.clear()
        server.records.update(records)
        server.hub.set_hosts(records)
        assert await _closed_with(ws) == protocol.CLOSE_NOT_AUTHORISED
        ws = await _connect(session, server)  # the old token no longer works
        await ws.send_str(encode(Hello("alpha", "1", "b1", ())).decode())
        assert await _closed_with(ws) == protocol.CLOSE_NOT_AUTHORISED
    assert server.hub.stats.revoked == 1


async def test_a_host_added_after_start_is_found_on_its_first_hello(server: Server) -> None:
    token = make_token()
    server.records["gamma"] = HostRecord("gamma", hash_token(token), time.time())
    async with aiohttp.ClientSession() as session:
        ws = await _connect(session, server, "alpha", token)
        assert await _hello(ws, host="gamma") == 0
        await ws.close()


async def test_caps_on_samples_per_batch_and_series_per_host_are_counted(
    server: Server,
) -> None:
    counters = frozenset({"receive_bytes"})
    many = tuple(
        Sample("network", {"device": f"eth{i}"}, {"receive_bytes": i}, 1, counters)
        for i in range(60)
    )
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await _hello(ws)
        await ws.send_str(encode(Batch(1, time.time(), many)).decode())
        assert decode((await ws.receive(timeout=5)).data) == Ack(1)
    state = server.hub.hosts["alpha"]
    # 50 per batch, then 20 series per host: 10 beyond the batch cap, 30 beyond the series cap.
    assert state.samples_dropped == 40
    assert state.series_count == 20
    devices = {s.tags["interface"] for s in server.emitted if s.measurement == "net"}
    assert len(devices) == 20


async def test_wire_is_json_text_frames(server: Server) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await ws.send_str(encode(Hello("alpha", "1", "b", ())).decode())
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT
        assert orjson.loads(message.data) == {
            "type": "welcome",
            "v": 1,
            "resume_from": 0,
            "capabilities": ["series"],
        }


async def test_rows_of_declared_series_are_applied_and_undeclared_ones_close(
    server: Server,
) -> None:
    """Declarations live as long as their connection: the next one must declare again."""
    ids = SeriesIds()
    rows = [ids.row(_sample(value)) for value in (1.0, 2.0)]
    async with aiohttp.ClientSession() as session:
        async with await _connect(session, server) as ws:
            await _hello(ws)
            for declaration in ids.declarations(0, 0):
                await ws.send_str(encode(declaration).decode())
            for seq, row in enumerate(rows, start=1):
                await ws.send_bytes(encode_rows(seq, time.time(), [row], ()))
                assert decode((await ws.receive(timeout=5)).data) == Ack(seq)
        assert _loads(server) == [1.0, 2.0]
        async with await _connect(session, server) as ws:
            await _hello(ws)
            await ws.send_bytes(encode_rows(3, time.time(), [rows[0]], ()))
            closed = await ws.receive(timeout=5)
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert closed.data == CLOSE_MALFORMED
    assert _loads(server) == [1.0, 2.0]
    assert server.hub.rejects.by_kind.get("malformed") == 1


async def test_declaring_more_than_a_connection_may_hold_closes_it(server: Server) -> None:
    """Each message is within the cap; together they pass what one table may take."""
    per_message = 2_000
    async with aiohttp.ClientSession() as session, await _connect(session, server) as ws:
        await _hello(ws)
        for first in range(0, 5 * per_message, per_message):
            series = [[sid, "load", {"pad": "x" * 420}, ["load1"], []]
                      for sid in range(first, first + per_message)]  # fmt: skip
            frame = orjson.dumps({"type": "series", "v": 1, "series": series})
            assert len(frame) < protocol.MAX_MESSAGE_BYTES
            await ws.send_bytes(frame)
        assert await _closed_with(ws) == protocol.CLOSE_TOO_LARGE
    assert server.hub.rejects.by_kind["too_large"] == 1
