"""The sequential and persistence rules' memory: per-block values, the CUSUM, `wrong_since`.

Blocks are complete and non-overlapping (monitor/engine/sequential.py), so consecutive evaluations
of an overlapping rolling window never count the same rows twice. A block joins the chart
once, when it completes; blocks missed while the daemon was down are not back-filled, which
only delays evidence. A label-based metric's block holds the labels known when it completes,
so late labels weigh less in the chart than in the window (honest, merely slower).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig
from monitor.core.values import INSUFFICIENT, MetricValue
from monitor.engine.judging import Decision, decide
from monitor.engine.sequential import cusum_step, cusum_threshold
from monitor.store.slis import Evidence, slo_id, stored_evidence


def judge_value(
    session: Session,
    model: str,
    slo: SLOConfig,
    value: MetricValue,
    now: datetime,
    *,
    confidence: float,
    sample_gated: bool,
    block: MetricValue | None = None,
    block_end: datetime | None = None,
) -> tuple[Decision, Evidence]:
    """Decide one value with every rule, and the evidence to store with it."""
    before = stored_evidence(session, model, slo_id(slo), value.feature or "")
    cusum, cusum_block, wrong_since = before.cusum, before.cusum_block, before.wrong_since
    fresh = cusum_block is None or (block_end is not None and block_end > cusum_block)
    if block is not None and block_end is not None and fresh:
        cusum = cusum_step(cusum or 0.0, block, slo.objective, slo.window)
        cusum_block = block_end
    if slo.objective.relative and math.isnan(slo.objective.threshold):
        return Decision(INSUFFICIENT, "reference"), before
    if slo.objective.base == "auto":
        # The auto threshold already holds the window's sampling error: judge the point.
        value = replace(value, ci=None)
    judged = value.value is not None and not (sample_gated and value.n < slo.min_samples)
    wrong = judged and value.value is not None and not slo.objective.is_good(value.value)
    wrong_since = (wrong_since or now) if wrong else None
    decision = decide(
        slo.objective,
        value,
        slo.min_samples,
        sample_gated,
        confidence=confidence,
        evidence=cusum is not None and cusum >= cusum_threshold(slo.window, confidence),
        wrong_for=now - wrong_since if wrong_since is not None else None,
        window=slo.window,
    )
    return decision, Evidence(cusum, cusum_block, wrong_since)
