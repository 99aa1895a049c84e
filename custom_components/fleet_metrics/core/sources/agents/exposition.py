"""Host readings on ``/metrics`` under node_exporter's names, mapped when scraped.

Every host sends about 40 readings a second and is scraped every 15 s or more, so the hub
does not turn readings into Prometheus series as they arrive (names, labels and the sink's
table cost more than everything else a batch needs): it keeps each host's newest reading per
series as it arrived (``HostState.readings``), and this collector maps them when scraped.

What is exposed, and for how long:
- a reading for ``ttl`` seconds after it arrived (the ``[prometheus] ttl`` every other
  source's series have), so that a disk or an interface that is gone goes away; a host
  removed from the registry goes at once, readings and all;
- every registered host's ``fleet_agent_*`` status (up, last seen, batch counters), always:
  it is the hub's own state, not a reading (``up`` is 0 once the host is offline);
- names are node_exporter's with node_exporter's types (CPU, network and disk counters, the
  rest gauges), ZFS and Proxmox VE readings under node_exporter's and
  prometheus-pve-exporter's names (``naming.TABLES``; counters per field,
  ``naming.COUNTER_FIELDS``), a pool's state in node_exporter's enum shape
  (``node_zfs_zpool_state{zpool,state}``, one series per state), a guest's names as the
  info family ``pve_guest_info{id,name,type,tags}`` = 1; a measurement with no such name
  becomes
  ``fleet_agent_<measurement>_<field>`` under the sink's rules (``exporters.prometheus``),
  typed by the agent's counters, its tags labels; a name the agents' own families use is
  not given to such a measurement.

It is a ``prometheus_client`` collector (``collect``), and ``render_chunks`` writes the same
exposition as text directly, as the sink does, for the runner's ``/metrics``.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ...exporters.prometheus import format_value, label_text, metric_name, sanitize_label_name
from ...sample import FieldValue
from .naming import (
    COUNTER_FIELDS,
    GUEST_INFO_FIELDS,
    GUEST_MODES,
    HELP,
    INFO_TAGS,
    LOWERCASE_TAGS,
    TABLES,
)

if TYPE_CHECKING:
    from .hub import HostState, Hub

TagKey = tuple[tuple[str, str], ...]


class Shape:
    """The field names and counters a reading has, shared by every reading of that shape
    (a host sends the same few shapes every second), with each name's position."""

    __slots__ = ("counters", "index", "names")

    def __init__(self, names: tuple[str, ...], counters: frozenset[str]) -> None:
        self.names = names
        self.counters = counters
        self.index = {name: position for position, name in enumerate(names)}


_SHAPES: dict[tuple[tuple[str, ...], frozenset[str]], Shape] = {}
_MAX_SHAPES: Final = 4096


def shape_of(names: tuple[str, ...], counters: AbstractSet[str]) -> Shape:
    """The one ``Shape`` of ``names`` and ``counters``; bounded: a flood of made-up shapes
    only costs a refill (readings keep the shapes they have)."""
    if type(counters) is not frozenset:
        counters = frozenset(counters)  # a ``Sample`` made in process may hold a set
    key = (names, counters)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        shape = _SHAPES[key] = Shape(names, counters)
    return shape


Values = Sequence[FieldValue]


def values_of(fields: Mapping[str, FieldValue]) -> Values:
    """A reading's values in its shape's order, as compact as they go: doubles when every
    one is a number (``/metrics`` writes ``float(value)`` of each, so nothing is lost), a
    tuple when some are strings. A dict per reading was most of the server's memory."""
    values = tuple(fields.values())
    try:
        return array("d", values)  # type: ignore[type-var]  # refused unless all numbers
    except (TypeError, OverflowError):
        return values


class Reading:
    """A series' newest reading: updated in place, so that its label text, made at the
    first scrape, stays with it (``labels``: the text, or by CPU mode for ``cpu``; ``info``:
    an info family's label values from string fields, which may change, and its text)."""

    __slots__ = ("arrived", "info", "labels", "shape", "values")

    def __init__(self, shape: Shape, values: Values, arrived: float) -> None:
        self.shape = shape
        self.values = values
        self.arrived = arrived  # the hub's clock
        self.labels: str | dict[str, str] | None = None
        self.info: tuple[tuple[str, ...], str] | None = None

    def get(self, name: str) -> FieldValue | None:
        position = self.shape.index.get(name)
        return None if position is None else self.values[position]

    def items(self) -> Iterator[tuple[str, FieldValue]]:
        return zip(self.shape.names, self.values, strict=True)


_NAME_CACHE: Final = 100_000


@dataclass(frozen=True, slots=True)
class _Column:
    """Where a family's series come from: ``style`` says how a reading gives them."""

    style: str  # "table" | "cpu" | "guest" | "info" | "guest_info" | "boot" | "status" | "other"
    measurement: str = ""
    field: str = ""  # the reading's field; for "status" the HostState attribute
    kept: tuple[str, ...] = ()  # tags kept as labels ("table")
    counter: bool = False  # "other": only readings that mark the field so


@dataclass(slots=True)
class _Family:
    name: str  # without _total
    kind: str
    help: str
    columns: list[_Column] = field(default_factory=list)

    @property
    def measurements(self) -> set[str]:
        return {column.measurement for column in self.columns}


def _static() -> dict[str, _Family]:
    families: dict[str, _Family] = {}

    def add(name: str, kind: str, column: _Column) -> None:
        families.setdefault(name, _Family(name, kind, HELP.get(name, name))).columns.append(column)

    for measurement, (prefix, names, kept) in TABLES.items():
        counters = COUNTER_FIELDS.get(measurement, frozenset())
        for key, name in names.items():
            kind = "counter" if key in counters else "gauge"
            add(f"{prefix}_{name}", kind, _Column("table", measurement, key, kept))
    add("pve_guest_info", "gauge", _Column("guest_info", "pve_guest"))
    add("node_cpu_seconds", "counter", _Column("cpu", "cpu"))
    add("node_cpu_guest_seconds", "counter", _Column("guest", "cpu"))
    add("fleet_agent_info", "gauge", _Column("info", "host"))
    add("node_boot_time_seconds", "gauge", _Column("boot", "host", "boot_time_seconds"))
    add("fleet_agent_up", "gauge", _Column("status", field="online"))
    add("fleet_agent_last_seen_timestamp_seconds", "gauge", _Column("status", field="last_seen"))
    for name in ("received", "replayed", "duplicate"):
        add(f"fleet_agent_batches_{name}", "counter", _Column("status", field=f"batches_{name}"))
    for name in ("seq_gaps", "samples_dropped"):
        add(f"fleet_agent_{name}", "counter", _Column("status", field=name))
    return families


_STATIC: Final = _static()
_KNOWN: Final = frozenset({*TABLES, "cpu", "host"})


class HostsExposition(Collector):
    """The hub's hosts as Prometheus families (module doc); ``ttl`` in seconds."""

    def __init__(
        self, hub: Hub, ttl: float = 300.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.hub = hub
        self.ttl = ttl
        self._clock = clock
        self._names: dict[tuple[str, str, bool], str] = {}

    def describe(self) -> list[Metric]:
        return []  # without this the registry would collect at registration

    def expire(self) -> None:
        """Forget readings older than ``ttl``."""
        cutoff = self._clock() - self.ttl
        for state in self.hub.hosts.values():
            readings = state.readings
            for measurement in list(readings):
                by_tags = readings[measurement]
                stale = [key for key, reading in by_tags.items() if reading.arrived < cutoff]
                for key in stale:
                    del by_tags[key]
                state.series_count -= len(stale)
                if not by_tags:
                    del readings[measurement]

    def _families(self) -> list[_Family]:
        """The static families some host has readings for (a family of a measurement no
        host sends is not visited host by host), and those of measurements without a
        node_exporter name."""
        families = dict(_STATIC)
        extra: dict[str, _Family] = {}
        present: set[str] = {""}  # "": the hub's own status, every host has it
        for state in self.hub.hosts.values():
            for measurement, by_tags in state.readings.items():
                if measurement in _KNOWN:
                    present.add(measurement)
                    continue
                for reading in by_tags.values():
                    counters = reading.shape.counters
                    for key, value in reading.items():
                        if isinstance(value, str):
                            continue
                        counter = key in counters
                        name = self._name(measurement, key, counter)
                        if name in families:
                            continue  # the agents' own families keep their names
                        family = extra.get(name)
                        kind = "counter" if counter else "gauge"
                        if family is None:
                            family = extra[name] = _Family(name, kind, f"{key} of {measurement}")
                        column = _Column("other", measurement, key, counter=counter)
                        if family.kind == kind and column not in family.columns:
                            family.columns.append(column)
        families.update(extra)
        return [
            family
            for name in sorted(families)
            if not (family := families[name]).measurements.isdisjoint(present) or name in extra
        ]

    def _name(self, measurement: str, key: str, counter: bool) -> str:
        cache_key = (measurement, key, counter)
        name = self._names.get(cache_key)
        if name is None:
            if len(self._names) >= _NAME_CACHE:
                self._names.clear()
            full = f"fleet_agent_{measurement}_{key}" if key else f"fleet_agent_{measurement}"
            name = self._names[cache_key] = metric_name(
                full, "counter" if counter else "gauge", HELP
            )
        return name

    def collect(self) -> Iterator[Metric]:
        """The families ``render_chunks`` writes, read back by prometheus_client's parser:
        one mapping for both, and registries are the slow path here (the runner renders)."""
        yield from text_string_to_metric_families(self.render())

    def render(self) -> str:
        return "".join(self.render_chunks())

    def render_chunks(self, max_lines: int = 1000) -> Iterator[str]:
        """The text exposition, in pieces of about ``max_lines`` lines."""
        self.expire()
        out: list[str] = []
        for family in self._families():
            exposed = f"{family.name}_total" if family.kind == "counter" else family.name
            help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
            head = f"# HELP {exposed} {help_text}\n# TYPE {exposed} {family.kind}\n"
            out.append(head)
            before = len(out)
            for state in list(self.hub.hosts.values()):
                # Two readings may give one label set (tags a table does not keep, or two
                # names that sanitise alike): the first wins, as one series.
                seen: set[str] = set()
                for column in family.columns:
                    _column_lines(state, column, exposed, out, seen)
                if len(out) >= max_lines:
                    yield "".join(out)
                    out.clear()
                    before = -1
            if len(out) == before and out[-1] is head:
                out.pop()  # a family without a series is not written
        if out:
            yield "".join(out)


def _value(value: float) -> str:
    """``format_value`` (prometheus_client's ``floatToGoString``: Go's float syntax) with
    its common cases inline; a test holds the two equal."""
    text = repr(value)
    if value > 0:
        dot = text.find(".")
        if dot > 6:  # Go switches to an exponent sooner than Python
            mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
            return f"{mantissa}e+{dot - 1:02d}"
        if text[-1] != "f":  # not inf
            return text
    elif value > _NEGATIVE_INF:
        return text
    return format_value(value)  # ±inf, NaN


_NEGATIVE_INF: Final = float("-inf")


def _host_text(host: str) -> str:
    return label_text((("host", host),))


def _text(items: dict[str, str]) -> str:
    """Sorted labels without empty values (as the sink leaves them out), as text."""
    return label_text(tuple(sorted((name, value) for name, value in items.items() if value)))


def _column_lines(
    state: HostState, column: _Column, exposed: str, out: list[str], seen: set[str]
) -> None:
    """Append the lines ``state`` gives ``column``'s family."""
    style = column.style
    host = state.name
    if style == "status":
        value = getattr(state, column.field)
        if value is not None:
            out.append(f"{exposed}{_host_text(host)} {_value(float(value))}\n")
        return
    by_tags = state.readings.get(column.measurement)
    if not by_tags:
        return
    key_name = column.field
    if style == "table" or style == "other":
        for tags, reading in by_tags.items():
            shape = reading.shape
            position = shape.index.get(key_name)
            if position is None:
                continue
            value = reading.values[position]
            if type(value) is str:
                continue
            if style == "other" and (key_name in shape.counters) != column.counter:
                continue
            text = reading.labels
            if type(text) is not str:
                text = reading.labels = _series_text(host, tags, column)
            if text in seen:
                continue
            seen.add(text)
            out.append(f"{exposed}{text} {_value(float(value))}\n")
    elif style == "cpu" or style == "guest":
        guest = style == "guest"
        for tags, reading in by_tags.items():
            texts = reading.labels
            if type(texts) is not dict:
                texts = reading.labels = {}
            for mode, value in zip(reading.shape.names, reading.values, strict=True):
                if type(value) is str or (mode in GUEST_MODES) != guest:
                    continue
                text = texts.get(mode)
                if text is None:
                    cpu = dict(tags).get("cpu", "total")
                    items = {"host": host, "mode": GUEST_MODES[mode] if guest else mode}
                    if cpu != "total":
                        items["cpu"] = cpu
                    text = texts[mode] = _text(items)
                if text not in seen:
                    seen.add(text)
                    out.append(f"{exposed}{text} {_value(float(value))}\n")
    elif style == "info":
        for tags, reading in by_tags.items():
            text = reading.labels
            if type(text) is not str:
                present = dict(tags)
                items = {name: present.get(name, "") for name in INFO_TAGS}
                items["host"] = host
                text = reading.labels = _text(items)
            if text not in seen:
                seen.add(text)
                out.append(f"{exposed}{text} 1.0\n")
    elif style == "guest_info":
        for tags, reading in by_tags.items():
            values = tuple(
                value if type(value := reading.get(name)) is str else ""
                for name in GUEST_INFO_FIELDS
            )
            info = reading.info
            if info is None or info[0] != values:  # a guest renamed or retagged
                items = dict(zip(GUEST_INFO_FIELDS, values, strict=True))
                items["id"] = dict(tags).get("id", "")
                items["host"] = host
                info = reading.info = (values, _text(items))
            text = info[1]
            if text not in seen:
                seen.add(text)
                out.append(f"{exposed}{text} 1.0\n")
    elif style == "boot":  # one series per host: the newest reading that has it
        newest: tuple[float, float] | None = None
        for reading in by_tags.values():
            value = reading.get(key_name)
            if value is None or type(value) is str:
                continue
            if newest is None or reading.arrived >= newest[0]:
                newest = (reading.arrived, float(value))
        if newest is not None:
            out.append(f"{exposed}{_host_text(host)} {_value(newest[1])}\n")


def _series_text(host: str, tags: TagKey, column: _Column) -> str:
    """The labels of a table's or an unknown measurement's series."""
    if column.style == "table":
        present = dict(tags)
        items = {name: present[name] for name in column.kept if name in present}
        for name in LOWERCASE_TAGS.get(column.measurement, ()):
            if name in items:
                items[name] = items[name].lower()
    else:
        items = {}
        for name, value in sorted(tags):
            if value:
                items.setdefault(sanitize_label_name(name), value)
    items["host"] = host  # the host label is the server's, never the agent's
    return _text(items)
