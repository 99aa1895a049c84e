"""TickrMeter fleet state: one compact record per device, fed by status and boot messages.

Device ids come from the wire, so the table is capped (``max_devices``): a full table forgets
its least recently seen tenth (``caps.make_room``). Text values become labels of the
fleet-wide counts, so each is checked (``names.valid_label_text``) and each count keeps its
``max_label_values`` most common values, the rest summed as ``other``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...values import number
from .caps import make_room
from .names import valid_label_text

DEFAULT_DEVICE_TIMEOUT = 300.0
DEFAULT_FORGET_AFTER = 7 * 24 * 3600.0
# Twice the largest fleet known (10,000 devices); each costs 250 to 450 bytes.
DEFAULT_MAX_DEVICES = 20_000
DEFAULT_MAX_LABEL_VALUES = 50
OTHER = "other"

# Status payload key -> device attribute. Firmware versions name fields differently; the
# table is configurable and these are the defaults.
DEFAULT_STATUS_FIELDS: Mapping[str, str] = {
    "firmware_version": "firmware",
    "iv": "inner_version",
    "flash_id": "flash_id",
    "battery": "battery",
    "charging": "charging",
    "vin": "vin",
    "uptime": "uptime",
    "wifi_lost": "wifi_lost",
}
TEXT_FIELDS = frozenset({"firmware", "inner_version", "flash_id"})
NUMBER_FIELDS = frozenset({"battery", "vin", "uptime", "wifi_lost"})
# Every attribute a status field table may name.
DEVICE_FIELDS = TEXT_FIELDS | NUMBER_FIELDS | {"charging"}


def unknown_fields(status_fields: Mapping[str, str]) -> list[str]:
    """The attributes of a status field table that no device has, sorted."""
    return sorted(set(status_fields.values()) - DEVICE_FIELDS)


@dataclass(slots=True)
class Device:
    """``__slots__`` keeps 10,000 of these at a few MB."""

    firmware: str | None = None
    inner_version: str | None = None
    flash_id: str | None = None
    battery: float | None = None
    charging: bool | None = None
    vin: float | None = None
    uptime: float | None = None
    wifi_lost: float | None = None
    boots: int = 0
    last_seen: float = 0.0
    first_seen: float = 0.0


def _flag(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return bool(raw)
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on", "charging"):
            return True
        if lowered in ("0", "false", "no", "off", "discharging", "not charging"):
            return False
    return None


def _most_common(counts: Counter[str], limit: int) -> dict[str, int]:
    """At most ``limit`` values: the most common, the rest summed under ``other``."""
    if len(counts) <= limit:
        return dict(counts)
    kept = dict(counts.most_common(limit - 1))
    kept[OTHER] = kept.get(OTHER, 0) + counts.total() - sum(kept.values())
    return kept


@dataclass(frozen=True, slots=True)
class FleetSummary:
    devices: int
    online: int
    low_battery: int
    by_firmware: dict[str, int]
    by_inner_version: dict[str, int]
    by_flash_id: dict[str, int]
    charging: dict[str, int]


class Fleet:
    def __init__(
        self,
        device_timeout: float = DEFAULT_DEVICE_TIMEOUT,
        forget_after: float = DEFAULT_FORGET_AFTER,
        status_fields: Mapping[str, str] = DEFAULT_STATUS_FIELDS,
        low_battery: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        max_devices: int = DEFAULT_MAX_DEVICES,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
    ) -> None:
        if unknown := unknown_fields(status_fields):
            raise ValueError(f"unknown device fields in the status table: {unknown}")
        self.max_devices = max_devices
        self.max_label_values = max_label_values
        self.evicted = 0
        self.device_timeout = device_timeout
        self.forget_after = forget_after
        self.status_fields = dict(status_fields)
        self.low_battery = low_battery
        self._clock = clock
        self.clock = clock  # read by state.py: saved ages are relative to it
        self.devices: dict[str, Device] = {}

    def _device(self, device_id: str) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            self.evicted += len(make_room(self.devices, self.max_devices))
            device = self.devices[device_id] = Device(first_seen=self._clock())
            device.last_seen = device.first_seen
            return device
        device.last_seen = self._clock()
        return device

    def status(self, device_id: str, payload: Mapping[str, Any]) -> str | None:
        """Apply a status message; unknown keys are ignored, unusable values skipped.

        Returns the payload key of a text that cannot be a label (too long, odd characters),
        for the caller to count; the rest of the message is applied all the same.
        """
        device = self._device(device_id)
        refused = None
        for key, attribute in self.status_fields.items():
            raw = payload.get(key)
            if raw is None:
                continue
            if attribute in TEXT_FIELDS:
                if isinstance(raw, str | int) and not isinstance(raw, bool):
                    text = str(raw)
                    if valid_label_text(text):
                        setattr(device, attribute, text)
                    else:
                        refused = key
            elif attribute == "charging":
                if (flag := _flag(raw)) is not None:
                    device.charging = flag
            else:
                # Some firmware sends units with the number: "78%", "4.9V".
                text = raw.strip().rstrip("%V") if isinstance(raw, str) else raw
                if (value := number(text)) is not None:
                    setattr(device, attribute, value)
        return refused

    def boot(self, device_id: str) -> None:
        self._device(device_id).boots += 1

    def seen(self, device_id: str) -> None:
        self._device(device_id)

    def online(self, device: Device, now: float | None = None) -> bool:
        return (self._clock() if now is None else now) - device.last_seen <= self.device_timeout

    def forget_stale(self) -> int:
        """Drop devices silent for longer than ``forget_after``; returns how many."""
        cutoff = self._clock() - self.forget_after
        stale = [device_id for device_id, d in self.devices.items() if d.last_seen < cutoff]
        for device_id in stale:
            del self.devices[device_id]
        return len(stale)

    def summary(self) -> FleetSummary:
        now = self._clock()
        online = [d for d in self.devices.values() if now - d.last_seen <= self.device_timeout]
        limit = self.max_label_values
        return FleetSummary(
            devices=len(self.devices),
            online=len(online),
            low_battery=sum(
                1 for d in online if d.battery is not None and d.battery < self.low_battery
            ),
            by_firmware=_most_common(Counter(d.firmware or "unknown" for d in online), limit),
            by_inner_version=_most_common(
                Counter(d.inner_version or "unknown" for d in online), limit
            ),
            by_flash_id=_most_common(Counter(d.flash_id or "unknown" for d in online), limit),
            charging=dict(
                Counter(
                    "unknown" if d.charging is None else ("yes" if d.charging else "no")
                    for d in online
                )
            ),
        )
