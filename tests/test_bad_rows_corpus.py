"""The bad-row corpus (`examples/bad_rows/*.yaml`): each file adds one kind of bad row to a
source of 20 good predictions and 5 labels, runs three real ticks (12:00, 12:10 after its
`later` rows, 15:00 past the 2h label horizon) and checks its expected outcomes and counters.

Every tick must succeed and account for every row it reads; outcomes are compared beyond
the good rows' own (20 predictions and 5 labels summarised); counters are read from the
merge of every stored bucket (`bad.<reason>`, `missing.<feature>`, `categorical.<f>.<v>`,
`n`, ...). The source is SQLite, the one backend that accepts all of these values.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.summaries import BucketSummary, merge_all
from monitor.engine.tick import tick
from monitor.store.state import load_buckets
from tests.loose_source import NOW, create_loose_source, good_row, insert, loose_runtime

CORPUS = Path(__file__).resolve().parent.parent / "examples" / "bad_rows"
CASES = sorted(CORPUS.glob("*.yaml"))
GOOD = {"predictions.summarised": 20, "labels.summarised": 5}
PREDICTION = {
    "predicted_at": "2026-11-10 10:00:00.000000",
    "amount": 5.0,
    "country": "DE",
    "score": 0.8,
    "decision": 1,
}
LABEL = {"labeled_at": "2026-11-10 11:00:00.000000", "is_fraud": 1}


def test_the_corpus_has_at_least_30_kinds() -> None:
    assert len(CASES) >= 30
    kinds = [yaml.safe_load(p.read_text(encoding="utf-8"))["kind"] for p in CASES]
    assert len(set(kinds)) == len(kinds)


def _add(source: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
    insert(source, "predictions", [{**PREDICTION, **r} for r in rows.get("predictions", [])])
    insert(source, "labels", [{**LABEL, **r} for r in rows.get("labels", [])])


def counter(summary: BucketSummary, path: str) -> Any:
    value: Any = summary
    for part in path.split("."):
        value = getattr(value, part) if isinstance(value, BucketSummary) else value.get(part, 0)
    return value


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_bad_row(case: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    source = create_loose_source(f"sqlite:///{tmp_path / 'source.db'}")
    good = [good_row(i, NOW - timedelta(hours=3) + timedelta(minutes=i - 1)) for i in range(1, 21)]
    insert(source, "predictions", good)
    insert(source, "labels", [{**LABEL, "request_id": i} for i in range(1, 6)])
    _add(source, spec)
    rt = loose_runtime(
        f"sqlite:///{tmp_path / 'store.db'}", str(source.url), tmp_path, label_horizon="2h"
    )
    outcomes: dict[str, int] = {}
    try:
        for at, later in (
            (NOW, False),
            (NOW + timedelta(minutes=10), True),
            (NOW.replace(hour=15), False),
        ):
            if later:
                _add(source, spec.get("later", {}))
            result = tick(rt, "m", at)
            assert all(v == 0 for v in result.intake.unaccounted().values()), result.intake
            for key, count in result.intake.outcomes.items():
                outcomes[key] = outcomes.get(key, 0) + count
        with rt.sessions() as session:
            stored = merge_all(
                s
                for _, s in load_buckets(
                    session, "m", NOW - timedelta(days=30), NOW.replace(year=2200)
                )
            )
    finally:
        rt.close()
        source.dispose()
    beyond = {k: v - GOOD.get(k, 0) for k, v in outcomes.items() if v - GOOD.get(k, 0)}
    assert beyond == spec["expect"]["outcomes"], spec["kind"]
    for path, want in spec["expect"]["counters"].items():
        assert counter(stored, path) == want, f"{spec['kind']}: {path}"
