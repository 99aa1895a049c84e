"""Every kind of source the runner can start, keyed by its config ``kind``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..source import Source, SourceContext
from . import demo, websocket
from .agents import source as agents
from .opendtu import source as opendtu
from .tasmota import source as tasmota
from .tickrmeter import source as tickrmeter


@dataclass(frozen=True, slots=True)
class SourceKind:
    source_class: type[Source]
    schema: Mapping[Any, Any]


KINDS: dict[str, SourceKind] = {
    "demo": SourceKind(demo.DemoSource, demo.SCHEMA),
    "opendtu": SourceKind(opendtu.OpenDtuSource, opendtu.SCHEMA),
    "tasmota": SourceKind(tasmota.TasmotaSource, tasmota.SCHEMA),
    "websocket": SourceKind(websocket.WebSocketSource, websocket.SCHEMA),
    "tickrmeter": SourceKind(tickrmeter.TickrMeterSource, tickrmeter.SCHEMA),
    "agents": SourceKind(agents.AgentsSource, agents.SCHEMA),
}


def create_source(config: Mapping[str, Any], context: SourceContext | None = None) -> Source:
    kind = KINDS[config["kind"]]
    return kind.source_class(config["name"], config, context)
