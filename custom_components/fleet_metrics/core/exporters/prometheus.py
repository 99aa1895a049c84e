"""Prometheus exposition: the last value of every series, forgotten after a TTL.

Rendering goes through ``prometheus_client``'s custom-collector API so the text format,
escaping and HELP/TYPE lines are the library's; this module only keeps the state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PromSample

from ..sample import Sample

_INVALID_METRIC_CHARS = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]+")

LabelKey = tuple[tuple[str, str], ...]


def sanitize_metric_name(name: str) -> str:
    """Map any string onto ``[a-zA-Z_:][a-zA-Z0-9_:]*``."""
    cleaned = _INVALID_METRIC_CHARS.sub("_", name).strip("_") or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def sanitize_label_name(name: str) -> str:
    """Map any string onto ``[a-zA-Z_][a-zA-Z0-9_]*``; ``__`` is reserved for Prometheus."""
    cleaned = _INVALID_LABEL_CHARS.sub("_", name).strip("_") or "label"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


@dataclass(slots=True)
class _Family:
    kind: str  # "gauge" | "counter"
    help: str
    series: dict[LabelKey, tuple[float, float]] = field(default_factory=dict)


class PrometheusSink(Collector):
    """Keeps the newest value of every series and renders them on scrape.

    ``help_texts`` maps full metric names (without ``_total``) to their HELP line.
    """

    def __init__(
        self,
        ttl: float = 300.0,
        help_texts: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._help = dict(help_texts or {})
        self._clock = clock
        self._families: dict[str, _Family] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._labels: dict[str, str] = {}

    def add_help(self, help_texts: Mapping[str, str]) -> None:
        self._help.update(help_texts)

    def _metric_name(self, measurement: str, field_name: str) -> str:
        key = (measurement, field_name)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = sanitize_metric_name(f"{measurement}_{field_name}")
        return name

    def _label_key(self, tags: Mapping[str, str]) -> LabelKey:
        labels = self._labels
        items = []
        for key, value in tags.items():
            if not value:
                continue
            label = labels.get(key)
            if label is None:
                label = labels[key] = sanitize_label_name(key)
            items.append((label, value))
        items.sort()
        return tuple(items)

    def add(self, sample: Sample) -> None:
        expires = self._clock() + self.ttl
        label_key = self._label_key(sample.tags)
        for field_name, value in sample.fields.items():
            if isinstance(value, str):
                continue  # text has no place in a sample value; sources put it in tags
            name = self._metric_name(sample.measurement, field_name)
            family = self._families.get(name)
            if family is None:
                kind = "counter" if field_name in sample.counters else "gauge"
                help_text = self._help.get(name) or f"{field_name} of {sample.measurement}"
                family = self._families[name] = _Family(kind, help_text)
            family.series[label_key] = (float(value), expires)

    def series_count(self) -> int:
        return sum(len(family.series) for family in self._families.values())

    def describe(self) -> list[Metric]:
        # Without this the registry would call collect() at registration to learn names.
        return []

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        for name in sorted(self._families):
            family = self._families[name]
            series = family.series
            expired = [key for key, (_, expires) in series.items() if expires < now]
            for key in expired:
                del series[key]
            if not series:
                continue
            metric = Metric(name, family.help, family.kind)
            sample_name = f"{name}_total" if family.kind == "counter" else name
            metric.samples = [
                PromSample(sample_name, dict(labels), value, None, None)
                for labels, (value, _) in series.items()
            ]
            yield metric
