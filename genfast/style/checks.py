"""Argument checks shared by the style entry points (gatys, train): errors name the argument."""

from __future__ import annotations

import math


def check_number(value, name: str, *, positive: bool = False) -> float:
    """A finite int or float >= 0 (> 0 with positive=True), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: must be {'positive' if positive else 'non-negative'}, got {value}")
    return float(value)


def check_int(value, name: str, low: int) -> int:
    """An int (not a bool) >= low."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return value
