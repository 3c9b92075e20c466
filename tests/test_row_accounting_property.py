"""Property: on random bad data, every row read lands in exactly one outcome, and over a run
every row of the source reaches exactly one final outcome (summarised or bad by reason),
on SQLite and on PostgreSQL (source and store on the same backend).

The expected counts are computed here from the generated rows alone, independently of the
reader: distinct ids with a usable time are summarised, their repeats are duplicates, rows
with no id are `missing_id`, rows with no usable time are `bad_timestamp`.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from monitor.core.summaries import merge_all
from monitor.engine.tick import tick
from monitor.store.state import load_buckets
from tests.loose_source import NOW, create_loose_source, insert, loose_runtime, stamp

FINAL = ("summarised", "bad.")
counter = itertools.count()


def rows_strategy(text_times: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    time_kinds = ["ok", "ok", "ok", "null", "future"] + (["garbage"] if text_times else [])
    row = st.fixed_dictionaries(
        {
            "id": st.one_of(st.none(), st.integers(0, 25)),
            "time": st.sampled_from(time_kinds),
            "minutes": st.integers(1, 170),
            "score": st.one_of(
                st.floats(0, 1), st.just(math.nan), st.floats(1.01, 5), st.floats(-5, -0.01)
            ),
            "amount": st.one_of(st.none(), st.floats(-1e6, 1e6), st.just(math.inf))
            if not text_times
            else st.one_of(st.none(), st.floats(-1e6, 1e6), st.just("abc")),
            "country": st.one_of(st.none(), st.sampled_from(["DE", "FR", "XX", ""])),
        }
    )
    return st.lists(row, min_size=1, max_size=60)


def _source_row(i: int, spec: dict[str, Any], text: bool) -> dict[str, Any]:
    kind = spec["time"]
    when = NOW - timedelta(minutes=spec["minutes"])
    raw: Any = stamp(when, text)
    row_id = spec["id"]
    if kind == "null":
        raw, row_id = None, 1000 + i  # one key per bad row: nothing identical to collapse
    elif kind == "garbage":
        raw, row_id = f"bad time {i}", 1000 + i
    elif kind == "future":
        raw = stamp(NOW + timedelta(minutes=10 + spec["minutes"]), text)
    return {
        "request_id": row_id,
        "predicted_at": raw,
        "amount": spec["amount"],
        "country": spec["country"],
        "score": spec["score"],
        "decision": None,
    }


def expected(specs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, int]:
    usable = [r for s, r in zip(specs, rows, strict=True) if s["time"] in ("ok", "future")]
    with_id = [r for r in usable if r["request_id"] is not None]
    distinct = len({r["request_id"] for r in with_id})
    out = {
        "summarised": distinct,
        "bad.duplicate_id": len(with_id) - distinct,
        "bad.missing_id": len(usable) - len(with_id),
        "bad.bad_timestamp": len(rows) - len(usable),
    }
    return {k: v for k, v in out.items() if v}


def run(store_url: str, source_url: str, specs: list[dict[str, Any]], text: bool) -> None:
    n = next(counter)
    table = f"predictions_{n}"
    source = create_loose_source(source_url, table)
    rows = [_source_row(i, spec, text) for i, spec in enumerate(specs)]
    insert(source, table, rows)
    source.dispose()
    with tempfile.TemporaryDirectory() as directory:
        rt = loose_runtime(store_url, source_url, Path(directory), model=f"m{n}", table=table)
        finals: dict[str, int] = {}
        try:
            for minutes in (0, 10, 240, 250):  # future rows come of age at +4h
                result = tick(rt, f"m{n}", NOW + timedelta(minutes=minutes))
                assert all(v == 0 for v in result.intake.unaccounted().values()), result.intake
                for key, count in result.intake.outcomes.items():
                    stream, _, outcome = key.partition(".")
                    assert stream == "predictions"
                    if outcome.startswith(FINAL):
                        finals[outcome] = finals.get(outcome, 0) + count
            with rt.sessions() as session:
                start, end = NOW - timedelta(days=30), NOW + timedelta(days=30)
                stored = merge_all(s for _, s in load_buckets(session, f"m{n}", start, end))
        finally:
            rt.close()
    assert finals == expected(specs, rows)
    assert sum(finals.values()) == len(rows)
    assert stored.n == finals.get("summarised", 0)
    future = sum(1 for s in specs if s["time"] == "future")
    bad_reasons = {k: v for k, v in stored.bad.items() if k in ("duplicate_id", "missing_id")}
    assert bad_reasons == {
        k[4:]: v for k, v in finals.items() if k in ("bad.duplicate_id", "bad.missing_id")
    }
    assert stored.bad.get("bad_timestamp", 0) == finals.get("bad.bad_timestamp", 0)
    assert stored.bad.get("future_timestamp", 0) <= future


SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: bounded time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(specs=rows_strategy(text_times=True))
def test_every_row_accounted_for_on_sqlite(tmp_path: Path, specs: list[dict[str, Any]]) -> None:
    n = next(counter)
    run(
        f"sqlite:///{tmp_path / f'store{n}.db'}", f"sqlite:///{tmp_path / 'source.db'}", specs, True
    )


@SETTINGS
@given(specs=rows_strategy(text_times=False))
def test_every_row_accounted_for_on_postgresql(
    two_pg: tuple[str, str], specs: list[dict[str, Any]]
) -> None:
    store_url, source_url = two_pg
    run(store_url, source_url, specs, False)


@pytest.fixture
def two_pg(pg_url: str) -> tuple[str, str]:
    """The store and the source in one PostgreSQL database (their table names differ)."""
    return pg_url, pg_url
