"""SLO objectives: a comparison and a threshold, fixed or relative to the reference.

`>= 0.85` and `< 15m` are fixed. `>= reference - 0.01` and `<= reference * 1.5` are relative
to the metric's value on the reference; `auto` takes the reference's own variability at the
window's sample size: good is within 3 standard deviations of the reference value, on the
metric's bad side (NannyML's default threshold for its performance estimates), the standard
deviation being that of the difference between a window of this many rows and the reference
(both samples' errors: `detectors.reference_values.sd_from_reference`). Relative
objectives are resolved at each evaluation (`resolve`), which also says how the threshold was
derived; `text` stays as written, so the SLO's id does not move with its threshold.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from monitor.core.durations import parse_duration

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_PATTERN = re.compile(r"^\s*(>=|<=|>|<)\s*(\S+)\s*$")
_RELATIVE = re.compile(r"^\s*(>=|<=|>|<)\s*reference\s*(?:([-+*])\s*([0-9.eE+-]+))?\s*$")
AUTO_SIGMAS = 3.0


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
    base: str = "fixed"
    """fixed, reference (`reference - 0.01`) or auto."""
    operator: str = ""
    """For `reference`: "+", "-" or "*" with `operand`; empty for the reference itself."""
    operand: float = 0.0
    derived: str = ""
    """How a resolved threshold was derived, in words (empty for a fixed objective)."""

    @property
    def relative(self) -> bool:
        return self.base != "fixed"

    def is_good(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")

    def __str__(self) -> str:
        return self.text


def parse_objective(text: str) -> Objective:
    """Parse `>= 0.85`, `< 15m`, `>= reference - 0.01`, `<= reference * 1.5` or `auto`;
    raises ValueError naming the accepted forms."""
    if str(text).strip() == "auto":
        return Objective(op=">=", threshold=math.nan, text="auto", base="auto")
    relative = _RELATIVE.match(str(text))
    if relative:
        op, sign, raw = relative.groups()
        try:
            operand = float(raw) if raw is not None else 0.0
        except ValueError:
            raise ValueError(f"not an objective: {text!r} (a number must follow {sign})") from None
        written = f"{op} reference" + (f" {sign} {raw}" if sign else "")
        return Objective(
            op=op,
            threshold=math.nan,
            text=written,
            base="reference",
            operator=sign or "",
            operand=operand,
        )
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(
            f"not an objective: {text!r} (write e.g. '>= 0.85', '< 15m', "
            "'>= reference - 0.01', '<= reference * 1.5' or 'auto')"
        )
    op, raw = match.groups()
    try:
        threshold = float(raw)
    except ValueError:
        threshold = parse_duration(raw).total_seconds()
        return Objective(op=op, threshold=threshold, text=f"{op} {raw}", duration=True)
    if not math.isfinite(threshold):
        raise ValueError(f"not an objective: {text!r} (the threshold must be a finite number)")
    return Objective(op=op, threshold=threshold, text=f"{op} {raw}")


def resolve(
    objective: Objective,
    reference_value: float | None,
    sd_at_n: float | None,
    higher_is_better: bool | None,
) -> Objective | None:
    """A relative objective with its threshold for this evaluation, or None when it cannot be
    resolved (no reference value; `auto` without a standard deviation or a direction)."""
    if not objective.relative:
        return objective
    if reference_value is None or not math.isfinite(reference_value):
        return None
    if objective.base == "reference":
        offsets = {
            "+": reference_value + objective.operand,
            "-": reference_value - objective.operand,
            "*": reference_value * objective.operand,
            "": reference_value,
        }
        threshold = offsets[objective.operator]
        derived = f"reference {reference_value:.4g}"
        if objective.operator:
            derived += f" {objective.operator} {objective.operand:g}"
        return replace(objective, threshold=threshold, derived=derived)
    if sd_at_n is None or higher_is_better is None or not math.isfinite(sd_at_n):
        return None
    margin = AUTO_SIGMAS * sd_at_n
    threshold = reference_value - margin if higher_is_better else reference_value + margin
    derived = (
        f"auto: reference {reference_value:.4g} {'-' if higher_is_better else '+'} "
        f"{AUTO_SIGMAS:g} x {sd_at_n:.2g} (the sd of a window of this size less the reference)"
    )
    op = ">=" if higher_is_better else "<="
    return replace(objective, op=op, threshold=threshold, derived=derived)
