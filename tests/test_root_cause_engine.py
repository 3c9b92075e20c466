"""A tick whose accuracy breaches because one segment went wrong puts that segment on the
alert (root-cause lines), in the stored alert JSON, on a real store and source."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from alerts.payloads import alert_from_json
from monitor.cli.main import app
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.store.tables import Incident
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
    hourly,
    write_config,
)

DAY = timedelta(days=1)


def test_a_breach_caused_by_one_segment_names_it(db_url: str, tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = create_source(source_url)
    countries = ["DE", "FR", "NL"]
    day1 = hourly(T0, 300, timedelta(minutes=4))
    day2 = hourly(T0 + 1.25 * DAY + timedelta(hours=2), 280, timedelta(minutes=4))
    ids1 = add_predictions(source, 0, day1, score=0.9, countries=countries)
    ids2 = add_predictions(source, 1000, day2, score=0.9, countries=countries)
    # every label agrees with the decision on day 1; on day 2 every NL decision is wrong
    labels = [(i, ts + timedelta(minutes=1), 1) for i, ts in zip(ids1, day1, strict=True)]
    labels += [
        (i, ts + timedelta(minutes=1), 0 if countries[k % 3] == "NL" else 1)
        for k, (i, ts) in enumerate(zip(ids2, day2, strict=True))
    ]
    add_labels(source, labels)
    data = config_dict(db_url, source_url)
    data["models"]["m"]["predictions"]["segments"] = ["country"]
    config = build_config(data)
    path = write_config(tmp_path / "vigil.yaml", data)
    rt = open_runtime(config, tmp_path)
    try:
        first = tick(rt, "m", T0 + DAY)
        assert not first.breached
        second = tick(rt, "m", T0 + 2.25 * DAY)
        assert second.breached
        with rt.sessions() as session:
            incident = session.scalars(select(Incident)).one()
            stored, incident_id = dict(incident.alert), incident.id
    finally:
        rt.close()
    alert = alert_from_json(stored)
    assert alert.root_cause, stored
    assert alert.root_cause[0].startswith(
        "country = NL: 33% → 33% of traffic, accuracy 1.00 → 0.00"
    )
    assert "(mostly performance)" in alert.root_cause[0]
    first_row = alert.root_cause_table[0]
    assert (first_row["dimension"], first_row["slice"]) == ("country", "NL")
    assert first_row["share_of_change"] > 0.95
    shown = CliRunner().invoke(app, ["incidents", "show", "-c", str(path), str(incident_id)])
    assert shown.exit_code == 0, shown.output
    table = shown.output.split("where the change comes from")[1]
    assert "country = NL" in table.splitlines()[2]  # first row under the header
    assert "accuracy 1.000 → 0.000" in table
