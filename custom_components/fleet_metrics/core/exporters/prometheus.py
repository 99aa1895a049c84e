"""Prometheus exposition: the last value of every series, forgotten after a TTL.

The sink is a ``prometheus_client`` collector, so any registry can render it. The runner
uses ``render()`` instead, which writes the same bytes as ``generate_latest`` (a test holds
them equal) several times faster: ``generate_latest`` validates and escapes every label of
every sample on every scrape, about 12 µs per sample on the ``make bench`` machine, while a
series' label text never changes and is escaped here once, when the series first appears.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PromSample
from prometheus_client.utils import floatToGoString

from ..sample import Histogram, Sample

_INVALID_METRIC_CHARS = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]+")

LabelKey = tuple[tuple[str, str], ...]
# prometheus_client's own value formatting (Go's float syntax); the library leaves it untyped.
_format_value: Callable[[float], str] = floatToGoString


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
    kind: str  # "gauge" | "counter" | "histogram"
    help: str
    series: dict[LabelKey, tuple[float | Histogram, float]] = field(default_factory=dict)


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
        self._label_text: dict[LabelKey, str] = {}

    def add_help(self, help_texts: Mapping[str, str]) -> None:
        self._help.update(help_texts)

    def _metric_name(self, measurement: str, field_name: str) -> str:
        key = (measurement, field_name)
        name = self._names.get(key)
        if name is None:
            full = f"{measurement}_{field_name}" if field_name else measurement
            name = self._names[key] = sanitize_metric_name(full)
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

    def _family(self, name: str, kind: str, fallback_help: str) -> _Family:
        family = self._families.get(name)
        if family is None:
            help_text = self._help.get(name) or fallback_help
            family = self._families[name] = _Family(kind, help_text)
        return family

    def add(self, sample: Sample) -> None:
        expires = self._clock() + self.ttl
        label_key = self._label_key(sample.tags)
        if sample.histogram is not None:
            name = self._metric_name(sample.measurement, "")
            family = self._family(name, "histogram", f"distribution of {sample.measurement}")
            family.series[label_key] = (sample.histogram, expires)
        for field_name, value in sample.fields.items():
            if isinstance(value, str):
                continue  # text has no place in a sample value; sources put it in tags
            name = self._metric_name(sample.measurement, field_name)
            kind = "counter" if field_name in sample.counters else "gauge"
            family = self._family(name, kind, f"{field_name} of {sample.measurement}")
            family.series[label_key] = (float(value), expires)

    def series_count(self) -> int:
        return sum(len(family.series) for family in self._families.values())

    def describe(self) -> list[Metric]:
        # Without this the registry would call collect() at registration to learn names.
        return []

    def _live(self) -> Iterator[tuple[str, _Family]]:
        """Families in name order, each without its expired series; empty ones skipped."""
        now = self._clock()
        for name in sorted(self._families):
            family = self._families[name]
            series = family.series
            expired = [key for key, (_, expires) in series.items() if expires < now]
            for key in expired:
                del series[key]
                self._label_text.pop(key, None)
            if series:
                yield name, family

    def collect(self) -> Iterator[Metric]:
        for name, family in self._live():
            metric = Metric(name, family.help, family.kind)
            if family.kind == "histogram":
                metric.samples = [
                    sample
                    for labels, (value, _) in family.series.items()
                    if isinstance(value, Histogram)
                    for sample in _histogram_samples(name, dict(labels), value)
                ]
            else:
                sample_name = f"{name}_total" if family.kind == "counter" else name
                metric.samples = [
                    PromSample(sample_name, dict(labels), float(value), None, None)
                    for labels, (value, _) in family.series.items()
                    if not isinstance(value, Histogram)
                ]
            yield metric

    def render(self) -> str:
        """The text exposition of every live series, as ``generate_latest`` writes it."""
        out: list[str] = []
        for name, family in self._live():
            exposed = f"{name}_total" if family.kind == "counter" else name
            help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {exposed} {help_text}\n# TYPE {exposed} {family.kind}\n")
            for labels, (value, _) in family.series.items():
                if isinstance(value, Histogram):
                    if family.kind == "histogram":
                        out.extend(_histogram_lines(name, labels, value))
                elif family.kind != "histogram":
                    text = self._label_text.get(labels)
                    if text is None:
                        text = self._label_text[labels] = _label_text(labels)
                    out.append(f"{exposed}{text} {_format_value(value)}\n")
        return "".join(out)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _label_text(labels: LabelKey) -> str:
    """``{a="1",b="2"}``; names are already valid and sorted (see ``_label_key``)."""
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape_label_value(value)}"' for key, value in labels) + "}"


def _histogram_lines(name: str, labels: LabelKey, value: Histogram) -> list[str]:
    lines = []
    for bound, count in value.buckets:
        le = "+Inf" if math.isinf(bound) else repr(float(bound))
        lines.append(f"{name}_bucket{_label_text(tuple(sorted((*labels, ('le', le)))))} "
                     f"{_format_value(count)}\n")  # fmt: skip
    text = _label_text(labels)
    lines.append(f"{name}_count{text} {_format_value(value.count)}\n")
    lines.append(f"{name}_sum{text} {_format_value(value.sum)}\n")
    return lines


def _histogram_samples(name: str, labels: dict[str, str], value: Histogram) -> list[PromSample]:
    out = [
        PromSample(
            f"{name}_bucket",
            {**labels, "le": "+Inf" if math.isinf(bound) else repr(float(bound))},
            float(count),
            None,
            None,
        )
        for bound, count in value.buckets
    ]
    out.append(PromSample(f"{name}_count", labels, float(value.count), None, None))
    out.append(PromSample(f"{name}_sum", labels, value.sum, None, None))
    return out
