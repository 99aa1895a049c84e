"""Publishes prebuilt MQTT 3.1.1 PUBLISH packets (QoS 0) over a plain socket, paced.

The load generator shares two cores with the broker and the runner under test, so it must
cost next to nothing per message: every packet is encoded once, up front, and sent in large
batches. A client library would spend more CPU per message than the code being measured.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _packet(header: int, body: bytes) -> bytes:
    return bytes((header,)) + _remaining_length(len(body)) + body


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    # Protocol name, level 4 (3.1.1), flags: clean session.
    variable = _string(b"MQTT") + bytes((4, 0x02)) + keepalive.to_bytes(2, "big")
    return _packet(0x10, variable + _string(client_id.encode()))


def publish_packet(topic: str, payload: bytes) -> bytes:
    return _packet(0x30, _string(topic.encode()) + payload)


DISCONNECT = b"\xe0\x00"


@dataclass
class PublishResult:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def encode(messages: Iterable[tuple[str, bytes]]) -> list[bytes]:
    return [publish_packet(topic, payload) for topic, payload in messages]


def publish(port: int, packets: list[bytes], rate: float | None, batch: int = 200) -> PublishResult:
    """Send ``packets`` at ``rate`` messages per second (None: as fast as the socket takes)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(connect_packet("fleet-metrics-bench-publisher"))
        connack = sock.recv(4)
        if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the publisher: {connack!r}")
        start = time.perf_counter()
        for index in range(0, len(packets), batch):
            sock.sendall(b"".join(packets[index : index + batch]))
            if rate:
                ahead = start + (index + batch) / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
        seconds = time.perf_counter() - start
        sock.sendall(DISCONNECT)
    return PublishResult(len(packets), seconds)
