"""Splits the broker's byte stream into MQTT packets and decodes QoS 0 PUBLISH itself.

paho-mqtt spends about 33 µs of CPU on each received message on the 2-core machine
``make bench`` runs on: three ``recv`` calls per packet, a message object with its own
``threading.Condition``, struct formats built per packet, debug logging and callback locks.
At 20,000 messages a second that is two thirds of a core before any work is done. A QoS 0
PUBLISH (what device fleets send) has a fixed layout, so it is decoded here in a few
microseconds. Every other packet (CONNACK, SUBACK, PINGRESP, QoS 1 and 2, a topic alias,
anything malformed) is handed to paho whole, so acknowledgements, protocol errors and
disconnects stay paho's.
"""

from __future__ import annotations

from collections.abc import Callable

from .topic_router import Handler

# Takes one whole packet (or, when the stream is broken, everything left); False: stop.
ToPaho = Callable[[bytes], bool]

_PUBLISH_QOS0 = 0x30  # packet type 3 with both QoS bits clear
_TYPE_AND_QOS = 0xF6  # ignores the DUP and RETAIN flags
_MAX_LENGTH_BYTES = 4


def _varint(buffer: bytes, index: int, end: int) -> tuple[int, int] | None:
    """MQTT variable byte integer at ``index``: (value, next index); None if incomplete.

    Raises ValueError when more than four bytes carry a continuation bit.
    """
    value = 0
    shift = 0
    for _ in range(_MAX_LENGTH_BYTES):
        if index >= end:
            return None
        byte = buffer[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7
    raise ValueError("variable byte integer longer than four bytes")


class PacketReader:
    """Keeps the bytes of an incomplete packet between socket reads."""

    __slots__ = ("_deliver", "_partial", "_properties")

    def __init__(self, deliver: Handler, properties: bool = False) -> None:
        self._deliver = deliver
        self._properties = properties  # MQTT 5: a property block follows the topic
        self._partial = b""

    def feed(self, data: bytes, to_paho: ToPaho) -> bool:
        """Handle every whole packet in ``data``; False once paho has given up the stream."""
        buffer = self._partial + data if self._partial else data
        end = len(buffer)
        position = 0
        deliver = self._deliver
        while position < end:
            try:
                length = _varint(buffer, position + 1, end)
            except ValueError:
                self._partial = b""
                return to_paho(buffer[position:])  # paho reports the protocol error
            if length is None or length[0] + length[1] > end:
                break
            start = length[1]
            stop = start + length[0]
            if buffer[position] & _TYPE_AND_QOS == _PUBLISH_QOS0 and (
                message := self._publish(buffer, start, stop)
            ):
                deliver(*message)
            elif not to_paho(buffer[position:stop]):
                self._partial = b""
                return False
            position = stop
        self._partial = buffer[position:]
        return True

    def _publish(self, buffer: bytes, start: int, stop: int) -> tuple[str, bytes] | None:
        """Topic and payload; None leaves the packet to paho (topic alias, malformed)."""
        topic_end = start + 2 + int.from_bytes(buffer[start : start + 2])
        if topic_end == start + 2 or topic_end > stop:
            return None
        payload = topic_end
        if self._properties:
            try:
                properties = _varint(buffer, topic_end, stop)
            except ValueError:
                return None
            if properties is None or sum(properties) > stop:
                return None
            payload = sum(properties)
        return buffer[start + 2 : topic_end].decode("utf-8", "replace"), buffer[payload:stop]
