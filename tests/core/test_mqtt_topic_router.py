"""Topic filters: routing follows MQTT's matching rules, and a filter is checked before any
broker sees it, the same way Mosquitto judges it (a real one decides in the property test).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.mqtt.topic_filter import (
    MAX_SEPARATORS,
    InvalidTopicFilter,
    check_filter,
)
from custom_components.fleet_metrics.core.mqtt.topic_router import TopicRouter
from tests.mosquitto import Mosquitto


@pytest.mark.parametrize(
    ("filter_", "topic", "matches"),
    [
        ("tele/+/SENSOR", "tele/plug/SENSOR", True),
        ("tele/+/SENSOR", "tele/plug/STATE", False),
        ("tele/#", "tele", True),
        ("tele/#", "tele/a/b/c", True),
        ("+/tele/SENSOR", "plug/tele/SENSOR", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("a/+", "a/", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_router_follows_mqtt_matching_rules(filter_: str, topic: str, matches: bool) -> None:
    router = TopicRouter()
    seen: list[str] = []
    router.add(filter_, lambda t, p: seen.append(t))
    assert bool(router.match(topic)) is matches


def test_router_shares_filters_and_removes_cleanly() -> None:
    router = TopicRouter()
    first: list[bytes] = []
    second: list[bytes] = []
    a = lambda t, p: first.append(p)  # noqa: E731
    b = lambda t, p: second.append(p)  # noqa: E731
    router.add("x/+", a)
    router.add("x/+", b)
    router.add("x/#", a)
    assert router.filters == ["x/+", "x/#"]
    assert router.match("x/1") == [a, b], "a handler under two matching filters runs once"
    router.remove("x/+", a)
    assert router.filters == ["x/+", "x/#"]
    router.remove("x/+", b)
    assert router.filters == ["x/#"]
    assert router.match("x/1") == [a]


BAD_FILTERS = {
    "empty": "",
    "'#' not last": "a/#/b",
    "'#' in a level": "a/b#",
    "'+' in a level": "a/x+/c",
    "'+' and '#' together": "a/+#",
    "NUL": "tele/\x00/SENSOR",
    "C0 control": "tele/\x1b[31m",
    "C1 control": "tele/\x85",
    "DEL": "tele/\x7f",
    "noncharacter": "tele/\ufdd0",
    "plane noncharacter": "tele/\U0010ffff",
    "lone surrogate": "tele/\udc80",
    "too long": "a" * 65_536,
    "too long in UTF-8": "é" * 32_768,
    "too deep": "a/" * (MAX_SEPARATORS + 1) + "a",
    "shared subscription": "$share/group/tele/#",
}


@pytest.mark.parametrize("bad", BAD_FILTERS.values(), ids=BAD_FILTERS.keys())
def test_a_bad_filter_is_refused_with_its_reason_and_leaves_no_route(bad: str) -> None:
    router = TopicRouter()
    with pytest.raises(InvalidTopicFilter, match="invalid MQTT topic filter") as raised:
        router.add(bad, lambda t, p: None)
    assert isinstance(raised.value, ValueError)
    assert len(str(raised.value)) < 300, "a 64 KiB filter is not copied into the message"
    assert router.filters == []
    assert router.match("tele/x/SENSOR") == []


@pytest.mark.parametrize(
    "good", ["#", "+", "/", "a//b", "+/+/#", "$SYS/#", "tele/é/😀", "a" * 65_535, "a/" * 200 + "a"]
)
def test_edge_filters_that_are_valid_pass(good: str) -> None:
    assert check_filter(good) == good


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(raw: bytes) -> bytes:
    return len(raw).to_bytes(2, "big") + raw


class RawSubscriber:
    """A blocking MQTT 3.1.1 client that sends whatever filter bytes it is given.

    aiomqtt and paho refuse some bad filters themselves; this asks the broker.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def _connection(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            client_id = f"filter-check-{uuid.uuid4().hex[:8]}".encode()
            body = _string(b"MQTT") + b"\x04\x02\x00\x3c" + _string(client_id)
            sock.sendall(b"\x10" + _varint(len(body)) + body)
            assert self._read(sock, 4) == b"\x20\x02\x00\x00"
            self.sock = sock
        return self.sock

    @staticmethod
    def _read(sock: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size and (chunk := sock.recv(size - len(data))):
            data += chunk
        return data

    def granted(self, topic_filter: str) -> bool:
        """True: SUBACK granted it; False: the broker dropped the connection instead."""
        sock = self._connection()
        body = b"\x00\x01" + _string(topic_filter.encode()) + b"\x00"
        sock.sendall(b"\x82" + _varint(len(body)) + body)
        suback = self._read(sock, 5)
        if suback == b"\x90\x03\x00\x01\x00":
            return True
        assert suback == b"", f"unexpected answer {suback!r}"
        self.close()
        return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[RawSubscriber]:
    client = RawSubscriber(mosquitto.port)
    yield client
    client.close()


LEVEL_PARTS = st.sampled_from(
    ["a", "tele", "+", "#", "$SYS", " ", "é", "😀", "\x00", "\x01", "\x1f", "\x7f", "\x85",
     "\x9f", "\xa0", "\ufdd0", "\ufdef", "\ufffe", "\U0001ffff"]
)  # fmt: skip
LEVELS = st.lists(
    st.lists(st.one_of(LEVEL_PARTS, st.text(max_size=2)), max_size=3).map("".join),
    min_size=1,
    max_size=6,
)
FILTERS = st.one_of(LEVELS.map("/".join), st.text(max_size=12))


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(FILTERS)
@example("a/" * MAX_SEPARATORS + "a")
@example("a/" * (MAX_SEPARATORS + 1) + "a")
@example("$share/g/a")
def test_the_check_agrees_with_mosquitto(subscriber: RawSubscriber, topic_filter: str) -> None:
    """Accepted filters are granted; rejected ones would have cost the shared connection."""
    try:
        accepted = check_filter(topic_filter) == topic_filter
    except InvalidTopicFilter:
        accepted = False
        if topic_filter.startswith("$share/"):
            return  # valid MQTT, refused because routing cannot match it
        try:
            topic_filter.encode()
        except UnicodeEncodeError:
            return  # cannot even be put on the wire
    assert subscriber.granted(topic_filter) is accepted
