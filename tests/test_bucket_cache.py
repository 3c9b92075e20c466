"""The in-process bucket cache: a window is re-read only where the store changed."""

from __future__ import annotations

from datetime import timedelta

from monitor.core.summaries import BucketSummary
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.state import BucketCache, load_buckets, upsert_buckets
from tests.builders import T0

H = timedelta(hours=1)


def test_cached_window_equals_a_fresh_read_and_follows_updates(db_url: str) -> None:
    """With a cache, loading a window gives the same merged buckets as a read without one,
    both before and after a bucket (and only its labels part) is updated; cached summaries
    are never changed by the merge of a bucket's two parts."""
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for i in range(24):
            upsert_buckets(session, "m", {T0 + i * H: BucketSummary(n=10 + i)}, T0 + i * H)
        upsert_buckets(session, "m", {T0: BucketSummary(n_labelled=5)}, T0, part="labels")
    cache: BucketCache = {}

    def both() -> tuple[list[tuple[object, dict[str, object]]], ...]:
        with sessions() as session:
            fresh = load_buckets(session, "m", T0, T0 + 24 * H)
            cached = load_buckets(session, "m", T0, T0 + 24 * H, cache=cache)
        return tuple([(s, b.to_json()) for s, b in rows] for rows in (fresh, cached))

    fresh, cached = both()
    assert fresh == cached
    assert fresh[0][1]["n"] == 10 and fresh[0][1]["n_labelled"] == 5
    assert len(cache) == 25
    with sessions.begin() as session:
        upsert_buckets(session, "m", {T0: BucketSummary(n_labelled=2)}, T0 + 30 * H, part="labels")
    fresh, cached = both()
    assert fresh == cached
    assert cached[0][1]["n_labelled"] == 7
    assert cache[("m", T0, "predictions")][1].n_labelled == 0  # the cached part is untouched
    with sessions() as session:
        only = load_buckets(session, "m", T0, T0 + 24 * H, cache=cache, only=[T0 + 3 * H])
    assert [(s, b.n) for s, b in only] == [(T0 + 3 * H, 13)]
    engine.dispose()
