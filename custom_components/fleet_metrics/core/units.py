"""Unit conversion without float noise in the outputs."""

from __future__ import annotations


def scale(value: float, factor: float) -> float:
    """``value * factor`` rounded to 12 significant digits.

    Device values carry at most about 7 (float32 on the device), so this drops only the
    binary noise of the multiplication (66.6 * 0.01 = 0.6659999999999999).
    """
    return float(f"{value * factor:.12g}")
