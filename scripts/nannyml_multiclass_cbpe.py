"""Run by `tests/test_nannyml_multiclass.py` in the separate NannyML environment (`.venv-nannyml`,
made by `scripts/ensure-nannyml.sh`), never imported by Vigil's own tests: NannyML pins its own
pandas, which Vigil's evidently cannot import beside.

    python scripts/nannyml_multiclass_cbpe.py reference.csv analysis.csv classes.json out.json

Fits NannyML's multiclass CBPE (default settings) on the labelled reference and estimates ROC
AUC (one-vs-rest, macro) and accuracy on the analysis rows as one chunk.
"""

from __future__ import annotations

import json
import sys

import nannyml as nml
import pandas as pd


def main(reference_csv: str, analysis_csv: str, classes_json: str, out_json: str) -> None:
    with open(classes_json) as handle:
        columns: dict[str, str] = json.load(handle)
    reference = pd.read_csv(reference_csv)
    analysis = pd.read_csv(analysis_csv)
    cbpe = nml.CBPE(
        y_pred_proba=columns,
        y_pred="decision",
        y_true="label",
        problem_type="classification_multiclass",
        metrics=["roc_auc", "accuracy"],
        chunk_number=1,
    )
    cbpe.fit(reference)
    frame = cbpe.estimate(analysis).filter(period="analysis").to_df()
    out = {metric: float(frame[(metric, "value")].iloc[0]) for metric in ("roc_auc", "accuracy")}
    out["nannyml"] = nml.__version__
    with open(out_json, "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main(*sys.argv[1:5])
