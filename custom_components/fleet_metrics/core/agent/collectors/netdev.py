"""Per-interface network counters (fast tier).

A Proxmox host grows an interface per guest NIC (``tap``, ``veth``, ``fwbr``...); those are
excluded by default and the rest is capped, so a host with thousands of interfaces still sends
a bounded batch. The cap keeps the first names in sorted order, so the set is stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import psutil

from ...sample import Sample
from .base import Collector, Patterns

MAX_INTERFACES: Final = 512

_FIELDS: Final = (
    ("receive_bytes", "bytes_recv"),
    ("transmit_bytes", "bytes_sent"),
    ("receive_packets", "packets_recv"),
    ("transmit_packets", "packets_sent"),
    ("receive_errs", "errin"),
    ("transmit_errs", "errout"),
    ("receive_drop", "dropin"),
    ("transmit_drop", "dropout"),
)
_COUNTERS: Final = frozenset(name for name, _ in _FIELDS)


def network_samples(
    pernic: Mapping[str, Any], devices: Patterns, time_ns: int, cap: int = MAX_INTERFACES
) -> tuple[list[Sample], int]:
    """``network`` samples from ``psutil.net_io_counters(pernic=True)`` for the allowed
    interfaces, and how many allowed interfaces the cap left out."""
    names = sorted(name for name in pernic if devices.allows(name))
    samples = [
        Sample(
            "network",
            {"device": name},
            {field: int(getattr(pernic[name], attr)) for field, attr in _FIELDS},
            time_ns,
            _COUNTERS,
        )
        for name in names[:cap]
    ]
    return samples, max(0, len(names) - cap)


class NetdevCollector(Collector):
    name = "netdev"
    tier = "fast"

    def collect(self, time_ns: int) -> list[Sample]:
        pernic = psutil.net_io_counters(pernic=True)
        samples, left_out = network_samples(pernic, self.settings.net_devices, time_ns)
        if left_out:
            self.overflow += left_out
            self.once.warning(
                "cap", "netdev: more than %d interfaces; the rest are left out", MAX_INTERFACES
            )
        return samples
