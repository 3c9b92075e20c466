"""Regression quality from exact sums: MAE, RMSE, MAPE, bias and R², with normal intervals.

RMSE's interval is the square root of the mean squared error's (delta method on the sum of
fourth powers); R²'s treats the labels' variance as known, so it is a little narrow.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime

from detectors.base import NON_NEGATIVE, REGRESSION, MetricInfo, WindowSummary, quality_metric
from detectors.intervals import mean_interval
from monitor.core.reference import ReferenceSummary
from monitor.core.values import MetricValue


def _info(name: str, description: str, bounds: tuple[float, float] = NON_NEGATIVE) -> MetricInfo:
    return quality_metric(name, description, frozenset({REGRESSION}), bounds=bounds)


class Regression:
    name: str = "regression"
    metrics: tuple[MetricInfo, ...] = (
        _info("mae", "mean absolute error"),
        _info("rmse", "root mean squared error"),
        _info("mape", "mean absolute percentage error (rows with a zero label are skipped)"),
        _info("bias", "mean error: positive when the model over-predicts", (-math.inf, math.inf)),
        _info("r2", "share of the labels' variance the model explains", (-math.inf, 1.0)),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        s = window.summary.regression
        label = window.label
        n = s.get("n", 0.0)
        if n < 2:
            return [MetricValue(m.name, None, int(n), label) for m in self.metrics]
        mse = s["sum_sq_err"] / n
        mse_low, mse_high = mean_interval(s["sum_sq_err"], s.get("sum_err4", 0.0), n)
        out = [
            MetricValue(
                "mae",
                s["sum_abs_err"] / n,
                int(n),
                label,
                ci=mean_interval(s["sum_abs_err"], s["sum_sq_err"], n),
            ),
            MetricValue(
                "rmse",
                math.sqrt(mse),
                int(n),
                label,
                ci=(math.sqrt(max(mse_low, 0.0)), math.sqrt(max(mse_high, 0.0))),
            ),
            MetricValue(
                "bias",
                s["sum_err"] / n,
                int(n),
                label,
                ci=mean_interval(s["sum_err"], s["sum_sq_err"], n),
            ),
        ]
        n_ape = s.get("n_ape", 0.0)
        if n_ape >= 2:
            out.append(
                MetricValue(
                    "mape",
                    s["sum_ape"] / n_ape,
                    int(n_ape),
                    label,
                    ci=mean_interval(s["sum_ape"], s.get("sum_ape_sq", 0.0), n_ape),
                )
            )
        else:
            out.append(MetricValue("mape", None, int(n_ape), label))
        mean_sq = s["sum_y_sq"] / n
        variance = mean_sq - (s["sum_y"] / n) ** 2
        # From sums, the variance of (nearly) constant labels cancels to rounding noise, which
        # would give an R² of -1e16: below the sums' rounding error, R² is undefined.
        if variance > 4 * n * sys.float_info.epsilon * mean_sq:
            out.append(
                MetricValue(
                    "r2",
                    1 - mse / variance,
                    int(n),
                    label,
                    ci=(1 - mse_high / variance, 1 - max(mse_low, 0.0) / variance),
                )
            )
        else:
            out.append(MetricValue("r2", None, int(n), label))
        return out
