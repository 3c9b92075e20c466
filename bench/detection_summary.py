"""The detection benchmark's table: per fault and size, delays, incidents per episode and false
incidents; for an AUC drop, one row per objective the AUC SLOs were written with.

Kept apart from `detection_bench.py` (which simulates and judges) so the figures can be
recomputed from a results JSON without re-running a stream: `summarise` reads only the
incidents each run recorded.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

ESTIMATE, REALISED = "estimated.roc_auc", "roc_auc"
LABEL_DELAY_MAX_D = 14.0
"""Labels arrive 1-14 days late: the last label of the change day is in 14 days after it."""


class FaultLike(Protocol):
    metric: str
    feature: str | None
    auc_drop: float


def _days(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return round(float(np.median(values)), 2), round(float(np.quantile(values, 0.9)), 2)


def slo_id(metric: str, text: str) -> str:
    """The id Vigil gives an unnamed SLO (monitor.store.slis.slo_id) with a 30d window."""
    return f"{metric}{text.replace(' ', '')}@30d"


def _of(incidents: list[dict[str, Any]], metric: str, text: str | None) -> list[dict[str, Any]]:
    """The incidents of one AUC SLO; runs recorded before SLO ids were kept match by metric."""
    wanted = slo_id(metric, text) if text is not None else None
    return [
        i
        for i in incidents
        if i["metric"] == metric and (wanted is None or i.get("slo", wanted) == wanted)
    ]


def auc_rows(name: str, per_day: int, runs: list[Any], series: int) -> list[dict[str, object]]:
    """One row per objective kind: delay of each AUC SLO from the change to its first
    incident, incidents per episode, whether the first stays open to the end, and whether the
    estimate opened before the realised-label SLO and within the labels' 14-day delay."""
    kinds = list(getattr(runs[0], "objectives", None) or {"fixed": None})
    rows = []
    for kind in kinds:
        est_d, real_d, est_n, real_n, false = [], [], [], [], 0
        est_open, real_open, first, in_time = [], [], [], []
        for o in runs:
            text = (getattr(o, "objectives", None) or {}).get(kind)
            change = float(o.change_day)
            est_all = _of(o.incidents, ESTIMATE, text)
            real_all = _of(o.incidents, REALISED, text)
            false += sum(1 for i in est_all + real_all if float(i["opened_day"]) < change)
            est = [i for i in est_all if float(i["opened_day"]) >= change]
            real = [i for i in real_all if float(i["opened_day"]) >= change]
            est_n.append(len(est))
            real_n.append(len(real))
            if est:
                est_d.append(float(est[0]["opened_day"]) - change)
                est_open.append(est[0]["resolved_day"] is None)
                in_time.append(est_d[-1] < LABEL_DELAY_MAX_D)
            if real:
                real_d.append(float(real[0]["opened_day"]) - change)
                real_open.append(real[0]["resolved_day"] is None)
            first.append(bool(est) and (not real or est[0]["opened_day"] < real[0]["opened_day"]))
        (est_med, est_p90), (real_med, real_p90) = _days(est_d), _days(real_d)
        rows.append(
            {
                "fault": name,
                "per_day": per_day,
                "objective": kind if text is None else f"{kind}: {text}",
                "runs": len(runs),
                "est_detected": f"{len(est_d)}/{len(runs)}",
                "est_delay_median_d": est_med,
                "est_delay_p90_d": est_p90,
                "est_incidents_per_episode": round(float(np.mean(est_n)), 2),
                "est_first_stays_open": f"{sum(est_open)}/{len(est_open)}" if est_open else "-",
                "est_before_realised": f"{sum(first)}/{len(first)}",
                "est_within_14d": f"{sum(in_time)}/{len(runs)}",
                "realised_detected": f"{len(real_d)}/{len(runs)}",
                "realised_delay_median_d": real_med,
                "realised_delay_p90_d": real_p90,
                "realised_incidents_per_episode": round(float(np.mean(real_n)), 2),
                "realised_first_stays_open": (
                    f"{sum(real_open)}/{len(real_open)}" if real_open else "-"
                ),
                "auc_false_before_change": false,
                "slo_series": series,
            }
        )
    return rows


def summarise(
    outcomes: list[Any], faults: dict[str, FaultLike], base_series: int
) -> list[dict[str, object]]:
    """The table: one row per fault and size (per objective too, for an AUC drop)."""
    table: list[dict[str, object]] = []
    for name in dict.fromkeys(o.fault for o in outcomes):
        fault = faults[name]
        for per_day in sorted({o.per_day for o in outcomes if o.fault == name}):
            runs = [o for o in outcomes if o.fault == name and o.per_day == per_day]
            pairs = len(getattr(runs[0], "objectives", None) or {"fixed": None})
            series = base_series + 2 * (pairs - 1)  # one roc_auc + estimate pair per objective
            if fault.auc_drop:
                table += auc_rows(name, per_day, runs, series)
                continue
            delays, per_episode, false = [], [], 0
            quiet_days = 0.0
            for o in runs:
                change = o.change_day if fault.metric else o.days
                quiet_days += change - o.judged_from
                false += sum(1 for i in o.incidents if i["opened_day"] < change)
                target = [
                    i
                    for i in o.incidents
                    if i["opened_day"] >= change
                    and i["metric"] == fault.metric
                    and (fault.feature is None or i["feature"] == fault.feature)
                ]
                if target:
                    delays.append(float(target[0]["opened_day"]) - change)
                per_episode.append(len(target))
            median, p90 = _days(delays)
            table.append(
                {
                    "fault": name,
                    "per_day": per_day,
                    "runs": len(runs),
                    "detected": f"{len(delays)}/{len(runs)}" if fault.metric else "-",
                    "delay_median_d": median,
                    "delay_p90_d": p90,
                    "incidents_per_episode": round(float(np.mean(per_episode)), 2)
                    if fault.metric
                    else None,
                    "false_incidents": false,
                    "false_per_slo_year": round(false / (series * quiet_days / 365), 3)
                    if quiet_days
                    else None,
                }
            )
    return table


def markdown(table: list[dict[str, object]]) -> str:
    keys = list(dict.fromkeys(k for row in table for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += [
        "| " + " | ".join("" if row.get(k) is None else str(row.get(k)) for k in keys) + " |"
        for row in table
    ]
    return "\n".join(lines)
