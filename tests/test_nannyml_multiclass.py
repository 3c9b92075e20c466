"""Vigil's multiclass CBPE against NannyML's, on the same rows.

NannyML (an independent implementation of CBPE, the method Vigil's label-free estimates
follow) runs in its own environment, `.venv-nannyml`, which `make test` builds with
`scripts/ensure-nannyml.sh` from pinned versions (NannyML needs pandas 3, beside which
evidently 0.7 cannot import, so it cannot share Vigil's venv). The rows go over as CSV; the
two never share code. The test fails, never skips, when that environment is missing.

Tolerance: 0.005 between the two estimates, each fitted on the same 20,000-row labelled
reference and applied to the same 20,000 unlabelled rows. Both calibrate each class's score
on the reference (NannyML one isotonic map per class when it finds the scores uncalibrated,
Vigil per class always) and sum expected confusion counts; Vigil's scores are binned (100 bins
per class), NannyML's are not, and their calibration maps differ in detail, hence a
tolerance rather than equality. Observed (NannyML 0.13.1): at most 0.0015 (accuracy of the
shifted window: 0.4979 against 0.4994); ROC AUC 0.8285 / 0.8292 and 0.6651 / 0.6659.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.ingest.summarize import summarize_predictions
from tests.multiclass_data import (
    COLUMNS,
    MULTICLASS,
    multiclass_rows,
    prediction_batch,
    reference_of,
)
from tests.test_quality_metrics import HOUR, NOW, compute, value, window_of

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.005


def nannyml_python() -> Path:
    found = Path(os.environ.get("VIGIL_NANNYML_PYTHON", ROOT / ".venv-nannyml" / "bin" / "python"))
    if not found.exists():
        pytest.fail(
            f"NannyML's environment is missing ({found}): `make test` builds it "
            "(scripts/ensure-nannyml.sh), or set VIGIL_NANNYML_PYTHON"
        )
    return found


def nannyml_estimates(
    reference: pd.DataFrame, analysis: pd.DataFrame, tmp: Path
) -> dict[str, float]:
    reference.to_csv(tmp / "reference.csv", index=False)
    analysis.drop(columns="label").to_csv(tmp / "analysis.csv", index=False)
    (tmp / "classes.json").write_text(json.dumps(COLUMNS))
    env = {**os.environ, "DO_NOT_TRACK": "1", "NML_DISABLE_USAGE_LOGGING": "1"}
    subprocess.run(
        [
            str(nannyml_python()),
            str(ROOT / "scripts" / "nannyml_multiclass_cbpe.py"),
            str(tmp / "reference.csv"),
            str(tmp / "analysis.csv"),
            str(tmp / "classes.json"),
            str(tmp / "out.json"),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    found: dict[str, float] = json.loads((tmp / "out.json").read_text())
    return found


@pytest.mark.parametrize(
    "shape", [{}, {"sharpness": 0.4, "shift": 1.0}], ids=["as trained", "unsure and shifted"]
)
def test_vigil_multiclass_cbpe_agrees_with_nannyml(shape: dict[str, float], tmp_path: Path) -> None:
    """On a window as trained and on one where the model grew unsure and traffic moved to
    another class, Vigil's `estimated.roc_auc` (macro one-vs-rest) and `estimated.accuracy`
    are within 0.005 of NannyML's multiclass CBPE on the same rows; both put the second
    window's accuracy below 0.6 (it is about 0.66 as trained)."""
    rng = np.random.default_rng(54)
    reference_rows = multiclass_rows(rng, 20_000, labelled=1.0)
    reference = reference_of(reference_rows)
    rows = multiclass_rows(rng, 20_000, labelled=1.0, **shape)
    predictions = summarize_predictions(
        prediction_batch(rows), reference, MULTICLASS, 0.5, HOUR, NOW
    )
    values = compute(window_of(list(predictions.values())), reference, "estimated")
    ours = {
        "roc_auc": value(values, "estimated.roc_auc"),
        "accuracy": value(values, "estimated.accuracy"),
    }
    theirs = nannyml_estimates(reference_rows, rows, tmp_path)
    for metric, mine in ours.items():
        assert abs(mine - theirs[metric]) < TOLERANCE, (metric, mine, theirs)
    if shape:
        assert ours["accuracy"] < 0.6 and theirs["accuracy"] < 0.6, (ours, theirs)
