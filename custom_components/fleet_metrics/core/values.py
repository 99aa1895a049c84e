"""Reading numbers from device JSON, where they are often strings."""

from __future__ import annotations

import math
from typing import Any


def number(raw: Any) -> float | None:
    """JSON numbers and strings that hold one (``"75.00"``, ``" 0"``); never booleans, NaN or
    infinities, and None for anything else."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None
