"""Reading numbers from device JSON, where they are often strings."""

from __future__ import annotations

import math
from typing import Any

# Longer strings are no reading any device sends (float64 needs at most 24 characters);
# refusing them spares converting a hostile 60 kB digit string.
MAX_NUMBER_TEXT = 64


def number(raw: Any) -> float | None:
    """JSON numbers and strings that hold one (``"75.00"``, ``" 0"``); never booleans, NaN or
    infinities (nor ``"NaN"``, ``"Infinity"`` or integers too large for a float), and None
    for anything else."""
    if isinstance(raw, bool):
        return None
    try:
        if isinstance(raw, int | float):
            value = float(raw)
        elif isinstance(raw, str) and len(raw) <= MAX_NUMBER_TEXT:
            value = float(raw.strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None
