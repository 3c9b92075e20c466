"""An SLI's error budget over its period and its burn rates: plain numbers the engine computes
from the store and alerts, metrics and the report read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Budget:
    target: float
    period: timedelta
    good: int
    bad: int
    burn_rates: dict[str, float]
    """Burn rate per window label (`1h`, `5m`, ...), for every window the alerts need."""
    bad_in: dict[str, int] = field(default_factory=dict)
    """Bad evaluations per window label: a burn rate from one bad evaluation is no burn."""

    @property
    def budget_left(self) -> float | None:
        """Share of the period's error budget still unspent (negative once overspent)."""
        total = self.good + self.bad
        if total == 0:
            return None
        return 1 - (self.bad / total) / (1 - self.target)
