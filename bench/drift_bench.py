"""Drift on one window: Vigil against evidently 0.7, NannyML and a plain numpy floor.

Every measurement runs in a fresh child process (so its peak RSS is its own), contenders
round-robin within each repeat, all in the same run; the parent prints medians and ratios,
checks Vigil's statistics against the floor's and its verdict against the shifted columns,
and writes bench/results/drift.json.

    .venv/bin/python bench/drift_bench.py                       # 10k, 100k, 1M; 3 repeats
    .venv/bin/python bench/drift_bench.py --sizes 10000 --repeats 5
    .venv/bin/python bench/drift_bench.py --peer-repeats 1      # evidently/NannyML once at >=1M

What is timed (per window, the reference fitted once beforehand and timed apart):
  vigil      PredictionBatch from the frame's arrays -> summarize_predictions (1-day bucket)
             -> merge_all -> Drift().compute (PSI, JS, Wasserstein, KS + p, chi-square, BH,
             missing share, new categories)
  floor      quantile edges fitted once; per window np.searchsorted + np.bincount per numeric
             column, category codes + np.bincount per categorical one, then PSI, JS, binned
             KS + p, Wasserstein, chi-square + p and BH from the counts
  evidently  Report([DataDriftPreset()]).run(current, reference)  (it has no separate fit)
  nannyml    UnivariateDriftCalculator(KS, JS, Wasserstein | chi2, JS; one chunk).calculate
             (fit on the reference timed apart), in bench/.venv-nannyml
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    MIB,
    ROOT,
    child_result,
    fmt,
    machine_info,
    median,
    parse_child,
    reset_peak,
    rss_now,
    rss_peak_since_reset,
    ru_maxrss_bytes,
    source_fingerprint,
    table,
    write_json,
)

CONTENDERS = ("vigil", "floor", "evidently", "nannyml")
PEERS = ("evidently", "nannyml")
NANNYML_VENV = BENCH_DIR / ".venv-nannyml"
NANNYML_PY = NANNYML_VENV / "bin" / "python"
WARMUP_ROWS = 2000
AGREE_TOL = 1e-9
AGREE_KEYS = ("psi", "js", "ks", "chi2", "p_value", "adjusted_p")
"""Statistics that must agree to AGREE_TOL on the same bins; Wasserstein is reported too."""
JS_THRESHOLD = 0.1


# --------------------------------------------------------------------------- contenders
# Each returns (fit, step, check): fit() runs once and is timed apart; step() is the per-window
# work that is timed; check() (not timed) returns per-feature results for the parent's checks.


def contender_vigil(data: Any, frame_slice: slice) -> tuple[Any, Any, Any]:
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd
    from scipy.spatial.distance import jensenshannon

    from detectors.base import WindowSummary
    from detectors.drift import Drift, feature_drifts
    from monitor.core.summaries import merge_all
    from monitor.ingest.batches import PredictionBatch
    from monitor.ingest.fit import fit_reference
    from monitor.ingest.summarize import summarize_predictions

    ref_frame = data.reference.iloc[frame_slice]
    cur_frame = data.current.iloc[frame_slice]
    ts_values = data.ts[frame_slice]
    ids = np.arange(len(cur_frame), dtype=np.int64)
    width = timedelta(days=1)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    now = start + width - timedelta(minutes=1)
    state: dict[str, Any] = {}
    phases: dict[str, list[float]] = {"batch": [], "summarize": [], "merge": [], "compute": []}

    def fit() -> None:
        state["reference"] = fit_reference(
            ref_frame, data.numeric + data.categorical, data.categorical, "bench", "regression"
        )

    def step() -> None:
        t0 = time.perf_counter()
        batch = PredictionBatch(
            ids=pd.Series(ids),
            ts=pd.Series(ts_values.view("M8[ns]")).dt.tz_localize("UTC"),
            score=None,
            decision=None,
            features=cur_frame,
        )
        t1 = time.perf_counter()
        buckets = summarize_predictions(batch, state["reference"], "regression", 0.5, width, now)
        t2 = time.perf_counter()
        merged = merge_all(buckets.values())
        window = WindowSummary("1d", start, start + width, merged, merged.newest_prediction)
        t3 = time.perf_counter()
        state["values"] = Drift().compute(window, state["reference"], now)
        t4 = time.perf_counter()
        state["window"] = window
        for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            phases[key].append(value)

    def check() -> dict[str, Any]:
        reference, window = state["reference"], state["window"]
        out = {}
        for d in feature_drifts(window, reference):
            if d.feature in reference.numeric:
                p, q = reference.numeric[d.feature].counts, window.summary.numeric[d.feature]
            else:
                ref_counts = reference.categorical[d.feature].counts
                cur_counts = window.summary.categorical[d.feature]
                cats = sorted(ref_counts.keys() | cur_counts.keys())
                p = [ref_counts.get(c, 0) for c in cats]
                q = [cur_counts.get(c, 0) for c in cats]
            out[d.feature] = {
                "psi": d.psi,
                "js": d.js,
                "scipy_js": float(jensenshannon(np.asarray(p, float), np.asarray(q, float))),
                "ks": d.ks,
                "wasserstein": d.wasserstein,
                "chi2": d.chi2,
                "p_value": d.p_value,
                "adjusted_p": d.adjusted_p,
                "drifted": d.drifted,
                "n": d.n,
            }
        return {
            "features": out,
            "metric_values": len(state["values"]),
            "phases_s": {k: median(v) for k, v in phases.items()},
        }

    return fit, step, check


def contender_floor(data: Any, frame_slice: slice) -> tuple[Any, Any, Any]:
    """The floor: what a careful hand-written vectorised numpy version of the same work costs.

    Same bins as Vigil (reference ventiles, PSI read on pairs of them, i.e. deciles), so its
    numbers must agree with Vigil's to rounding. It does not check ids, timestamps or types,
    nor keep sums for means; it reads categories through pandas' hash table (`pd.Categorical`),
    the vectorised way to code strings (numpy can only sort them).
    """
    import numpy as np
    import pandas as pd
    from scipy import special
    from scipy.stats import ks_2samp, wasserstein_distance

    ref_frame = data.reference.iloc[frame_slice]
    cur_frame = data.current.iloc[frame_slice]
    numeric, categorical = data.numeric, data.categorical
    fitted: dict[str, Any] = {}
    state: dict[str, Any] = {}

    def fit() -> None:
        q = np.linspace(0, 1, 21)[1:-1]
        for name in numeric:
            values = ref_frame[name].to_numpy(dtype=float)
            present = values[np.isfinite(values)]
            edges = np.unique(np.quantile(present, q))
            bins = np.searchsorted(edges, present, side="right")
            counts = np.bincount(bins, minlength=edges.size + 1)
            sums = np.bincount(bins, weights=present, minlength=edges.size + 1)
            means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
            fitted[name] = (edges, counts, means, present.std(ddof=1))
        for name in categorical:
            values = ref_frame[name]
            cats = np.sort(values.dropna().unique().astype(str))
            codes = pd.Categorical(values, categories=cats).codes
            fitted[name] = (cats, np.bincount(codes[codes >= 0], minlength=cats.size))

    def stats_from_counts(e: np.ndarray, a: np.ndarray, decile: bool) -> dict[str, float]:
        n, m = e.sum(), a.sum()
        pe, pa = e / n, a / m
        if decile and e.size == 20:
            de, da = pe.reshape(10, 2).sum(1), pa.reshape(10, 2).sum(1)
        else:
            de, da = pe, pa
        ce, ca = np.clip(de, 1e-4, None), np.clip(da, 1e-4, None)
        mid = (pe + pa) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_e = np.where(pe > 0, pe * np.log(pe / mid), 0.0).sum()
            kl_a = np.where(pa > 0, pa * np.log(pa / mid), 0.0).sum()
        return {
            "psi": float(np.sum((ca - ce) * np.log(ca / ce))),
            "js": float(np.sqrt(max((kl_e + kl_a) / 2, 0.0))),
        }

    def step() -> None:
        out: dict[str, dict[str, float]] = {}
        p_values = []
        for name in numeric:
            edges, ref_counts, ref_means, sd = fitted[name]
            values = cur_frame[name].to_numpy(dtype=float)
            finite = np.isfinite(values)
            v = values if finite.all() else values[finite]
            bins = np.searchsorted(edges, v, side="right")
            counts = np.bincount(bins, minlength=edges.size + 1)
            sums = np.bincount(bins, weights=v, minlength=edges.size + 1)
            s = stats_from_counts(ref_counts, counts, decile=True)
            n, m = ref_counts.sum(), counts.sum()
            cdf_e, cdf_a = np.cumsum(ref_counts) / n, np.cumsum(counts) / m
            d = float(np.max(np.abs(cdf_e - cdf_a)))
            s["ks"] = d
            s["p_value"] = float(min(max(special.kolmogorov(d * np.sqrt(n * m / (n + m))), 0), 1))
            # Wasserstein with each bin's mass at the mean of its values (both sides).
            means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
            r_used, c_used = ref_counts > 0, counts > 0
            s["wasserstein"] = (
                wasserstein_distance(
                    ref_means[r_used], means[c_used], ref_counts[r_used], counts[c_used]
                )
                / sd
            )
            s["missing"] = int(values.size - v.size)
            out[name] = s
            p_values.append(s["p_value"])
        for name in categorical:
            cats, ref_counts = fitted[name]
            # Hash-code the column (few distinct values), count per code, then map the k
            # distinct values (not the N rows) onto the reference's categories.
            codes, uniques = pd.factorize(cur_frame[name])
            counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
            where = np.searchsorted(cats, np.asarray(uniques, dtype=str))
            where = np.minimum(where, cats.size - 1)
            known = cats[where] == np.asarray(uniques, dtype=str)
            cur_counts = np.bincount(where[known], counts[1:][known], cats.size).astype(np.int64)
            s = stats_from_counts(ref_counts, cur_counts, decile=False)
            table_ = np.vstack([ref_counts, cur_counts]).astype(float)
            table_ = table_[:, table_.sum(0) > 0]
            expected = table_.sum(1, keepdims=True) * table_.sum(0) / table_.sum()
            chi2 = float(((table_ - expected) ** 2 / expected).sum())
            s["chi2"] = chi2
            s["p_value"] = float(special.chdtrc(table_.shape[1] - 1, chi2))
            s["missing"] = int(counts[0])
            s["unseen"] = int(counts[1:][~known].sum())
            out[name] = s
            p_values.append(s["p_value"])
        # Benjamini-Hochberg
        p = np.asarray(p_values)
        order = np.argsort(p)
        ranked = p[order] * p.size / np.arange(1, p.size + 1)
        adjusted = np.empty_like(p)
        adjusted[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
        for (_name, s), adj in zip(out.items(), adjusted, strict=True):
            s["adjusted_p"] = float(adj)
            s["drifted"] = bool(adj < 0.05 and s["psi"] >= 0.05)
        state["out"] = out

    def check() -> dict[str, Any]:
        """Also the raw-value KS and Wasserstein (scipy), to state the binning error."""
        raw: dict[str, dict[str, float]] = {}
        for name in numeric:
            r = ref_frame[name].to_numpy(dtype=float)
            c = cur_frame[name].to_numpy(dtype=float)
            r, c = r[np.isfinite(r)], c[np.isfinite(c)]
            raw[name] = {
                "raw_ks": float(ks_2samp(r, c).statistic),
                "raw_wasserstein": float(wasserstein_distance(r, c) / fitted[name][3]),
            }
        return {"features": state["out"], "raw": raw}

    return fit, step, check


def contender_evidently(data: Any, frame_slice: slice) -> tuple[Any, Any, Any]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref_frame = data.reference.iloc[frame_slice]
    cur_frame = data.current.iloc[frame_slice]
    state: dict[str, Any] = {}

    def fit() -> None:
        """evidently has no fitted reference: the whole reference is read on every run."""

    def step() -> None:
        state["snapshot"] = Report([DataDriftPreset()]).run(cur_frame, ref_frame)

    def check() -> dict[str, Any]:
        out = {}
        for metric in state["snapshot"].dict()["metrics"]:
            config = metric.get("config", {})
            if not config.get("type", "").endswith("ValueDrift"):
                continue
            method, threshold = str(config.get("method")), float(config.get("threshold"))
            value = float(metric["value"])
            is_distance = any(w in method.lower() for w in ("distance", "psi", "divergence"))
            drifted = value >= threshold if is_distance else value < threshold
            out[config["column"]] = {
                "method": method,
                "value": value,
                "threshold": threshold,
                "drifted": drifted,
            }
        return {"features": out}

    return fit, step, check


def contender_nannyml(data: Any, frame_slice: slice) -> tuple[Any, Any, Any]:
    import nannyml as nml

    ref_frame = data.reference.iloc[frame_slice]
    cur_frame = data.current.iloc[frame_slice]
    state: dict[str, Any] = {}

    def fit() -> None:
        calc = nml.UnivariateDriftCalculator(
            column_names=data.numeric + data.categorical,
            treat_as_categorical=data.categorical,
            continuous_methods=["kolmogorov_smirnov", "jensen_shannon", "wasserstein"],
            categorical_methods=["chi2", "jensen_shannon"],
            chunk_number=1,
        )
        state["calc"] = calc.fit(ref_frame)

    def step() -> None:
        state["result"] = state["calc"].calculate(cur_frame)

    def check() -> dict[str, Any]:
        frame = state["result"].filter(period="analysis").to_df()
        out: dict[str, dict[str, Any]] = {}
        for column, method, field in frame.columns:
            if column == "chunk" or field != "value":
                continue
            out.setdefault(column, {})[method] = float(frame[(column, method, field)].iloc[0])
        return {"features": out}

    return fit, step, check


FACTORIES = {
    "vigil": contender_vigil,
    "floor": contender_floor,
    "evidently": contender_evidently,
    "nannyml": contender_nannyml,
}


def run_child(name: str, n: int, seed: int, inner: int) -> None:
    warnings.simplefilter("ignore")
    if name == "vigil":
        sys.path.insert(0, str(ROOT))
    import data as bench_data

    started = time.perf_counter()
    data = bench_data.load(n, seed)
    load_s = time.perf_counter() - started
    rss_data = rss_now()
    code = source_fingerprint() if name == "vigil" else None
    factory = FACTORIES[name]
    # Warm-up on a small slice: imports and first-call costs are not the window's work.
    w_fit, w_step, w_check = factory(data, slice(0, WARMUP_ROWS))
    w_fit()
    w_step()
    w_check()
    fit, step, check = factory(data, slice(None))
    t0 = time.perf_counter()
    fit()
    fit_s = time.perf_counter() - t0
    gc.collect()
    # This process's own peak so far: VmHWM belongs to this address space (exec resets it);
    # ru_maxrss is kept too, as asked, but Linux carries it over from the parent at fork.
    hwm_before = rss_peak_since_reset()
    ru_before = ru_maxrss_bytes()
    had_reset = reset_peak()
    rss_before = rss_now()
    steps, cpu = [], []
    for _ in range(inner):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        steps.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    step_peak = rss_peak_since_reset() if had_reset else None
    checks = check()
    child_result(
        {
            "contender": name,
            "n": n,
            "load_s": load_s,
            "fit_s": fit_s,
            "step_s": median(steps),
            "steps_s": steps,
            "step_cpu_s": median(cpu),
            "rss_data_bytes": rss_data,
            "rss_before_step_bytes": rss_before,
            "step_peak_bytes": step_peak,
            "step_extra_bytes": (step_peak - rss_before) if step_peak else None,
            "ru_maxrss_bytes": max(ru_before, ru_maxrss_bytes()),
            "process_peak_bytes": max(hwm_before, step_peak or 0),
            "raw_bytes": data.raw_bytes,
            "shifted": sorted(data.shifted),
            "vigil_source": code,
            **checks,
        }
    )


# --------------------------------------------------------------------------- parent


def nannyml_status() -> str | None:
    """None when NannyML's venv works; otherwise why it cannot run."""
    if not NANNYML_PY.exists():
        return (
            f"{NANNYML_VENV} missing: create it with `python3 -m venv bench/.venv-nannyml && "
            "bench/.venv-nannyml/bin/pip install nannyml statsmodels pandas==2.3.3`"
        )
    probe = subprocess.run(
        [str(NANNYML_PY), "-c", "import nannyml, sys; print(nannyml.__version__)"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    if probe.returncode != 0:
        return "nannyml does not import: " + probe.stderr.strip().splitlines()[-1]
    return None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DO_NOT_TRACK"] = "1"  # evidently: no telemetry
    env["NML_DISABLE_USAGE_LOGGING"] = "1"  # NannyML: no usage logging
    env["PYTHONWARNINGS"] = "ignore"
    return env


def spawn(name: str, n: int, seed: int, inner: int, timeout: float) -> dict[str, Any]:
    python = str(NANNYML_PY) if name == "nannyml" else sys.executable
    cmd = [python, str(Path(__file__).resolve()), "--child", name, "--n", str(n)]
    cmd += ["--seed", str(seed), "--inner", str(inner)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=child_env(), timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"contender": name, "n": n, "error": f"timed out after {timeout:.0f} s"}
    result = parse_child(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"contender": name, "n": n, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    result["wall_s"] = time.perf_counter() - started
    return result


def default_inner(name: str, n: int) -> int:
    if n <= 10_000:
        return 5
    if n <= 100_000:
        return 3 if name in ("vigil", "floor") else 1
    return 1


def compare(vigil: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """Largest absolute differences of Vigil's statistics from the floor's, per statistic."""
    worst: dict[str, float] = {}
    where: dict[str, str] = {}
    for feature, f in floor["features"].items():
        v = vigil["features"].get(feature)
        if v is None:
            worst["missing_feature"] = worst.get("missing_feature", 0) + 1
            continue
        for key in ("psi", "js", "ks", "wasserstein", "chi2", "p_value", "adjusted_p"):
            if f.get(key) is None or v.get(key) is None:
                continue
            scale = max(1.0, abs(f[key])) if key == "chi2" else 1.0
            diff = abs(v[key] - f[key]) / scale
            if diff > worst.get(key, -1):
                worst[key], where[key] = diff, feature
    verdicts_equal = all(
        vigil["features"][k]["drifted"] == f["drifted"] for k, f in floor["features"].items()
    )
    return {
        "max_abs_diff": worst,
        "at": where,
        "agree": all(d <= AGREE_TOL for k, d in worst.items() if k in AGREE_KEYS),
        "checked": list(AGREE_KEYS),
        "verdicts_equal": verdicts_equal,
    }


def summarise(runs: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        per: dict[str, Any] = {}
        for name in CONTENDERS:
            ok = [r for r in runs if r["n"] == n and r["contender"] == name and "error" not in r]
            errors = [
                r["error"] for r in runs if r["n"] == n and r["contender"] == name and "error" in r
            ]
            if not ok:
                per[name] = {"error": errors[0] if errors else "not run"}
                continue
            per[name] = {
                "repeats": len(ok),
                "step_s": median([r["step_s"] for r in ok]),
                "step_s_all": [r["step_s"] for r in ok],
                "step_cpu_s": median([r["step_cpu_s"] for r in ok]),
                "fit_s": median([r["fit_s"] for r in ok]),
                "ru_maxrss_mib": median([r["ru_maxrss_bytes"] / MIB for r in ok]),
                "process_peak_mib": median([r["process_peak_bytes"] / MIB for r in ok]),
                "rss_data_mib": median([r["rss_data_bytes"] / MIB for r in ok]),
                "step_extra_mib": median(
                    [r["step_extra_bytes"] / MIB for r in ok if r.get("step_extra_bytes")]
                ),
                "raw_mib": ok[0]["raw_bytes"] / MIB,
                "errors": errors,
            }
            if name == "vigil":
                phases = [r["phases_s"] for r in ok]
                per[name]["phases_s"] = {k: median([p[k] for p in phases]) for k in phases[0]}
        v = per.get("vigil", {})
        ratios: dict[str, float | None] = {}
        if "step_s" in v:
            for name in ("floor", "evidently", "nannyml"):
                if "step_s" in per.get(name, {}):
                    ratios[f"vigil_over_{name}"] = v["step_s"] / per[name]["step_s"]
                    ratios[f"{name}_over_vigil"] = per[name]["step_s"] / v["step_s"]
                    ratios[f"{name}_over_vigil_cpu"] = per[name]["step_cpu_s"] / v["step_cpu_s"]
            if "step_s" in per.get("evidently", {}):
                # evidently has no fit: also compare its run with Vigil's fit + one window.
                ratios["evidently_over_vigil_fit_plus_step"] = per["evidently"]["step_s"] / (
                    v["fit_s"] + v["step_s"]
                )
            if "step_s" in per.get("nannyml", {}):
                ratios["nannyml_fit_plus_step_over_vigil_fit_plus_step"] = (
                    per["nannyml"]["fit_s"] + per["nannyml"]["step_s"]
                ) / (v["fit_s"] + v["step_s"])
            ratios["vigil_step_extra_over_raw"] = (
                v["step_extra_mib"] / v["raw_mib"] if v.get("step_extra_mib") else None
            )
            ratios["vigil_process_peak_over_raw"] = v["process_peak_mib"] / v["raw_mib"]
        # Correctness on the last successful run of each (the data is the same every time).
        last = {
            name: next(
                r
                for r in reversed(runs)
                if r["n"] == n and r["contender"] == name and "error" not in r
            )
            for name in CONTENDERS
            if "step_s" in per.get(name, {})
        }
        checks: dict[str, Any] = {}
        if "vigil" in last:
            feats = last["vigil"]["features"]
            shifted = set(last["vigil"]["shifted"])
            flagged = {k for k, f in feats.items() if f["drifted"]}
            checks["shifted"] = sorted(shifted)
            checks["vigil_flagged"] = sorted(flagged)
            checks["vigil_finds_exactly_shifted"] = flagged == shifted
            checks["vigil_missed"] = sorted(shifted - flagged)
            checks["vigil_false_alarms"] = sorted(flagged - shifted)
            checks["js_distance_of_shifted"] = {k: feats[k]["scipy_js"] for k in sorted(shifted)}
            checks["js_0.1_would_miss"] = sorted(
                k for k in shifted if feats[k]["scipy_js"] < JS_THRESHOLD
            )
            checks["vigil_js_vs_scipy_max_abs_diff"] = max(
                abs(f["js"] - f["scipy_js"]) for f in feats.values()
            )
            checks["psi_of_shifted"] = {k: feats[k]["psi"] for k in sorted(shifted)}
            checks["max_psi_unshifted"] = max(
                f["psi"] for k, f in feats.items() if k not in shifted
            )
            if "floor" in last:
                checks["vigil_vs_floor"] = compare(last["vigil"], last["floor"])
                raw = last["floor"].get("raw", {})
                if raw:
                    checks["binned_vs_raw_max_abs_diff"] = {
                        "ks": max(abs(feats[k]["ks"] - r["raw_ks"]) for k, r in raw.items()),
                        "wasserstein_sd": max(
                            abs(feats[k]["wasserstein"] - r["raw_wasserstein"])
                            for k, r in raw.items()
                            if feats[k]["wasserstein"] is not None
                        ),
                    }
            if "evidently" in last:
                ev = last["evidently"]["features"]
                ev_flagged = {k for k, f in ev.items() if f["drifted"]}
                checks["evidently_flagged"] = sorted(ev_flagged)
                checks["evidently_missed"] = sorted(shifted - ev_flagged)
                checks["evidently_false_alarms"] = sorted(ev_flagged - shifted)
                checks["evidently_values_of_shifted"] = {
                    k: [ev[k]["method"], ev[k]["value"]] for k in sorted(shifted) if k in ev
                }
        out[str(n)] = {"contenders": per, "ratios": ratios, "checks": checks}
    return out


def report(summary: dict[str, Any]) -> str:
    rows = []
    for n, entry in summary.items():
        per = entry["contenders"]
        v = per.get("vigil", {})
        for name in CONTENDERS:
            p = per.get(name, {})
            if "error" in p:
                rows.append([f"{int(n):,}", name, *["–"] * 7, p["error"][:90]])
                continue
            ratio = (
                "1" if name == "vigil" else fmt(p["step_s"] / v["step_s"]) if "step_s" in v else "–"
            )
            rows.append(
                [
                    f"{int(n):,}",
                    name,
                    f"{fmt(p['fit_s'])}",
                    f"{fmt(p['step_s'])} ({p['repeats']}×)",
                    fmt(p["step_cpu_s"]),
                    ratio,
                    fmt(p["step_extra_mib"]),
                    fmt(p["process_peak_mib"]),
                    fmt(p["ru_maxrss_mib"]),
                    f"raw {fmt(p['raw_mib'])} MiB",
                ]
            )
    lines = [
        table(
            [
                "rows",
                "contender",
                "fit (s)",
                "per-window step, median (s)",
                "step CPU (s)",
                "step ÷ Vigil's",
                "step peak over its start (MiB)",
                "process peak RSS (MiB)",
                "ru_maxrss (MiB)",
                "note",
            ],
            rows,
        ),
        "",
    ]
    for n, entry in summary.items():
        c, r = entry["checks"], entry["ratios"]
        lines.append(f"**{int(n):,} rows**")
        if "vigil" in entry["contenders"] and "phases_s" in entry["contenders"]["vigil"]:
            ph = entry["contenders"]["vigil"]["phases_s"]
            lines.append(
                "- Vigil step phases (s): " + ", ".join(f"{k} {fmt(val)}" for k, val in ph.items())
            )
        lines.append(
            "- ratios: " + ", ".join(f"{k} {fmt(val)}" for k, val in r.items() if val is not None)
        )
        if c:
            vf = c.get("vigil_vs_floor", {})
            lines.append(
                f"- Vigil flags {c['vigil_flagged']} (shifted {c['shifted']}): "
                f"exactly the shifted columns = {c['vigil_finds_exactly_shifted']}"
            )
            lines.append(
                f"- a fixed JS threshold of 0.1 would miss {c['js_0.1_would_miss']}; "
                f"evidently flagged {c.get('evidently_flagged')}, missed "
                f"{c.get('evidently_missed')}, false alarms {c.get('evidently_false_alarms')}"
            )
            if vf:
                diffs = ", ".join(f"{k} {val:.1e}" for k, val in vf["max_abs_diff"].items())
                lines.append(
                    f"- Vigil vs floor (same bins): {', '.join(vf['checked'])} agree within "
                    f"{AGREE_TOL:g} = {vf['agree']}, verdicts equal = {vf['verdicts_equal']}; "
                    f"max |diff|: {diffs}"
                )
            if "binned_vs_raw_max_abs_diff" in c:
                b = c["binned_vs_raw_max_abs_diff"]
                lines.append(
                    f"- Vigil's binned statistics against scipy on raw values (max |diff| over "
                    f"numeric features): KS {b['ks']:.4f}, Wasserstein {b['wasserstein_sd']:.4f} sd"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--peer-repeats",
        type=int,
        default=None,
        help="repeats for evidently and NannyML at >= 1M rows (default: --repeats)",
    )
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--inner", type=int, default=None, help="timed steps per child")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", default="drift.json")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.n, args.seed, args.inner or 1)
        return 0

    import data as bench_data

    contenders = list(args.contenders)
    skipped: dict[str, str] = {}
    if "nannyml" in contenders:
        why = nannyml_status()
        if why:
            skipped["nannyml"] = why
            contenders.remove("nannyml")
            print(f"NannyML skipped: {why}", file=sys.stderr)
    machine = machine_info()
    started = time.time()
    runs: list[dict[str, Any]] = []
    for n in args.sizes:
        # In a child: the parent stays small, and Linux copies the parent's ru_maxrss into
        # every child it forks.
        subprocess.run(
            [sys.executable, "-c", f"import data; data.ensure_cached({n}, {args.seed})"],
            check=True,
            cwd=BENCH_DIR,
        )
    for repeat in range(args.repeats):
        for n in args.sizes:
            # Round-robin, and the starting contender rotates so none always runs first.
            k = repeat % len(contenders)
            order = contenders[k:] + contenders[:k]
            for name in order:
                peer_limit = args.peer_repeats if args.peer_repeats is not None else args.repeats
                if name in PEERS and n >= 1_000_000 and repeat >= peer_limit:
                    continue
                inner = args.inner or default_inner(name, n)
                result = spawn(name, n, args.seed, inner, args.timeout)
                runs.append(result)
                status = result.get("error") or f"step {result['step_s']:.4f} s"
                print(
                    f"[{repeat + 1}/{args.repeats}] n={n:>9,} {name:<10} {status}", file=sys.stderr
                )
    for name, why in skipped.items():
        for n in args.sizes:
            runs.append({"contender": name, "n": n, "error": why})
    summary = summarise(runs, args.sizes)
    text = report(summary)
    versions = sorted({r["vigil_source"] for r in runs if r.get("vigil_source")})
    if len(versions) > 1:
        text += (
            f"\nWARNING: Vigil's source changed during the run ({len(versions)} versions: "
            f"{versions}); re-run for figures of one version.\n"
        )
    print(text)
    machine["loadavg_end"] = list(os.getloadavg())
    path = write_json(
        args.out,
        {
            "benchmark": "drift",
            "args": vars(args),
            "machine": machine,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "elapsed_s": time.time() - started,
            "data": {
                "features": bench_data.FEATURES,
                "categorical": bench_data.CATEGORICAL,
                "shifted": sorted(bench_data.SHIFTED),
                "mean_shift_sd": bench_data.MEAN_SHIFT_SD,
                "scale_factor": bench_data.SCALE_FACTOR,
                "tail": [bench_data.TAIL_SHARE, bench_data.TAIL_FACTOR],
                "cat_small": bench_data.CAT_SMALL,
                "cat_big": bench_data.CAT_BIG,
            },
            "vigil_source_versions": versions,
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"results written to {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
