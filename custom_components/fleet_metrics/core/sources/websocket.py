"""A generic JSON WebSocket: configured JSON paths become fields and tags.

A frame that is not JSON (or that makes extraction fail in any way) is counted in
``rejects`` and skipped; the connection goes on. Values are checked before they leave:
numbers finite, texts short and printable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
import orjson
import voluptuous as vol

from ..backoff import Backoff
from ..sample import FieldValue, Sample
from ..source import Emit, Source, SourceContext
from ..validators import positive_seconds
from ..values import number

_LOGGER = logging.getLogger(__name__)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PathPart = str | int
# Tags and text fields longer than this, or with control characters, are left out.
MAX_TEXT = 256


def _text(value: str) -> str | None:
    return value if len(value) <= MAX_TEXT and value.isprintable() else None


def _non_finite(text: str) -> bool:
    """``"NaN"``, ``"-Infinity"``, ``"1e999"``: a number, but none an output can carry."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def compile_path(path: str) -> tuple[PathPart, ...]:
    """``data.items[0].value`` -> ("data", "items", 0, "value")."""
    parts: list[PathPart] = []
    position = 0
    text = path.strip()
    while position < len(text):
        if text[position] == ".":
            position += 1
            continue
        match = _PATH_PART.match(text, position)
        if match is None:
            raise ValueError(f"bad JSON path {path!r} at {position}")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not parts:
        raise ValueError("empty JSON path")
    return tuple(parts)


def resolve(document: Any, path: tuple[PathPart, ...]) -> Any:
    node = document
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
        elif not isinstance(node, Mapping):
            return None
        node = node[part] if isinstance(part, int) else node.get(part)
    return node


def _json_path(value: Any) -> str:
    try:
        compile_path(str(value))
    except ValueError as err:
        raise vol.Invalid(str(err)) from err
    return str(value)


def _ws_url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("ws://", "wss://")):
        raise vol.Invalid("expected a ws:// or wss:// URL")
    return value


SCHEMA: dict[Any, Any] = {
    vol.Required("url"): _ws_url,
    vol.Optional("measurement"): vol.All(str, vol.Match(_NAME)),
    vol.Required("fields"): vol.All({vol.Match(_NAME): _json_path}, vol.Length(min=1)),
    vol.Optional("tags", default={}): {vol.Match(_NAME): _json_path},
    vol.Optional("send_on_connect", default=""): str,
    vol.Optional("heartbeat", default=30.0): positive_seconds,
}


class WebSocketSource(Source):
    kind = "websocket"
    HELP: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str, config: Any, context: SourceContext | None = None) -> None:
        super().__init__(name, config, context)
        self.measurement: str = config.get("measurement") or name.replace("-", "_")
        self._fields = {key: compile_path(path) for key, path in config["fields"].items()}
        self._tags = {key: compile_path(path) for key, path in config["tags"].items()}
        self.skipped = 0
        self.connected = False

    def sample_from(self, document: Any) -> Sample | None:
        fields: dict[str, FieldValue] = {}
        for key, path in self._fields.items():
            value = resolve(document, path)
            if isinstance(value, bool):
                fields[key] = value
            elif isinstance(value, int | float):
                if (finite := number(value)) is not None:
                    fields[key] = value if isinstance(value, int) else finite
            elif isinstance(value, str):
                parsed = number(value)
                if parsed is not None:
                    fields[key] = parsed
                elif (text := _text(value)) is not None and not _non_finite(text):
                    fields[key] = text
        if not fields:
            return None
        tags = {"source": self.name}
        for key, path in self._tags.items():
            value = resolve(document, path)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            text = _text(str(value))
            if text:
                tags[key] = text
        return Sample(self.measurement, tags, fields)

    async def run(self, emit: Emit) -> None:
        backoff = Backoff(initial=1.0, maximum=60.0)
        async with aiohttp.ClientSession() as session:
            while True:
                started = time.monotonic()
                try:
                    await self._follow(session, emit)
                    reason = "closed by the server"
                except (aiohttp.ClientError, TimeoutError, OSError) as err:
                    reason = str(err) or type(err).__name__
                if self.connected or backoff.attempts == 0:
                    _LOGGER.warning("%s: WebSocket lost (%s); reconnecting", self.name, reason)
                self.connected = False
                if time.monotonic() - started > 60:
                    backoff.reset()
                await asyncio.sleep(backoff.next_delay())

    async def _follow(self, session: aiohttp.ClientSession, emit: Emit) -> None:
        async with session.ws_connect(self.config["url"], heartbeat=self.config["heartbeat"]) as ws:
            self.connected = True
            _LOGGER.info("%s: connected to %s", self.name, self.config["url"])
            if self.config["send_on_connect"]:
                await ws.send_str(self.config["send_on_connect"])
            async for message in ws:
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                self.stats.messages += 1
                self.handle(message.data, emit)
                self.stats.parse_errors = self.rejects.total

    def handle(self, data: str | bytes, emit: Emit) -> None:
        """One frame: a sample, a counted rejection, or (no configured field in it) skipped."""
        payload = data.encode(errors="replace") if isinstance(data, str) else data
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            self.rejects.reject("json", f"not JSON: {err}"[:300], self.config["url"], payload)
            return
        try:
            sample = self.sample_from(document)
        except Exception as err:  # extraction's safety net: a frame never ends the connection
            reason = f"{type(err).__name__}: {err}"[:300]
            self.rejects.reject("exception", reason, self.config["url"], payload)
            return
        if sample is None:
            self.skipped += 1
            return
        emit(sample)
        self.stats.emitted()
