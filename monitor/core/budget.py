"""An SLI's error budget over its period and its burn rates: plain numbers the engine computes
from the store and alerts, metrics and the report read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Budget:
    target: float
    period: timedelta
    good: int
    bad: int
    burn_rates: dict[str, float]
    """Burn rate per window label (`1h`, `5m`, ...), for every window the alerts need."""

    @property
    def budget_left(self) -> float | None:
        """Share of the period's error budget still unspent (negative once overspent)."""
        total = self.good + self.bad
        if total == 0:
            return None
        return 1 - (self.bad / total) / (1 - self.target)
