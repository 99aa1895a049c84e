"""What every collector is: a name, a tier and ``collect()``, plus the run that times it.

A collector pairs pure functions (psutil results in, Samples out; tested on recorded results)
with a thin ``collect()`` that calls psutil. ``run`` wraps one call the way node_exporter's
``node_scrape_collector_*`` does: every run yields a ``collector`` sample with its success and
duration, and a failing collector is logged once (and once more when it recovers) instead of
stopping the others.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import logging
import math
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from ...errors import describe_error
from ...sample import Sample

_LOGGER = logging.getLogger(__name__)

Tier = Literal["fast", "medium", "slow"]
TIERS: Final[tuple[Tier, ...]] = ("fast", "medium", "slow")

DEFAULT_FS_EXCLUDE_FSTYPES: Final = ("tmpfs", "overlay", "squashfs", "devtmpfs")
DEFAULT_FS_EXCLUDE_MOUNTPOINTS: Final = ("*/subvol-*",)  # Proxmox container volumes
DEFAULT_NET_EXCLUDE: Final = ("lo", "veth*", "tap*", "fwbr*", "fwpr*", "fwln*")
# Not physical disks: loop and RAM devices, device-mapper, ZFS zvols (guest disks), optical.
DEFAULT_DISK_EXCLUDE: Final = ("loop*", "ram*", "zram*", "dm-*", "zd*", "sr*", "fd*")
DEFAULT_MAX_GUESTS: Final = 100
# What JSON (orjson) carries as an integer; one outside would make the whole batch unsendable.
MIN_INT: Final = -(2**63)
END_INT: Final = 2**64


@dataclass(frozen=True, slots=True)
class Patterns:
    """Shell-style name patterns (``veth*``): ``include`` (all when empty) minus ``exclude``."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def allows(self, name: str) -> bool:
        include = _compiled(self.include)
        if include is not None and not include.match(name):
            return False
        exclude = _compiled(self.exclude)
        return exclude is None or not exclude.match(name)


@functools.cache
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for all patterns, built once: a name is checked once, not once per pattern."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """The part of the agent config the collectors read."""

    per_cpu: bool = False
    fs_fstypes: Patterns = Patterns(exclude=DEFAULT_FS_EXCLUDE_FSTYPES)
    fs_mountpoints: Patterns = Patterns(exclude=DEFAULT_FS_EXCLUDE_MOUNTPOINTS)
    net_devices: Patterns = Patterns(exclude=DEFAULT_NET_EXCLUDE)
    disk_devices: Patterns = Patterns(exclude=DEFAULT_DISK_EXCLUDE)
    disk_partitions: bool = False
    agent_version: str = ""
    command_timeout: float = 10.0
    pve_node: str = ""  # empty: this host's short host name
    pve_guests: tuple[int, ...] = ()  # vmids to report one by one; empty: all, up to the cap
    pve_max_guests: int = DEFAULT_MAX_GUESTS
    # The medium tier's interval: how long the slow tier may reuse the guest and storage
    # lists the medium tier read (the agent config's intervals.medium).
    medium_interval: float = 300.0


class Collector(ABC):
    """One kind of host reading. ``collect`` runs in a worker thread (psutil blocks)."""

    name: ClassVar[str]
    tier: ClassVar[Tier]

    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.overflow = 0  # items left out by a cap, e.g. the 513th interface
        self.once = OnceLogger()

    @classmethod
    def available(cls) -> bool:
        """Whether this host has what the collector reads; one that is off by default
        elsewhere (ZFS, Proxmox) turns itself on where it has."""
        return True

    @abstractmethod
    def collect(self, time_ns: int) -> list[Sample]:
        """The current readings, all stamped ``time_ns``."""


class CollectorRun:
    """Runs one collector and reports how it went, logging a failure once per outage."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.failing = False
        self.failures = 0
        self.dropped_values = 0  # NaN, ±inf and out-of-range ints left out of samples

    def __call__(self, time_ns: int) -> list[Sample]:
        name = self.collector.name
        started = time.perf_counter()
        try:
            samples = self.collector.collect(time_ns)
        except Exception as err:  # one broken collector must not stop the others
            self.failures += 1
            if not self.failing:
                self.failing = True
                _LOGGER.warning(
                    "collector %s failed, skipping it until it works again: %s",
                    name,
                    describe_error(err),
                    exc_info=_LOGGER.isEnabledFor(logging.DEBUG),
                )
            samples = []
            success = 0
        else:
            samples, dropped = finite_only(samples)
            if dropped:
                self.dropped_values += dropped
                self.collector.once.warning(
                    "values",
                    "collector %s gave values JSON cannot carry (NaN, infinite or an integer "
                    "beyond 64 bits); they are left out",
                    name,
                )
            if self.failing:
                self.failing = False
                _LOGGER.info("collector %s works again", name)
            success = 1
        samples.append(
            Sample(
                "collector",
                {"collector": name},
                {"success": success, "duration_seconds": time.perf_counter() - started},
                time_ns,
            )
        )
        return samples


def _sendable(value: object) -> bool:
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is int:
        return MIN_INT <= value < END_INT
    return True


def finite_only(samples: list[Sample]) -> tuple[list[Sample], int]:
    """``samples`` without NaN, infinite values and integers beyond 64 bits (JSON has no
    such numbers, and a batch the server cannot read would be replayed forever), dropping a
    sample left with no field; and how many values were left out."""
    out = []
    dropped = 0
    for sample in samples:
        fields = sample.fields
        if any(
            (type(value) is float and not math.isfinite(value))
            or (type(value) is int and not MIN_INT <= value < END_INT)
            for value in fields.values()
        ):
            kept = {key: value for key, value in fields.items() if _sendable(value)}
            dropped += len(fields) - len(kept)
            if not kept:
                continue
            sample = dataclasses.replace(
                sample, fields=kept, counters=sample.counters & kept.keys()
            )
        out.append(sample)
    return out, dropped


class OnceLogger:
    """Logs a message the first time only, for conditions that persist (a cap reached)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def warning(self, key: str, message: str, *args: object) -> None:
        if key not in self._seen:
            self._seen.add(key)
            _LOGGER.warning(message, *args)
