"""Draws docs/breach-rules.png: how Vigil's rules decide an SLO on a simulated stream.

A 7-day accuracy SLO (`>= 0.90`, 150 labelled rows a day) whose accuracy drops from 0.915 to
0.893 on day 30: too small for one window's interval to exclude the objective quickly. The
window value, its interval and each day's status come from Vigil's own `decide` and
`cusum_step`, evaluated once a day. Run: .venv/bin/python docs/breach_figure.py
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from detectors.intervals import wilson_interval
from monitor.core.objectives import parse_objective
from monitor.core.values import MetricValue
from monitor.engine.judging import decide
from monitor.engine.sequential import cusum_step, cusum_threshold

OUT = Path(__file__).with_name("breach-rules.png")
DAYS, CHANGE, PER_DAY, WINDOW = 90, 30, 150, 7
COLOURS = {"ok": "#2e7d32", "uncertain": "#f9a825", "breach": "#c62828"}


def main() -> None:
    rng = np.random.default_rng(4)
    objective = parse_objective(">= 0.90")
    window = timedelta(days=WINDOW)
    truth = np.where(np.arange(DAYS) < CHANGE, 0.915, 0.893)
    good = rng.binomial(PER_DAY, truth)
    h = cusum_threshold(window, 0.95)
    cusum, wrong_since = 0.0, None
    rows = []
    for day in range(WINDOW, DAYS):
        k, n = good[day - WINDOW : day].sum(), PER_DAY * WINDOW
        value = MetricValue("accuracy", k / n, n, "7d", ci=wilson_interval(k, n))
        block = MetricValue(
            "accuracy",
            good[day - 1] / PER_DAY,
            PER_DAY,
            "1d",
            ci=wilson_interval(good[day - 1], PER_DAY),
        )
        cusum = cusum_step(cusum, block, objective, window)
        wrong = not objective.is_good(k / n)
        wrong_since = (wrong_since if wrong_since is not None else day) if wrong else None
        wrong_for = timedelta(days=day - wrong_since) if wrong_since is not None else None
        decision = decide(
            objective, value, 30, True, evidence=cusum >= h, wrong_for=wrong_for, window=window
        )
        rows.append((day, value, cusum, decision))
    days = np.array([r[0] for r in rows])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    top.fill_between(
        days,
        [r[1].ci[0] for r in rows],
        [r[1].ci[1] for r in rows],
        color="#90a4ae",
        alpha=0.35,
        label="95% interval of the 7-day window",
    )
    top.plot(days, [r[1].value for r in rows], color="#37474f", label="7-day accuracy")
    top.axhline(0.90, color="black", ls="--", lw=1, label="objective >= 0.90")
    top.axvline(CHANGE, color="#6a1b9a", ls=":", label="accuracy drops to 0.893")
    previous = ""
    for day, _, _, decision in rows:
        top.axvspan(day - 0.5, day + 0.5, ymin=0, ymax=0.05, color=COLOURS[decision.status], lw=0)
        if decision.status == "breach" and previous != "breach":
            top.annotate(f"breach ({decision.rule})", (day, 0.866), fontsize=8, ha="left")
        previous = decision.status
    top.set_ylabel("accuracy")
    top.set_ylim(0.86, 0.95)
    top.legend(loc="upper right", fontsize=8)
    top.set_title("ok / uncertain / breach each day, and the rule that breached")
    bottom.plot(days, [r[2] for r in rows], color="#1565c0", label="Page's CUSUM of daily blocks")
    bottom.axhline(h, color="#c62828", ls="--", lw=1, label=f"threshold h = ln(W / 0.05) = {h:.1f}")
    bottom.axvline(CHANGE, color="#6a1b9a", ls=":")
    bottom.set_xlabel("day")
    bottom.set_ylabel("evidence (nats)")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    first = next((r for r in rows if r[3].status == "breach"), None)
    print(f"wrote {OUT}; first breach: day {first[0]} by {first[3].rule}" if first else OUT)


if __name__ == "__main__":
    main()
