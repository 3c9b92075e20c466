"""Root-cause hints: are the right slices named, and what do the per-slice counts cost?

    .venv/bin/python bench/attribution_bench.py            # 200k rows per period; 3 repeats
    .venv/bin/python bench/attribution_bench.py --quick    # 50k rows; 1 repeat

1. Ranking. A simulated stream: a segment with 10% of the traffic loses 0.15 of ROC AUC
   (its scores get noisier) while the rest is unchanged. The rows are folded by Vigil's own
   label fold into summaries, and `detectors.root_cause` ranks the slices against a
   reference period: the segment should rank first with >= 80% of the drop. Then a change
   of mix alone (the weaker segment grows from 10% to 50% of the traffic, every segment's
   AUC unchanged): the split should say *mix*. Then label-free: the same segment's scores
   lose their separation in a window without labels; the estimated ROC AUC and estimated
   accuracy splits (`detectors.root_cause_estimated`) should name it.
2. Cost. A whole tick (bench/tickkit.py, SQLite, 20 features, 24 hourly buckets stored,
   `--rows` new predictions of which half are labelled within the tick) with the per-slice
   counts, against the same tick as Vigil did it before them (no features joined to the label
   read, no per-slice counts of labels or of prediction scores, no labelled reference
   bucket): the tick time ratio and the stored bucket size ratio. Target (issue 15): <= 1.3x
   both. The size the per-slice fields would take as JSON lists rather than comma-joined text
   is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, machine_info

sys.path.insert(0, str(ROOT))
import tickkit

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _period(rng: np.random.Generator, n: int, share: float, separation: float) -> pd.DataFrame:
    """Labelled rows: segment `region` (EU is `share` of traffic and has score separation
    `separation`; the others 2.0), a numeric and a categorical feature, label and score."""
    region = np.where(rng.random(n) < share, "EU", rng.choice(["US", "APAC", "LATAM"], n))
    y = rng.integers(0, 2, n)
    sep = np.where(region == "EU", separation, 2.0)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + sep * (y - 0.5))))
    return pd.DataFrame(
        {
            "region": region,
            "amount": rng.lognormal(3, 1, n),
            "channel": rng.choice(["web", "app", "pos", "phone"], n),
            "@label": y.astype(str),
            "@score": score,
            "@prediction": (score >= 0.5).astype(int).astype(str),
        }
    )


def _summary(frame: pd.DataFrame, reference: Any, labelled: bool = True) -> Any:
    from monitor.core.summaries import merge_all
    from monitor.ingest.batches import LabelBatch, PredictionBatch
    from monitor.ingest.summarize import summarize_labels, summarize_predictions

    n = len(frame)
    ids = pd.Series(np.arange(n))
    at = pd.Series(pd.Timestamp(NOW - HOUR), index=frame.index)
    segs, feats = frame[["region"]], frame[["amount", "channel"]]
    score, decision = frame["@score"], frame["@prediction"]
    preds = PredictionBatch(ids, at, score, decision, feats, segs)
    labels = LabelBatch(ids, at, frame["@label"], at, score, decision, segs, features=feats)
    task = "binary_classification"
    parts = [*summarize_predictions(preds, reference, task, 0.5, HOUR, NOW).values()]
    if labelled:
        parts += summarize_labels(labels, task, 0.5, HOUR, NOW, None, reference).values()
    return merge_all(parts)


def ranking(n: int, seed: int = 5) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from detectors.root_cause import explain, ranked
    from monitor.ingest.fit import fit_reference

    rng = np.random.default_rng(seed)
    ref = _period(rng, n, 0.1, 2.0)
    reference = fit_reference(ref, ["amount", "channel"], [], "bench")
    before = _summary(ref, reference)
    # separation 1.05 takes the segment's own AUC from about 0.92 to 0.77
    broken = _period(rng, n, 0.1, 1.05)
    eu = (ref["region"] == "EU", broken["region"] == "EU")
    seg_auc = [
        roc_auc_score(f.loc[m, "@label"].astype(int), f.loc[m, "@score"])
        for f, m in ((ref, eu[0]), (broken, eu[1]))
    ]
    out: dict[str, Any] = {"rows_per_period": n, "segment_auc": seg_auc}
    for name, metric in (("auc", "roc_auc"), ("accuracy", "accuracy")):
        attributions = explain(metric, before, _summary(broken, reference), reference)
        top = ranked(attributions)
        first, whole = top[0]
        out[f"broken_segment_{name}"] = {
            "first": f"{first.dimension} = {first.value}",
            "share_of_drop": first.contribution / whole.change,
            "performance_share": first.performance / first.contribution,
            "change": whole.change,
            "lines": [f"{s.dimension} = {s.value}" for s, _ in top[:3]],
        }
    mix = _period(rng, n, 0.5, 1.05)
    mixed_ref = _period(rng, n, 0.1, 1.05)
    before_mix = _summary(mixed_ref, reference)
    region = next(
        a
        for a in explain("roc_auc", before_mix, _summary(mix, reference), reference)
        if a.slices[0].dimension == "region"
    )
    from detectors.root_cause_estimated import explain_estimated

    unlabelled = _summary(_period(rng, n, 0.1, 1.05), reference, labelled=False)
    for name, metric in (("auc", "estimated.roc_auc"), ("accuracy", "estimated.accuracy")):
        top = ranked(explain_estimated(metric, before, unlabelled, reference, 0.5))
        first, whole = top[0]
        out[f"label_free_{name}"] = {
            "first": f"{first.dimension} = {first.value}",
            "share_of_drop": first.contribution / whole.change,
            "performance_share": first.performance / first.contribution,
            "before": whole.before,
            "now": whole.now,
            "lines": [f"{s.dimension} = {s.value}" for s, _ in top[:3]],
        }
    out["mix_only_auc"] = {
        "change": region.change,
        "mix_share": sum(s.mix for s in region.slices) / region.change,
        "performance_share": sum(s.performance for s in region.slices) / region.change,
    }
    return out


def cost(rows: int, repeats: int, features: int = 20, hours: int = 24) -> dict[str, Any]:
    window = timedelta(hours=hours)
    out: dict[str, Any] = {"rows": rows, "features": features, "hours": hours}
    with tempfile.TemporaryDirectory(prefix="vigil-attribution-bench-") as tmp:
        prepared = {
            on: tickkit.prepare(
                Path(tmp) / f"slices-{on}",
                features,
                window,
                rows,
                hours - 1,
                new_labels=0.5,
                slices=on,
            )
            for on in (True, False)
        }
        for on, p in prepared.items():
            tickkit.measure_tick(p, slices=on)  # warm-up
        samples: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for r in range(repeats):
            for on in (True, False) if r % 2 == 0 else (False, True):
                run = tickkit.measure_tick(prepared[on], slices=on)
                assert run["labels_read"] > 0
                samples[on].append(run["tick_s"])
                cpu[on].append(run["cpu_s"])
        sizes = {on: tickkit.bucket_payload_bytes(p.folder) for on, p in prepared.items()}
        listed = _list_form_bytes(prepared[True].folder)
    for on in (True, False):
        key = "with_slices" if on else "without_slices"
        out[key] = {
            "tick_s": median(samples[on]),
            "tick_s_all": samples[on],
            "cpu_s": median(cpu[on]),
            "cpu_s_all": cpu[on],
            **sizes[on],
        }
    out["tick_ratio"] = out["with_slices"]["tick_s"] / out["without_slices"]["tick_s"]
    out["cpu_ratio"] = out["with_slices"]["cpu_s"] / out["without_slices"]["cpu_s"]
    total = {on: sizes[on]["predictions_avg_bytes"] + sizes[on]["labels_avg_bytes"] for on in sizes}
    out["bucket_ratio"] = total[True] / total[False]
    out["label_bucket_ratio"] = sizes[True]["labels_avg_bytes"] / sizes[False]["labels_avg_bytes"]
    out["bucket_ratio_as_lists"] = listed / total[False]
    return out


def _list_form_bytes(folder: Path) -> float:
    """Mean bytes of a bucket (predictions + labels part) had the per-slice fields been
    stored as JSON lists instead of comma-joined text."""
    import sqlite3

    with sqlite3.connect(folder / "store.db") as db:
        rows = db.execute("SELECT part, payload FROM bucket_summaries").fetchall()
    total: dict[str, list[int]] = {}
    for part, payload in rows:
        data = json.loads(payload)
        for name in ("slice_labels", "slice_scores"):
            for key, text in data.get(name, {}).items():
                data[name][key] = [int(c) for c in text.split(",")] if text else []
        total.setdefault(part, []).append(len(json.dumps(data)))
    return sum(sum(v) / len(v) for v in total.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None, help="rows per simulated period")
    parser.add_argument("--tick-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default="attribution.json")
    args = parser.parse_args()
    n = args.rows or (50_000 if args.quick else 200_000)
    repeats = args.repeats or (1 if args.quick else 3)
    load_before = os.getloadavg()
    result = {
        "benchmark": "attribution",
        "machine": machine_info(),
        "load_before": load_before,
        "ranking": ranking(n),
        "cost": cost(args.tick_rows, repeats),
        "load_after": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2, default=str))
    print(report(result))
    return 0


def report(result: dict[str, Any]) -> str:
    r, c = result["ranking"], result["cost"]
    auc, acc, mix = r["broken_segment_auc"], r["broken_segment_accuracy"], r["mix_only_auc"]
    lines = [
        f"## Root-cause hints ({r['rows_per_period']:,} rows per period)",
        "",
        "| case | first slice | share of the change | split |",
        "|---|---|---|---|",
        f"| segment (10% of traffic) AUC {r['segment_auc'][0]:.2f} → {r['segment_auc'][1]:.2f},"
        f" ROC AUC split | {auc['first']} | {auc['share_of_drop']:.0%} |"
        f" {auc['performance_share']:.0%} performance |",
        f"| same, accuracy split | {acc['first']} | {acc['share_of_drop']:.0%} |"
        f" {acc['performance_share']:.0%} performance |",
        f"| mix only (segment 10% → 50%), ROC AUC split | – | – |"
        f" {mix['mix_share']:.0%} mix, {mix['performance_share']:.0%} performance |",
        *(
            f"| label-free: same segment's scores, no labels, {key} split"
            f" ({r[f'label_free_{key}']['before']:.3f} → {r[f'label_free_{key}']['now']:.3f})"
            f" | {r[f'label_free_{key}']['first']} |"
            f" {r[f'label_free_{key}']['share_of_drop']:.0%} |"
            f" {r[f'label_free_{key}']['performance_share']:.0%} performance |"
            for key in ("auc", "accuracy")
        ),
        "",
        f"Tick at {c['features']} features, {c['rows']:,} new rows (half labelled in the tick),"
        f" {c['hours']} hourly buckets stored: {c['with_slices']['tick_s']:.3f} s with slices,"
        f" {c['without_slices']['tick_s']:.3f} s without: **{c['tick_ratio']:.2f}×** (median"
        f" of {len(c['with_slices']['tick_s_all'])}; CPU time {c['cpu_ratio']:.2f}×)."
        f" Bucket size (predictions + labels part): **{c['bucket_ratio']:.2f}×**"
        f" (label part alone {c['label_bucket_ratio']:.2f}×; as JSON lists"
        f" {c['bucket_ratio_as_lists']:.2f}×). Load before"
        f" {result['load_before'][0]:.1f}, after {result['load_after'][0]:.1f}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
