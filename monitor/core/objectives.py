"""SLO objectives such as `>= 0.85` or `< 15m`: a comparison and a threshold."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from monitor.core.durations import parse_duration

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_PATTERN = re.compile(r"^\s*(>=|<=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Objective:
    """`value op threshold` is what good looks like; durations are kept in seconds.

    `duration` remembers whether the threshold was written with a unit (`15m`), so the
    config check can tell `< 0.3` (a number) from `< 0.3s` for a metric measured in seconds.
    """

    op: str
    threshold: float
    text: str
    duration: bool = False

    def is_good(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")

    def __str__(self) -> str:
        return self.text


def parse_objective(text: str) -> Objective:
    """Parse `>= 0.85` or `< 15m`; raises ValueError naming the accepted forms."""
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(f"not an objective: {text!r} (write e.g. '>= 0.85' or '< 15m')")
    op, raw = match.groups()
    try:
        threshold = float(raw)
    except ValueError:
        threshold = parse_duration(raw).total_seconds()
        return Objective(op=op, threshold=threshold, text=f"{op} {raw}", duration=True)
    if not math.isfinite(threshold):
        raise ValueError(f"not an objective: {text!r} (the threshold must be a finite number)")
    return Objective(op=op, threshold=threshold, text=f"{op} {raw}")
