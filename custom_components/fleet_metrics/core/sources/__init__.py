"""Every kind of source the runner can start, keyed by its config ``kind``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..source import Source
from . import demo
from .opendtu import source as opendtu


@dataclass(frozen=True, slots=True)
class SourceKind:
    source_class: type[Source]
    schema: Mapping[Any, Any]


KINDS: dict[str, SourceKind] = {
    "demo": SourceKind(demo.DemoSource, demo.SCHEMA),
    "opendtu": SourceKind(opendtu.OpenDtuSource, opendtu.SCHEMA),
}


def create_source(config: Mapping[str, Any]) -> Source:
    kind = KINDS[config["kind"]]
    return kind.source_class(config["name"], config)
