"""The embedded broker and the simulators' client loop, with a real aiomqtt client."""

from __future__ import annotations

import asyncio
import socket

import aiomqtt
import pytest
from fleet_metrics.simulators import broker as broker_module
from fleet_metrics.simulators.broker import (
    BrokerAddress,
    EmbeddedBroker,
    parse_address,
    publish_forever,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import running


async def test_port_zero_gets_a_free_port_that_carries_retained_messages() -> None:
    broker = EmbeddedBroker(port=0)
    address = await broker.start()
    try:
        assert address.port > 0
        async with aiomqtt.Client(address.host, address.port) as client:
            await client.publish("tasmota/discovery/X/config", b"{}", retain=True)
        async with aiomqtt.Client(address.host, address.port) as late:
            await late.subscribe("tasmota/#")
            async with asyncio.timeout(5):
                message = await anext(late.messages)
        assert (str(message.topic), message.payload, message.retain) == (
            "tasmota/discovery/X/config",
            b"{}",
            True,
        )
    finally:
        await broker.stop()
    with socket.socket() as sock:  # stopped: the port is free again
        sock.bind(("127.0.0.1", address.port))


async def test_a_taken_port_is_an_error_not_another_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        broker = EmbeddedBroker(port=taken)
        with pytest.raises(Exception, match=str(taken)):
            await broker.start()
    assert broker.address is None


async def test_publish_forever_reconnects_and_keeps_the_publisher_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broker_module, "RECONNECT_DELAY", 0.05)
    broker = EmbeddedBroker(port=0)
    address = await broker.start()
    sent: list[int] = []

    async def publisher(client: aiomqtt.Client) -> None:
        while True:
            await client.publish("count", str(len(sent)).encode())
            sent.append(len(sent))
            await asyncio.sleep(0.02)

    try:
        async with running(publish_forever(address, "counter", publisher)) as (task,):
            async with asyncio.timeout(5):
                while len(sent) < 3:
                    await asyncio.sleep(0.01)
            await broker.stop()  # the connection is lost; the loop waits and retries
            await asyncio.sleep(0.3)
            assert not task.done()
            before = len(sent)
            broker = EmbeddedBroker(port=address.port)
            await broker.start()
            async with asyncio.timeout(10):
                while len(sent) < before + 3:
                    await asyncio.sleep(0.02)
            assert sent == list(range(len(sent)))  # one counter across both connections
    finally:
        await broker.stop()


@settings(max_examples=200, deadline=None)
@given(host=st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True), port=st.integers(1, 65535))
def test_parse_address_round_trips(host: str, port: int) -> None:
    assert parse_address(f"{host}:{port}") == BrokerAddress(host, port)
    assert str(parse_address(f"{host}:{port}")) == f"{host}:{port}"
    assert parse_address(host) == BrokerAddress(host, 1883)


@pytest.mark.parametrize("text", ["", ":1883", "host:0", "host:65536", "host:x", "host:-1"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|port"):
        parse_address(text)


def test_parse_address_takes_bracketed_ipv6() -> None:
    assert parse_address("[::1]:1884") == BrokerAddress("::1", 1884)
