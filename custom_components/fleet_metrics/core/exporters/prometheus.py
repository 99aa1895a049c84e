"""Prometheus exposition: the last value of every series, forgotten after a TTL.

The sink is a ``prometheus_client`` collector, so any registry can render it. The runner
uses ``render()`` instead, which writes the same bytes as ``generate_latest`` (a test holds
them equal) several times faster: ``generate_latest`` validates and escapes every label of
every sample on every scrape, about 12 µs per sample on the ``make bench`` machine, while a
series' label text never changes and is escaped here once, when the series first appears.

Names are made to pass ``promtool check metrics`` (its lint included) whatever a source
sends, by these rules, applied in order:

1. Metric and label names are lower case; every run of other characters than ``a-z0-9``
   becomes one ``_``; leading and trailing ``_`` go; a leading digit gets a ``_`` before it.
2. A metric name part (between ``_``) that promtool reads as a unit other than a base unit
   (``minutes``, ``kilobytes``, ``fahrenheit``), as an abbreviated unit (``ms``, ``s``, ``kb``)
   or as a metric type (``gauge``, ``counter``) is joined to the part before it
   (``uptime_minutes`` -> ``uptimeminutes``; at the start, to the part after it).
3. A gauge or histogram whose name ends in ``_total``, ``_count``, ``_sum`` or ``_bucket``
   gets ``_value`` appended (``tasmota_sensor_total`` -> ``tasmota_sensor_total_value``):
   only counters end in ``_total``, and the other endings name a histogram's own series
   (promtool would read histogram ``x_sum`` as part of histogram ``x``).
4. A tag named ``le`` or ``quantile`` becomes the label ``tag_le`` / ``tag_quantile``; when
   two tags give the same label, the tag whose own name sorts first is kept.

A name a source declares (a key of the HELP texts given to the sink, e.g. through
``add_help``) is written as it is when it is a valid Prometheus name: the rules above exist
for names that arrive over the wire, while a declared name was chosen on purpose, such as
node_exporter's ``node_memory_MemTotal_bytes`` that rule 1 would lower-case. Samples meant
only for line protocol (``Sample.sink``) are skipped.

A family that a source sends as a whole set each tick (``SetSample``: a top-N
ranking, devices counted by firmware version) holds exactly the newest set: the first
sample of a new set drops the series of the one before, so that a symbol that left rank 1
is gone from the next scrape instead of lingering for the TTL, and the samples that follow
come back in as new series under the cap. A source emits a tick's samples without yielding
to the event loop, so no scrape sees a set half written (a paused ``render_chunks`` has
already copied the family it is in). Such sets are meant to be small: each new set rewrites
its series.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PromSample
from prometheus_client.utils import floatToGoString

from ..sample import SINK_PROMETHEUS, Histogram, Sample, SetSample

_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9]+")
_PROMETHEUS_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

# What promtool's lint (client_golang's promlint) objects to in a metric name part.
_BASE_UNITS = ("amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres",
               "seconds", "volts")  # fmt: skip
_OTHER_UNITS = ("minutes", "hours", "days", "weeks", "kelvins", "fahrenheit", "rankine",
                "inches", "yards", "miles", "bits", "calories", "pounds", "ounces")  # fmt: skip
_UNIT_PREFIXES = ("pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto",
                  "kilo", "kibi", "mega", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
                  "")  # fmt: skip
_UNIT_WORDS = frozenset(
    prefix + unit for prefix in _UNIT_PREFIXES for unit in _BASE_UNITS + _OTHER_UNITS
) - frozenset(_BASE_UNITS)
_NOT_AFTER_UNDERSCORE = frozenset(
    {"counter", "gauge", "histogram", "summary"}  # a type in the name
    | {"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"}
)
_RESERVED_ENDINGS = {
    "gauge": frozenset({"total", "count", "sum", "bucket"}),
    "histogram": frozenset({"total", "count", "sum", "bucket"}),
    "counter": frozenset(),
}
_RESERVED_LABELS = frozenset({"le", "quantile"})
# The name caches hold one entry per distinct name; a flood of names only costs a refill.
_CACHE_SIZE = 100_000

DEFAULT_MAX_SERIES = 100_000
LabelKey = tuple[tuple[str, str], ...]
ScopeKey = tuple[str, ...]  # the values of a CompleteSet's scope tags
_Value = tuple[float | Histogram, float]  # a series' value and when it expires
# prometheus_client's own value formatting (Go's float syntax); the library leaves it untyped.
_format_value: Callable[[float], str] = floatToGoString


def _clean(name: str, empty: str) -> str:
    """Rule 1: ``[a-z_][a-z0-9_]*`` without ``__`` or a trailing ``_``."""
    cleaned = _INVALID_NAME_CHARS.sub("_", name.lower()).strip("_") or empty
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _reserved(parts: list[str], index: int) -> bool:
    part = parts[index]
    return part in _UNIT_WORDS or (index > 0 and part in _NOT_AFTER_UNDERSCORE)


def sanitize_metric_name(name: str, kind: str = "gauge") -> str:
    """Any string as a metric name of ``kind`` that promtool accepts (module doc, rules 1-3)."""
    parts = _clean(name, "value").split("_")
    while True:
        index = next((i for i in range(len(parts)) if _reserved(parts, i)), None)
        if index is None:
            break
        if index > 0:
            parts[index - 1 : index + 1] = [parts[index - 1] + parts[index]]
        elif len(parts) > 1:
            parts[0:2] = [parts[0] + parts[1]]
        else:
            parts[0] += "value"
    if parts[-1] in _RESERVED_ENDINGS.get(kind, _RESERVED_ENDINGS["gauge"]):
        parts.append("value")
    return "_".join(parts)


def sanitize_label_name(name: str) -> str:
    """Any string as a label name promtool accepts (module doc, rules 1 and 4)."""
    cleaned = _clean(name, "label")
    return f"tag_{cleaned}" if cleaned in _RESERVED_LABELS else cleaned


def _utf8(text: str) -> str:
    """``text`` without lone surrogates, which no UTF-8 output can carry."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(slots=True)
class _Set:
    """A family's newest complete set in one scope: the tick that sent it, and its series."""

    time_ns: int
    members: set[LabelKey] = field(default_factory=set)


@dataclass(slots=True)
class _Family:
    kind: str  # "gauge" | "counter" | "histogram"
    help: str
    series: dict[LabelKey, _Value] = field(default_factory=dict)
    sets: dict[ScopeKey, _Set] = field(default_factory=dict)  # only for SetSample


class PrometheusSink(Collector):
    """Keeps the newest value of every series and renders them on scrape.

    ``help_texts`` maps full metric names (without ``_total``) to their HELP line.

    Series are keyed by what sources received, so their number is capped: a series new
    beyond ``max_series`` first pushes out the least recently updated tenth (counted in
    ``evicted``). Sources cap their own tables, but a device a source forgets would
    otherwise stay here for the whole TTL, and nothing expires without scrapes.
    """

    def __init__(
        self,
        ttl: float = 300.0,
        help_texts: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.ttl = ttl
        self.max_series = max_series
        self.evicted = 0
        self._count = 0
        self._help = dict(help_texts or {})
        self._clock = clock
        self._families: dict[str, _Family] = {}
        self._names: dict[tuple[str, str, str], str] = {}
        self._labels: dict[str, str] = {}
        self._label_owner: dict[str, str] = {}  # label -> the first tag name that gave it
        self._clashing: set[str] = set()  # labels more than one tag name gives
        self._label_text: dict[LabelKey, str] = {}

    def add_help(self, help_texts: Mapping[str, str]) -> None:
        self._help.update(help_texts)

    def _metric_name(self, measurement: str, field_name: str, kind: str) -> str:
        key = (measurement, field_name, kind)
        name = self._names.get(key)
        if name is None:
            if len(self._names) >= _CACHE_SIZE:
                self._names.clear()
            full = f"{measurement}_{field_name}" if field_name else measurement
            name = self._names[key] = metric_name(full, kind, self._help)
        return name

    def _label_key(self, tags: Mapping[str, str]) -> LabelKey:
        labels = self._labels
        items = []
        for key, value in tags.items():
            if not value:
                continue
            label = labels.get(key)
            if label is None:
                label = self._new_label(key)
            items.append((label, _utf8(value)))
        items.sort()
        if self._clashing and any(label in self._clashing for label, _ in items):
            return self._first_tag_wins(tags)
        return tuple(items)

    def _new_label(self, key: str) -> str:
        """Sanitise and cache a tag name; note labels that two tag names share."""
        if len(self._labels) >= _CACHE_SIZE:
            self._labels.clear()
            self._label_owner.clear()
        label = self._labels[key] = sanitize_label_name(key)
        if self._label_owner.setdefault(label, key) != key:
            self._clashing.add(label)
        return label

    def _first_tag_wins(self, tags: Mapping[str, str]) -> LabelKey:
        """Two tags with one label name (``a b`` and ``a_b``): the first tag name wins."""
        chosen: dict[str, str] = {}
        for key in sorted(tags):
            if tags[key]:
                chosen.setdefault(self._labels.get(key) or self._new_label(key), _utf8(tags[key]))
        return tuple(sorted(chosen.items()))

    def _family(self, name: str, kind: str, fallback_help: str) -> _Family:
        family = self._families.get(name)
        if family is None:
            help_text = self._help.get(name) or ""
            if not help_text.strip():
                help_text = _utf8(fallback_help)
            family = self._families[name] = _Family(kind, help_text)
        return family

    def add(self, sample: Sample) -> None:
        if sample.sink is not None and sample.sink != SINK_PROMETHEUS:
            return
        expires = self._clock() + self.ttl
        label_key = self._label_key(sample.tags)
        if isinstance(sample, SetSample):
            self._enter_sets(sample, label_key)
        if sample.histogram is not None:
            name = self._metric_name(sample.measurement, "", "histogram")
            family = self._family(name, "histogram", f"distribution of {sample.measurement}")
            if label_key not in family.series:
                self._make_room()
            family.series[label_key] = (sample.histogram, expires)
        for field_name, value in sample.fields.items():
            if isinstance(value, str):
                continue  # text has no place in a sample value; sources put it in tags
            kind = "counter" if field_name in sample.counters else "gauge"
            name = self._metric_name(sample.measurement, field_name, kind)
            family = self._family(name, kind, f"{field_name} of {sample.measurement}")
            series = family.series
            if label_key not in series:
                self._make_room()
            series[label_key] = (float(value), expires)

    def _enter_sets(self, sample: SetSample, label_key: LabelKey) -> None:
        """Start or go on with the set of each family ``sample.complete`` names, in the
        sample's scope. A sample of another tick than the set's starts a new set: the old
        set's series go first (and leave the count), then ``add`` writes this sample's values.
        """
        complete = sample.complete
        scope = tuple(sample.tags.get(tag, "") for tag in complete.scope)
        measurement, fields = sample.measurement, sample.fields
        for field_name in complete.fields:
            value = fields.get(field_name)
            carried = value is not None and not isinstance(value, str)  # str: add skips it
            kind = "counter" if field_name in sample.counters else "gauge"
            name = self._metric_name(measurement, field_name, kind)
            if carried:
                family = self._family(name, kind, f"{field_name} of {measurement}")
            elif (existing := self._families.get(name)) is not None:
                family = existing
            else:
                continue  # an empty set of a family with no series: nothing to drop
            current = family.sets.get(scope)
            if current is None or current.time_ns != sample.time_ns:
                if current is not None:
                    self._drop(family.series, current.members)
                current = family.sets[scope] = _Set(sample.time_ns)
            if carried:
                current.members.add(label_key)

    def _drop(self, series: dict[LabelKey, _Value], keys: set[LabelKey]) -> None:
        for key in keys:
            if series.pop(key, None) is not None:
                self._count -= 1
                self._label_text.pop(key, None)

    def _make_room(self) -> None:
        """Count one new series; at the cap, first forget the least recently updated tenth.

        One pass over every series per tenth of the cap keeps the cost per new series small
        (and nothing on updates of known series).
        """
        if self._count >= self.max_series:
            families = self._families.values()
            expiries = [expires for family in families for _, expires in family.series.values()]
            cutoff = heapq.nsmallest(max(1, len(expiries) // 10), expiries)[-1]
            for family in families:
                series = family.series
                oldest = [key for key, (_, expires) in series.items() if expires <= cutoff]
                for key in oldest:
                    del series[key]
                    self._label_text.pop(key, None)
                self._count -= len(oldest)
                self.evicted += len(oldest)
        self._count += 1

    def series_count(self) -> int:
        return self._count

    def describe(self) -> list[Metric]:
        # Without this the registry would call collect() at registration to learn names.
        return []

    def _live(self) -> Iterator[tuple[str, _Family]]:
        """Families in name order, each without its expired series; empty ones forgotten."""
        now = self._clock()
        for name in sorted(self._families):
            family = self._families.get(name)
            if family is None:  # forgotten while a chunked render was paused
                continue
            series = family.series
            expired = [key for key, (_, expires) in series.items() if expires < now]
            for key in expired:
                del series[key]
                self._label_text.pop(key, None)
            self._count -= len(expired)
            sets = family.sets
            if sets and (expired or len(sets) > len(series)):
                # Sets whose series all expired or were evicted: bounded by the live series.
                family.sets = {
                    scope: kept
                    for scope, kept in sets.items()
                    if any(key in series for key in kept.members)
                }
            if series:
                yield name, family
            else:
                self._families.pop(name, None)

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
        return "".join(self.render_chunks())

    def render_chunks(self, max_lines: int = 1000) -> Iterator[str]:
        """``render()`` in pieces of about ``max_lines`` lines, so that a server can let the
        event loop run between them. Safe when samples arrive between pieces: the family
        names and each family's series are copied before they are walked."""
        out: list[str] = []
        for name, family in self._live():
            exposed = f"{name}_total" if family.kind == "counter" else name
            help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {exposed} {help_text}\n# TYPE {exposed} {family.kind}\n")
            for labels, (value, _) in list(family.series.items()):
                if isinstance(value, Histogram):
                    if family.kind == "histogram":
                        out.extend(_histogram_lines(name, labels, value))
                elif family.kind != "histogram":
                    text = self._label_text.get(labels)
                    if text is None:
                        text = self._label_text[labels] = _label_text(labels)
                    out.append(f"{exposed}{text} {_format_value(value)}\n")
                if len(out) >= max_lines:
                    yield "".join(out)
                    out.clear()
        if out:
            yield "".join(out)


def metric_name(full: str, kind: str, declared: Mapping[str, str]) -> str:
    """The exposed name of ``full`` (module doc): verbatim when declared and valid."""
    if full in declared and _PROMETHEUS_NAME.fullmatch(full):
        return full
    return sanitize_metric_name(full, kind)


def label_text(labels: LabelKey) -> str:
    """``{a="1",b="2"}`` of valid label names in order, values escaped (and UTF-8 safe)."""
    return _label_text(tuple((key, _utf8(value)) for key, value in labels))


format_value = _format_value


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
