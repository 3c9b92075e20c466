"""A whole tick with a 7-day window against a 1-hour window, at the same number of new rows.

Both start from the same state: 7 days (168) of hourly buckets already stored (predictions
and labels parts), the watermark after them, and `--rows` new predictions in the current
hour. The only difference is the SLO window (eight SLOs, all on 1h or all on 7d), so the 7d
tick loads and merges 168 buckets where the 1h tick loads one. Target: 7d / 1h <= 1.5.

    .venv/bin/python bench/window_bench.py                 # 1k, 10k, 100k new rows; 5 repeats
    .venv/bin/python bench/window_bench.py --rows 10000 --repeats 9

Ticks alternate 1h / 7d (round-robin, the first of each pair alternating) in one process
after one untimed warm-up tick of each; medians are reported.
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

TARGET = 1.5


def run(rows: list[int], repeats: int, features: int, prefill_hours: int) -> dict[str, Any]:
    windows = {"1h": timedelta(hours=1), "7d": timedelta(days=7)}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vigil-window-bench-") as tmp:
        for n in rows:
            prepared = {
                label: tickkit.prepare(Path(tmp) / f"{label}-{n}", features, w, n, prefill_hours)
                for label, w in windows.items()
            }
            sizes = tickkit.bucket_payload_bytes(prepared["7d"].folder)
            for p in prepared.values():  # warm-up: imports, SQL compilation caches
                tickkit.measure_tick(p)
            samples: dict[str, list[dict[str, Any]]] = {label: [] for label in windows}
            for r in range(repeats):
                order = list(windows) if r % 2 == 0 else list(reversed(windows))
                for label in order:
                    samples[label].append(tickkit.measure_tick(prepared[label]))
            entry: dict[str, Any] = {"bucket_payloads": sizes}
            for label, runs in samples.items():
                entry[label] = {
                    "tick_s": median([s["tick_s"] for s in runs]),
                    "tick_s_all": [s["tick_s"] for s in runs],
                    "cpu_s": median([s["cpu_s"] for s in runs]),
                    "vigil_source": sorted({s["vigil_source"] for s in runs}),
                    "phases_s": {
                        k: median([s["phases_s"][k] for s in runs]) for k in runs[0]["phases_s"]
                    },
                    "values": runs[0]["values"],
                }
            ratios = [
                a["tick_s"] / b["tick_s"] for a, b in zip(samples["7d"], samples["1h"], strict=True)
            ]
            entry["ratio_7d_over_1h"] = entry["7d"]["tick_s"] / entry["1h"]["tick_s"]
            entry["ratio_pairwise_median"] = median(ratios)
            entry["ratio_cpu"] = entry["7d"]["cpu_s"] / entry["1h"]["cpu_s"]
            entry["target_met"] = entry["ratio_7d_over_1h"] <= TARGET
            out[str(n)] = entry
            print(
                f"rows={n:,}: 1h {entry['1h']['tick_s']:.3f} s, 7d {entry['7d']['tick_s']:.3f} s,"
                f" ratio {entry['ratio_7d_over_1h']:.2f}",
                file=sys.stderr,
            )
    return out


def report(results: dict[str, Any]) -> str:
    rows = []
    for n, e in results.items():
        ph1, ph7 = e["1h"]["phases_s"], e["7d"]["phases_s"]
        rows.append(
            [
                f"{int(n):,}",
                fmt(e["1h"]["tick_s"]),
                fmt(e["7d"]["tick_s"]),
                f"**{e['ratio_7d_over_1h']:.2f}×** (CPU {e['ratio_cpu']:.2f}×)",
                "met" if e["target_met"] else "NOT met",
                f"{fmt(ph1['load_buckets'])} / {fmt(ph7['load_buckets'])}",
                f"{fmt(ph1['merge_window'])} / {fmt(ph7['merge_window'])}",
                f"{fmt(ph1['detectors'])} / {fmt(ph7['detectors'])}",
                f"{fmt(ph1['read_source'])} / {fmt(ph1['summarize'])} / {fmt(ph1['commit'])}",
            ]
        )
    return table(
        [
            "new rows",
            "tick 1h (s)",
            "tick 7d (s)",
            "7d ÷ 1h",
            f"target ≤ {TARGET}×",
            "load buckets 1h / 7d (s)",
            "merge 1h / 7d (s)",
            "detectors 1h / 7d (s)",
            "1h: read / summarize / commit (s)",
        ],
        rows,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--prefill-hours", type=int, default=168)
    parser.add_argument("--out", default="window.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    machine = machine_info()
    started = time.time()
    results = run(args.rows, args.repeats, args.features, args.prefill_hours)
    print(report(results))
    write_tick_results("window", args, machine, started, results, target_ratio=TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
