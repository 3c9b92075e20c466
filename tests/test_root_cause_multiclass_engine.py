"""A multiclass model without a segment column, through the real engine and store: its
breaching estimate says why it has no slice split, in the stored alert and in
`vigil incidents show`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy import select
from typer.testing import CliRunner

from alerts.payloads import alert_from_json
from detectors.root_cause_multiclass import NO_SPLIT
from monitor.cli.main import app
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.store.tables import Incident
from tests.builders import build_config, write_config
from tests.multiclass_data import multiclass_rows
from tests.test_multiclass_engine import (
    SCORE_COLUMNS,
    _write,
    labels_of,
    model_config,
    predictions_of,
)
from tests.test_quality_metrics import NOW


def test_a_multiclass_estimate_without_segments_says_why_it_has_no_split(
    two_db_urls: tuple[str, str], tmp_path: Path
) -> None:
    engine = sa.create_engine(two_db_urls[1])
    rng = np.random.default_rng(43)
    reference = multiclass_rows(rng, 3000, labelled=1.0)
    _write(
        engine,
        "reference_rows",
        reference[["decision", *SCORE_COLUMNS, "label"]].rename(columns={"label": "queue"}),
    )
    rows = multiclass_rows(rng, 2400).sort_values("ts", ignore_index=True)
    _write(engine, "routed", predictions_of(rows))
    _write(engine, "resolved", labels_of(rows))
    engine.dispose()
    slos = [{"metric": "estimated.accuracy", "window": "48h", "objective": ">= 0.99"}]
    data = model_config(*two_db_urls, slos)
    rt = open_runtime(build_config(data), tmp_path)
    try:
        assert tick(rt, "m", NOW + timedelta(hours=22)).breached
        with rt.sessions() as session:
            incident = session.scalars(select(Incident)).one()
            stored, incident_id = dict(incident.alert), incident.id
    finally:
        rt.close()
    assert list(alert_from_json(stored).root_cause) == [NO_SPLIT]
    path = write_config(tmp_path / "vigil.yaml", data)
    shown = CliRunner().invoke(app, ["incidents", "show", "-c", str(path), str(incident_id)])
    assert shown.exit_code == 0, shown.output
    assert f"root cause:\n  {NO_SPLIT}" in shown.output
