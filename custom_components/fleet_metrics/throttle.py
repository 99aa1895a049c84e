"""Tell coordinator listeners about pushed data at most every so often."""

from __future__ import annotations

import time
from collections.abc import Callable

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later


class ThrottledNotifier:
    """Calls ``notify`` at once if it was not called for ``min_interval`` seconds, else once
    when that interval is over; pushes in between are merged into that one call."""

    def __init__(
        self, hass: HomeAssistant, min_interval: float, notify: Callable[[], None]
    ) -> None:
        self._hass = hass
        self._min_interval = min_interval
        self._notify = notify
        self._last = 0.0
        self._pending: CALLBACK_TYPE | None = None

    @callback
    def __call__(self) -> None:
        wait = self._last + self._min_interval - time.monotonic()
        if wait <= 0:
            self._fire()
        elif self._pending is None:
            self._pending = async_call_later(self._hass, wait, self._fire_later)

    @callback
    def _fire_later(self, _now: object) -> None:
        self._pending = None
        self._fire()

    @callback
    def _fire(self) -> None:
        self._last = time.monotonic()
        self._notify()

    @callback
    def cancel(self) -> None:
        if self._pending is not None:
            self._pending()
            self._pending = None
