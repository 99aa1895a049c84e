"""Unit conversion without float noise in the outputs."""

from __future__ import annotations

import math


def scale(value: float, factor: float) -> float | None:
    """``value * factor`` rounded to 12 significant digits; None when the product is no
    finite number (a hostile 1e308 kWh), so no NaN or infinity reaches an output.

    Device values carry at most about 7 (float32 on the device), so this drops only the
    binary noise of the multiplication (66.6 * 0.01 = 0.6659999999999999).
    """
    product = value * factor
    if not math.isfinite(product):
        return None
    return float(f"{product:.12g}")
