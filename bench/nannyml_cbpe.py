"""NannyML's CBPE on a detection-benchmark stream: the contender beside Vigil's estimate.

Runs in its own environment (NannyML pins versions Vigil does not share), so it imports only
pandas, numpy and nannyml; `detection_bench.py --nannyml PYTHON` writes each AUC stream to a
directory and runs this script on it in the same run:

    python bench/nannyml_cbpe.py DIR      # DIR: reference.csv, predictions.csv, meta.json

CBPE with its defaults (isotonic calibration, thresholds of 3 standard deviations of the
reference chunks' estimates) estimates ROC AUC per chunk of `chunk_size` rows, the reference
chunked alike. Chunks of one, seven and thirty days' rows are judged where the reference
holds at least two such chunks (NannyML has no window or sequential rule: each chunk stands
alone). A chunk is known at its last prediction, so the delay is from the change to the end
of the first alerting chunk that ends after it (a chunk straddling the change included).
Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import nannyml as nml
import pandas as pd


def judge(
    reference: pd.DataFrame, analysis: pd.DataFrame, chunk: int, change: float
) -> dict[str, object]:
    cbpe = nml.CBPE(
        metrics=["roc_auc"],
        y_pred_proba="score",
        y_pred="decision",
        y_true="y",
        problem_type="classification_binary",
        chunk_size=chunk,
    )
    cbpe.fit(reference)
    result = cbpe.estimate(analysis).filter(period="analysis").to_df()
    ends = [
        float(analysis["day"].iloc[min(int(i), len(analysis) - 1)])
        for i in result[("chunk", "end_index")]
    ]
    starts = [float(analysis["day"].iloc[int(i)]) for i in result[("chunk", "start_index")]]
    alerts = [bool(a) for a in result[("roc_auc", "alert")]]
    values = [float(v) for v in result[("roc_auc", "value")]]
    lower = result[("roc_auc", "lower_threshold")]
    after = [i for i, end in enumerate(ends) if end > change]
    before = [i for i, end in enumerate(ends) if end <= change]
    fired = [i for i in after if alerts[i]]
    return {
        "chunk_rows": chunk,
        "lower_threshold": float(lower.iloc[0]),
        "reference_value_mean": float(
            cbpe.estimate(reference).to_df()[("roc_auc", "value")].mean()
        ),
        "chunks_after_change": len(after),
        "alerting_after_change": len(fired),
        "delay_d": round(ends[fired[0]] - change, 2) if fired else None,
        "first_alert_chunk_starts_after_change": starts[fired[0]] >= change if fired else None,
        "false_alerts_before_change": sum(alerts[i] for i in before),
        "chunks_before_change": len(before),
        "estimate_before_change_mean": (
            sum(values[i] for i in before) / len(before) if before else None
        ),
        "estimate_after_change_mean": sum(values[i] for i in after) / len(after) if after else None,
    }


def main() -> None:
    directory = Path(sys.argv[1])
    meta = json.loads((directory / "meta.json").read_text())
    reference = pd.read_csv(directory / "reference.csv")
    analysis = pd.read_csv(directory / "predictions.csv")
    per_day, change = int(meta["per_day"]), float(meta["change_day"])
    out = {"nannyml": nml.__version__, "per_day": per_day, "chunks": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for days in (1, 7, 30):
            rows = per_day * days
            if len(reference) < 2 * rows:  # thresholds need a spread over reference chunks
                continue
            found = judge(reference, analysis, rows, change)
            out["chunks"].append(
                {"chunk_days": days, "reference_chunks": len(reference) // rows, **found}
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
