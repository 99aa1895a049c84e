"""The QoS 0 PUBLISH fast path: every other packet must reach paho whole and in order."""

from __future__ import annotations

import pytest

from custom_components.fleet_metrics.core.mqtt.packet_reader import PacketReader


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def packet(header: int, body: bytes) -> bytes:
    return bytes([header]) + varint(len(body)) + body


def publish(
    topic: str, payload: bytes, header: int = 0x30, properties: bytes | None = None
) -> bytes:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw
    if header & 0x06:
        body += b"\x00\x07"  # packet identifier
    if properties is not None:
        body += varint(len(properties)) + properties
    return packet(header, body + payload)


SUBACK = packet(0x90, b"\x00\x01\x00")
PINGRESP = b"\xd0\x00"

Event = tuple[str, object]


def run(chunks: list[bytes], properties: bool = False) -> list[Event]:
    events: list[Event] = []
    reader = PacketReader(lambda t, p: events.append(("deliver", (t, p))), properties)

    def to_paho(raw: bytes) -> bool:
        events.append(("paho", raw))
        return True

    for chunk in chunks:
        assert reader.feed(chunk, to_paho)
    return events


def chunked(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def test_publishes_are_decoded_and_other_packets_go_to_paho_in_order() -> None:
    big = bytes(range(256)) * 80  # 20 KiB: a three-byte remaining length
    qos1 = publish("cmnd/plug/POWER", b"ON", header=0x32)
    stream = b"".join(
        [
            SUBACK,
            publish("tele/plug/SENSOR", b'{"a":1}'),
            publish("tele/plug/LWT", b"Online", header=0x31),  # retained
            qos1,
            publish("big", big),
            PINGRESP,
            publish("empty/payload", b""),
        ]
    )
    expected: list[Event] = [
        ("paho", SUBACK),
        ("deliver", ("tele/plug/SENSOR", b'{"a":1}')),
        ("deliver", ("tele/plug/LWT", b"Online")),
        ("paho", qos1),
        ("deliver", ("big", big)),
        ("paho", PINGRESP),
        ("deliver", ("empty/payload", b"")),
    ]
    # However the socket happens to cut the stream, the same events come out.
    for size in (*range(1, 40), 127, 128, 129, 4096, 16384, len(stream)):
        assert run(chunked(stream, size)) == expected, size


def test_mqtt5_properties_are_skipped_and_topic_aliases_left_to_paho() -> None:
    with_properties = publish("t", b"payload", properties=b"\x26\x00\x01k\x00\x01v")
    alias = publish("", b"aliased", properties=b"\x23\x00\x05")  # topic alias 5
    events = run(chunked(with_properties + alias, 3), properties=True)
    assert events == [("deliver", ("t", b"payload")), ("paho", alias)]


def test_an_overlong_length_hands_the_rest_to_paho() -> None:
    broken = b"\x30\xff\xff\xff\xff\x01rest"
    events = run([publish("ok", b"1") + broken])
    assert events == [("deliver", ("ok", b"1")), ("paho", broken)]


def test_a_topic_longer_than_its_packet_is_left_to_paho() -> None:
    lying = packet(0x30, b"\x00\x50short")
    assert run([lying]) == [("paho", lying)]


def test_a_topic_that_is_not_utf8_is_delivered_with_replacement_characters() -> None:
    raw = packet(0x30, b"\x00\x03a\xffb" + b"x")
    assert run([raw]) == [("deliver", ("a\ufffdb", b"x"))]


@pytest.mark.parametrize("stop_after", [1, 2])
def test_reading_stops_when_paho_gives_up_the_stream(stop_after: int) -> None:
    handed: list[bytes] = []
    delivered: list[str] = []
    reader = PacketReader(lambda t, p: delivered.append(t))

    def to_paho(raw: bytes) -> bool:
        handed.append(raw)
        return len(handed) < stop_after

    stream = SUBACK + PINGRESP + publish("after", b"")
    assert reader.feed(stream, to_paho) is False
    assert handed == [SUBACK, PINGRESP][:stop_after]
    assert delivered == [], "nothing after the packet paho refused is read"
