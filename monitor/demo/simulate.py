"""Six weeks of a simulated fraud model, with four faults injected at known times.

The model logs predictions to a `predictions` table and chargebacks arrive later in a
`chargebacks` table, hours to days after the prediction, as they do in real fraud systems.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday: six weeks, 2026-W41 to 2026-W46
WEEKS = 6
BASE_RATE = 240  # predictions per hour, before the daily cycle
FRAUD_RATE = 0.08
MERCHANTS = ["grocery", "electronics", "travel", "fashion", "gaming", "services"]
MERCHANT_P = [0.35, 0.15, 0.1, 0.2, 0.08, 0.12]
COUNTRIES = ["DE", "FR", "NL", "ES", "IT"]
COUNTRY_P = [0.4, 0.25, 0.15, 0.12, 0.08]


@dataclass(frozen=True)
class Fault:
    """A fault the demo injects, and the SLO that must catch it."""

    name: str
    start: datetime
    end: datetime
    slo_metric: str
    feature: str | None = None


FAULTS = (
    Fault(
        "feature drift: amount triples",
        START + timedelta(days=16, hours=12),
        START + timedelta(days=19, hours=12),
        "drift.psi",
        "amount",
    ),
    Fault(
        "quality drop: scores lose their signal",
        START + timedelta(days=23, hours=6),
        START + timedelta(days=24, hours=18),
        "accuracy",
    ),
    Fault(
        "logging gap: six hours without predictions",
        START + timedelta(days=30, hours=10),
        START + timedelta(days=30, hours=16),
        "freshness.prediction_age",
    ),
    Fault(
        "quality drop in one country: NL's scores inverted",
        START + timedelta(days=32, hours=12),
        START + timedelta(days=34),
        "accuracy",
    ),
)
BROKEN_COUNTRY = "NL"
"""The fourth fault's cause sits in one segment: its alert's root-cause hints must name it."""


def _in(fault: Fault, ts: np.ndarray) -> np.ndarray:
    start = np.datetime64(fault.start.replace(tzinfo=None), "us")
    end = np.datetime64(fault.end.replace(tzinfo=None), "us")
    return (ts >= start) & (ts < end)


def simulate(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Returns (predictions, chargebacks, reference sample), all times naive UTC."""
    rng = np.random.default_rng(seed)
    hours = WEEKS * 7 * 24
    hour_of_day = np.arange(hours) % 24
    per_hour = rng.poisson(BASE_RATE * (1 + 0.4 * np.sin((hour_of_day - 8) / 24 * 2 * np.pi)))
    total = int(per_hour.sum())
    hour_index = np.repeat(np.arange(hours), per_hour)
    offsets = rng.uniform(0, 3600, total)
    start = np.datetime64(START.replace(tzinfo=None), "us")
    ts = start + ((hour_index * 3600 + offsets) * 1e6).astype("timedelta64[us]")
    ts.sort()

    frame = _rows(rng, total)
    frame.insert(0, "predicted_at", ts)
    frame.insert(0, "request_id", np.arange(1, total + 1))

    drift, quality, gap, one_country = FAULTS
    shifted = _in(drift, ts)
    frame.loc[shifted, "amount"] = frame.loc[shifted, "amount"] * 3.0
    broken = _in(quality, ts)
    frame.loc[broken, "score"] = rng.beta(2, 4, int(broken.sum()))
    inverted = _in(one_country, ts) & (frame["country"] == BROKEN_COUNTRY).to_numpy()
    frame.loc[inverted, "score"] = 1 - frame.loc[inverted, "score"]
    frame["decision"] = (frame["score"] >= 0.5).astype(int)
    frame = frame.loc[~_in(gap, ts)].reset_index(drop=True)

    labelled = frame.sample(frac=0.9, random_state=seed).sort_index()
    fast = rng.random(len(labelled)) < 0.65
    delay_h = np.where(fast, rng.uniform(1, 8, len(labelled)), rng.uniform(8, 96, len(labelled)))
    labels = pd.DataFrame(
        {
            "request_id": labelled["request_id"].to_numpy(),
            "labeled_at": labelled["predicted_at"].to_numpy()
            + (delay_h * 3.6e9).astype("timedelta64[us]"),
            "is_fraud": labelled.pop("is_fraud").to_numpy(),
        }
    ).sort_values(["labeled_at", "request_id"], ignore_index=True)
    frame = frame.drop(columns=["is_fraud"])

    reference = _rows(rng, 20_000)
    reference["decision"] = (reference["score"] >= 0.5).astype(int)
    return frame, labels, reference


def _rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    fraud = rng.random(n) < FRAUD_RATE
    amount = np.round(rng.lognormal(3.6 + 0.5 * fraud, 0.9), 2)
    account_age = np.round(rng.exponential(400, n) * np.where(fraud, 0.5, 1.0))
    merchant = rng.choice(MERCHANTS, n, p=MERCHANT_P)
    country = rng.choice(COUNTRIES, n, p=COUNTRY_P)
    score = np.where(fraud, rng.beta(5, 2, n), rng.beta(2, 6, n))
    return pd.DataFrame(
        {
            "amount": amount,
            "merchant_category": merchant,
            "country": country,
            "account_age_days": account_age,
            "score": score,
            "is_fraud": fraud.astype(int),
        }
    )
