"""An MQTT broker inside the process (amqtt), and the client loop the simulators share.

amqtt is an optional dependency (the ``demo`` extra): it is imported when a broker starts, so
``fleet-metrics simulate --broker host:port`` works without it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

_LOGGER = logging.getLogger(__name__)

# amqtt logs every connection and every state change at INFO; the demo's stderr is for the
# product's own lines, so only its warnings and errors pass.
_NOISY_LOGGERS = ("amqtt", "transitions")
RECONNECT_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str, default_port: int = 1883) -> BrokerAddress:
    """``host:port`` (or ``host``, or ``[v6]:port``); ValueError says what is wrong."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or "]" in port_text:
        host, port_text = text.strip(), str(default_port)
    host = host.strip("[]")
    if not host:
        raise ValueError(f"{text!r}: expected host:port, e.g. 127.0.0.1:1883")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return BrokerAddress(host, int(port_text))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """amqtt on ``host:port`` (``port=0``: a free one), anonymous, no ``$SYS`` topics."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.address: BrokerAddress | None = None
        self._broker: Any = None

    async def start(self) -> BrokerAddress:
        """Listen; OSError (or amqtt's BrokerError) when the port cannot be had."""
        from amqtt.broker import Broker  # the optional dependency, see the module docstring

        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        # amqtt reports the port it bound only through private members: a free port is
        # picked here instead, and picked again should another process take it meanwhile.
        attempts = 1 if self.requested_port else 5
        for attempt in range(attempts):
            port = self.requested_port or _free_port(self.host)
            broker = Broker(
                {
                    "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{port}"}},
                    "plugins": {
                        "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                            "allow_anonymous": True
                        }
                    },
                }
            )
            try:
                await broker.start()
            except Exception:
                if attempt + 1 == attempts:
                    raise
                continue
            self._broker = broker
            self.address = BrokerAddress(self.host, port)
            return self.address
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            # Messages still queued for subscribers that left are dropped on shutdown, and
            # amqtt warns about them; for a simulated fleet that stops, that is expected.
            logging.getLogger("amqtt.broker").setLevel(logging.ERROR)
            await broker.shutdown()


Publisher = Callable[[aiomqtt.Client], Awaitable[None]]


async def publish_forever(address: BrokerAddress, name: str, run: Publisher) -> None:
    """Run ``run`` on a connected client; reconnect after a lost connection, as a device
    would. ``run`` keeps its state across connections (counters keep growing)."""
    lost = False
    while True:
        try:
            async with aiomqtt.Client(address.host, address.port, identifier=name) as client:
                if lost:
                    _LOGGER.info("%s: connected to the broker again", name)
                    lost = False
                await run(client)
                return
        except aiomqtt.MqttError as err:
            if not lost:
                _LOGGER.warning("%s: broker %s unavailable (%s); retrying", name, address, err)
            lost = True
            await asyncio.sleep(RECONNECT_DELAY)
