"""How often drift flags a feature in one daily window: quiet (false) and shifted (power).

Three numeric features and one category, a reference of 20,000 rows; each window's rows go
through `summarize_predictions` and `feature_drifts` exactly as a tick's would. A feature
shifted by a mean of `shift` sd or a spread `scale` times wider is x2; the rate of windows
flagging x2 is the power, and on quiet windows the rate flagging any feature is the false
rate. Compared: the fixed floors (`noise_level: 0`) and the default noise-aware floors.

    .venv/bin/python bench/drift_noise_bench.py --windows 3000
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors.base import DetectorSettings, WindowSummary  # noqa: E402
from detectors.drift import feature_drifts  # noqa: E402
from monitor.ingest.batches import PredictionBatch  # noqa: E402
from monitor.ingest.fit import fit_reference  # noqa: E402
from monitor.ingest.summarize import summarize_predictions  # noqa: E402

NOW = datetime(2026, 11, 2, tzinfo=UTC)
DAY = timedelta(days=1)
FEATURES = ["x1", "x2", "x3", "cat"]
CASES = {"quiet": (0.0, 1.0), "mean +0.25 sd": (0.25, 1.0), "spread +20%": (0.0, 1.2),
         "spread -20%": (0.0, 0.8), "mean +0.1 sd": (0.1, 1.0)}  # fmt: skip


def stream(rng: np.random.Generator, n: int, shift: float, scale: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n) * scale + shift,
            "x3": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def rates(n: int, windows: int, shift: float, scale: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    reference = fit_reference(stream(rng, 20_000, 0.0, 1.0), FEATURES, ["cat"], "ref")
    frame = stream(rng, n * windows, shift, scale)
    start = pd.Timestamp(NOW - windows * DAY)
    batch = PredictionBatch(
        ids=pd.Series(np.arange(n * windows)),
        ts=pd.Series(start + pd.to_timedelta(np.repeat(np.arange(windows), n), unit="D")),
        score=None,
        decision=None,
        features=frame,
    )
    buckets = summarize_predictions(batch, reference, "binary_classification", 0.5, DAY, NOW)
    out = {}
    for name, settings in (
        ("fixed", DetectorSettings(drift_noise_level=0.0)),
        ("noise-aware", DetectorSettings()),
    ):
        x2 = anything = 0
        for summary in buckets.values():
            window = WindowSummary("24h", NOW - DAY, NOW, summary, NOW, settings=settings)
            drifted = {d.feature for d in feature_drifts(window, reference) if d.drifted}
            x2 += "x2" in drifted
            anything += bool(drifted)
        out[f"{name} x2"] = x2 / len(buckets)
        out[f"{name} any"] = anything / len(buckets)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3000, help="quiet windows per size")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/drift_noise.json")
    args = parser.parse_args()
    table = []
    for n in args.sizes:
        for case, (shift, scale) in CASES.items():
            windows = args.windows if case == "quiet" else max(args.windows // 10, 100)
            row = {"rows": n, "case": case, "windows": windows}
            row.update(rates(n, windows, shift, scale, seed=n))
            table.append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
