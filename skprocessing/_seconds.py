"""One check for every time limit a user gives (`timeout=`, `.timeout(s)`, `join_in`, ...).

    seconds("timeout", 5)          -> 5.0
    seconds("timeout", None)       -> None          no limit
    seconds("timeout", math.inf)   -> None          no limit, the same as None
    seconds("timeout", math.nan)   -> ValueError    naming the parameter
    seconds("timeout", 0)          -> ValueError    unless zero=True (a poll: wait(0))

`inf` is taken as "no limit" because that is what it says; left as a float it would reach
`time.monotonic() + inf` deadlines and `setitimer`/`Condition.wait` calls that overflow.
`nan` compares false with everything, so it would silently disable a limit (and make wait
loops spin): it is refused.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

__all__ = ["seconds"]


def seconds(name: str, value: Any, *, zero: bool = False) -> float | None:
    """`value` as a number of seconds, or None for no limit (None or `math.inf`).

    `zero`: whether 0 is allowed (a wait that only looks); otherwise the limit must be
    positive. Raises TypeError for a non-number and ValueError for nan or a negative."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of seconds or None (no limit), "
                        f"not {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} is nan; give a number of seconds, or None (or math.inf) "
                         f"for no limit")
    if value == math.inf:
        return None
    if value < 0 or (value == 0 and not zero):
        need = "0 or more" if zero else "positive"
        raise ValueError(f"{name} must be {need} seconds (None or math.inf: no limit), "
                         f"got {value!r}")
    return value
