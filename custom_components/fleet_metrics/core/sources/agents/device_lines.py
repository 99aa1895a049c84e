"""telegraf's ``net`` and ``diskio`` lines, each series' written by one %-format.

Most of a host's batch is per-device readings, and all their fields are integers. Escaping
and joining field by field was most of the server's CPU per batch; here each shape (which
fields a reading has, in which order) is compiled once into a format string shared by every
host and device, and a reading becomes its line in one C-level ``%`` after C-level checks of
its values (plans per series, with the line head inside, were 17 MB for 1,000 hosts). A
reading the checks refuse (a float where an integer was, a number out of int64, a value that
is no number) gets ``None`` and takes the general path, which knows what to write for each:
both give the same lines (tests/core/agent/test_naming.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Final

from ...agent.protocol import SampleData
from ...sample import FieldValue

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INTS: Final = frozenset((int,))
_NUMBERS: Final = frozenset((int, float, bool))
_MAX_PLANS: Final = 4096  # a host has so many devices; past it the plans start over

Getter = Callable[[Mapping[str, FieldValue]], Sequence[FieldValue]]


def _getter(names: Sequence[str]) -> Getter:
    """The values of ``names`` as a tuple (``itemgetter`` gives a bare value for one)."""
    if len(names) == 1:
        name = names[0]
        return lambda fields: (fields[name],)
    return itemgetter(*names)


class _Plan:
    __slots__ = ("form", "ints", "ms", "tables")

    def __init__(
        self,
        tables: tuple[Mapping[str, str], Mapping[str, str]],
        form: str | None,
        ints: Getter | None,
        ms: Getter | None,
    ) -> None:
        self.tables = tables  # the prefix tables it was made for (the key has their ids)
        self.form = form  # "a=%di,b=%di %d": the line after its head and a space
        self.ints = ints  # the integer fields, in the line's order
        self.ms = ms  # the seconds fields written as whole milliseconds (diskio)


class DeviceLines:
    """Plans by the fields' prefix tables and names; one instance serves every host."""

    __slots__ = ("_plans",)

    def __init__(self) -> None:
        self._plans: dict[tuple[object, ...], _Plan | None] = {}

    def line(
        self,
        head: str,
        sample: SampleData,
        prefixes: Mapping[str, str],
        ms_prefixes: Mapping[str, str],
    ) -> str | None:
        """The line of ``sample`` under ``head`` (``prefixes``: integer fields' ``key=``;
        ``ms_prefixes``: seconds fields written in milliseconds), or None: the general path's."""
        fields = sample.fields
        key = (id(prefixes), id(ms_prefixes), *fields)
        plan = self._plans.get(key)
        if plan is None or plan.tables[0] is not prefixes or plan.tables[1] is not ms_prefixes:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = _compile(fields, prefixes, ms_prefixes)
        if plan.form is None:
            return None
        values: list[FieldValue] = []
        if plan.ints is not None:
            ints = plan.ints(fields)
            if not _INTS.issuperset(map(type, ints)):
                return None
            if min(ints) < _INT64_MIN or max(ints) > _INT64_MAX:  # type: ignore[operator]
                return None
            values.extend(ints)
        if plan.ms is not None:
            seconds = plan.ms(fields)
            if not _NUMBERS.issuperset(map(type, seconds)):
                return None
            try:
                ms = [int(value * 1000.0) for value in seconds]  # type: ignore[operator]
            except (OverflowError, ValueError):  # infinite or NaN: not written
                return None
            if min(ms) < _INT64_MIN or max(ms) > _INT64_MAX:
                return None
            values.extend(ms)
        values.append(sample.time_ns)
        return f"{head} {plan.form % tuple(values)}"


def _compile(
    fields: Mapping[str, FieldValue],
    prefixes: Mapping[str, str],
    ms_prefixes: Mapping[str, str],
) -> _Plan:
    """The plan for readings with ``fields``' names; one without a form when none is written."""
    tables = (prefixes, ms_prefixes)
    ints = [name for name in fields if name in prefixes]
    ms = [name for name in ms_prefixes if name in fields]
    if not ints and not ms:
        return _Plan(tables, None, None, None)
    texts = [f"{prefixes[name]}%di" for name in ints] + [f"{ms_prefixes[n]}%di" for n in ms]
    form = f"{','.join(texts)} %d"
    return _Plan(tables, form, _getter(ints) if ints else None, _getter(ms) if ms else None)
