"""A whole tick over 200 features (150 numeric, 50 categorical) against 20 (15 + 5).

Same rows, same window (24h, with 23 hourly buckets already stored), same eight SLOs (two of
them, drift.psi and dq.missing_rate, on every feature). Linear cost in features would be
10×; the table shows where a 200-feature tick spends its time.

    .venv/bin/python bench/features_bench.py                # 10k and 100k new rows; 3 repeats
    .venv/bin/python bench/features_bench.py --rows 10000 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, fmt, machine_info, median, table, write_tick_results

sys.path.insert(0, str(ROOT))
import tickkit


def run(rows: list[int], repeats: int, counts: list[int], hours: int) -> dict[str, Any]:
    window = timedelta(hours=hours)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vigil-features-bench-") as tmp:
        for n in rows:
            prepared = {
                k: tickkit.prepare(Path(tmp) / f"f{k}-{n}", k, window, n, hours - 1) for k in counts
            }
            for p in prepared.values():
                tickkit.measure_tick(p)
            samples: dict[int, list[dict[str, Any]]] = {k: [] for k in counts}
            for r in range(repeats):
                order = counts if r % 2 == 0 else list(reversed(counts))
                for k in order:
                    samples[k].append(tickkit.measure_tick(prepared[k]))
            entry: dict[str, Any] = {}
            for k, runs in samples.items():
                entry[str(k)] = {
                    "tick_s": median([s["tick_s"] for s in runs]),
                    "tick_s_all": [s["tick_s"] for s in runs],
                    "cpu_s": median([s["cpu_s"] for s in runs]),
                    "vigil_source": sorted({s["vigil_source"] for s in runs}),
                    "phases_s": {
                        p: median([s["phases_s"][p] for s in runs]) for p in runs[0]["phases_s"]
                    },
                    "values": runs[0]["values"],
                    "bucket_payloads": tickkit.bucket_payload_bytes(prepared[k].folder),
                }
            lo, hi = str(min(counts)), str(max(counts))
            entry["ratio"] = entry[hi]["tick_s"] / entry[lo]["tick_s"]
            entry["ratio_cpu"] = entry[hi]["cpu_s"] / entry[lo]["cpu_s"]
            entry["ms_per_feature"] = 1000 * entry[hi]["tick_s"] / max(counts)
            out[str(n)] = entry
            print(
                f"rows={n:,}: {lo} features {entry[lo]['tick_s']:.3f} s, {hi} features "
                f"{entry[hi]['tick_s']:.3f} s, ratio {entry['ratio']:.2f}",
                file=sys.stderr,
            )
    return out


def report(results: dict[str, Any], counts: list[int]) -> str:
    rows = []
    shown = (
        "read_source",
        "summarize",
        "commit",
        "load_buckets",
        "merge_window",
        "detectors",
        "slo_and_incidents",
    )
    for n, e in results.items():
        for k in counts:
            x = e[str(k)]
            ph = x["phases_s"]
            rows.append(
                [
                    f"{int(n):,}",
                    k,
                    fmt(x["tick_s"]),
                    f"{e['ratio']:.1f}× (CPU {e['ratio_cpu']:.1f}×)" if k == max(counts) else "1",
                    x["values"],
                    *(fmt(ph[p]) for p in shown),
                ]
            )
    return table(
        [
            "new rows",
            "features",
            "tick (s)",
            "÷ fewest",
            "SLO values",
            *(f"{p} (s)" for p in shown),
        ],
        rows,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--features", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--window-hours", type=int, default=24)
    parser.add_argument("--out", default="features.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    machine = machine_info()
    started = time.time()
    counts = sorted(args.features)
    results = run(args.rows, args.repeats, counts, args.window_hours)
    print(report(results, counts))
    write_tick_results("features", args, machine, started, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
