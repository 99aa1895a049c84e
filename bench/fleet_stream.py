"""A deterministic TickrMeter message stream: the same seed gives the same bytes.

Requests and answers interleave the way a busy backend does: each answer is published a
symbol-dependent number of messages after its request, a few requests per symbol are never
answered (they become timeouts), and every kind of message has a few malformed copies. The
stream ends with one heartbeat from every known device, so the receiver holds ``known``
devices when it is done.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

import orjson

SYMBOLS = (
    "AAPL", "BTC", "ETH", "TSLA", "MSFT", "NVDA", "AMZN", "GOOG", "META", "NFLX",
    "AMD", "INTC", "SPY", "QQQ", "DOGE", "SOL", "XRP", "COIN", "PLTR", "UBER",
)  # fmt: skip
FIRMWARES = (("62p", 60), ("61k", 25), ("60b", 10), ("58", 5))
FLASH_IDS = ("c84016", "ef4016", "204016")
INNER_VERSIONS = ("3", "4")

Message = tuple[str, bytes]


@dataclass
class FleetStream:
    messages: list[Message]
    by_kind: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    devices: int = 0
    known: int = 0


def _device_ids(rng: random.Random, count: int) -> list[str]:
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids[f"{rng.getrandbits(48):012X}"] = None
    return list(ids)


def _status(rng: random.Random, device: str) -> bytes:
    firmware = rng.choices([f for f, _ in FIRMWARES], [w for _, w in FIRMWARES])[0]
    return orjson.dumps(
        {
            "status": "online",
            "firmware_version": firmware,
            "device": device,
            "battery": str(rng.randint(5, 100)),
            "iv": rng.choice(INNER_VERSIONS),
            "flash_id": rng.choice(FLASH_IDS),
            "charging": rng.choice(("0", "1")),
            "vin": f"{rng.uniform(3.4, 4.2):.2f}",
            "uptime": str(rng.randint(60, 2_000_000)),
            "wifi_lost": str(rng.randint(0, 9)),
        }
    )


def generate(
    total: int = 300_000,
    devices: int = 8_000,
    known: int = 10_000,
    seed: int = 4,
    topics: tuple[str, str, str, str, str] = (
        "STOCKPRICEUPDATE",
        "DEVICESTATUS_RES",
        "TICKRMETERBOOT",
        "DEVICE_BOOTED",
        "HTTPSTREAMSTOCKS",
    ),
) -> FleetStream:
    """About ``total`` messages from ``devices`` active devices, then ``known`` heartbeats."""
    request_topic, status_topic, boot_topic, booted_topic, stream_topic = topics
    rng = random.Random(seed)
    ids = _device_ids(rng, known)
    active = ids[:devices]
    # Symbol i answers after ~(i + 1) * 40 messages; the last two drop 5 % and 15 %.
    delay = {symbol: (index + 1) * 40 for index, symbol in enumerate(SYMBOLS)}
    drop = dict.fromkeys(SYMBOLS, 0.005) | {SYMBOLS[-2]: 0.05, SYMBOLS[-1]: 0.15}
    out = FleetStream(messages=[], devices=devices, known=known)
    due: list[tuple[int, int, str, bytes]] = []

    def put(kind: str, topic: str, payload: bytes) -> None:
        out.messages.append((topic, payload))
        out.by_kind[kind] += 1

    sequence = 0
    while len(out.messages) < total:
        while due and due[0][0] <= len(out.messages):
            _, _, topic, payload = heapq.heappop(due)
            put("response", topic, payload)
        roll = rng.random()
        device = rng.choice(active)
        if roll < 0.04:
            put("status", status_topic, _status(rng, device))
        elif roll < 0.042:
            put(
                "boot",
                rng.choice((boot_topic, booted_topic)),
                b'{"type":"BOOT","device":"%s"}' % device.encode(),
            )
        elif roll < 0.052:
            params = {"url": "https://api.example.com/stream", "symbols": rng.sample(SYMBOLS, 3)}
            put("stream", stream_topic, orjson.dumps({"device": device, "params": params}))
        elif roll < 0.055:
            kind, topic = rng.choice(
                [("request", request_topic), ("status", status_topic), ("boot", boot_topic),
                 ("stream", stream_topic), ("response", device)]
            )  # fmt: skip
            put(kind, topic, b'{"device":"' + device.encode()[:5])
            out.malformed[kind] += 1
        else:
            symbol = rng.choice(SYMBOLS)
            put(
                "request",
                request_topic,
                orjson.dumps({"type": "UPDATE", "device": device, "symbol": symbol}),
            )
            if rng.random() < drop[symbol]:
                out.unanswered += 1
                continue
            answer = orjson.dumps(
                {
                    "symbol": symbol,
                    "price": f"${rng.uniform(1, 120_000):.0f}",
                    "type": "UPDATE",
                    "change": f"{rng.uniform(-5, 5):+.2f}%",
                    "currency": "USD",
                }
            )
            sequence += 1
            at = len(out.messages) + rng.randint(delay[symbol] // 2, delay[symbol] * 3 // 2)
            heapq.heappush(due, (at, sequence, device, answer))
    while due:
        _, _, topic, payload = heapq.heappop(due)
        put("response", topic, payload)
    for device in ids:
        put("status", status_topic, _status(rng, device))
    return out
