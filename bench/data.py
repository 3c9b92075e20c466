"""Seeded benchmark data: a reference and a current window of N rows x 20 features.

15 numeric columns of varied shapes (normal, heavy-tailed, skewed, bounded, bimodal, discrete,
one with missing values) and 5 categorical ones (3 to 50 categories, one with missing values).
Five columns are shifted in the current window, each in a different way:

- ``num_mean``   normal, mean shifted by ``MEAN_SHIFT_SD`` reference standard deviations;
- ``num_scale``  Laplace, spread multiplied by ``SCALE_FACTOR`` around the same centre;
- ``num_tail``   log-normal, ``TAIL_SHARE`` of the rows multiplied by ``TAIL_FACTOR`` (a fatter
                 right tail, the bulk unchanged);
- ``cat_big``    4 categories, a large change of proportions (JS distance ~0.21);
- ``cat_small``  6 categories, a SMALL change: Jensen-Shannon distance ~0.088 (below
                 evidently's fixed 0.1 threshold), PSI ~0.062, chi-square p ~ 0 at these sizes.

Only numpy and pandas are imported, so the NannyML child (its own virtual environment) can use
this module too. Frames are cached as .npz in a temporary folder so every child process of a
benchmark run loads the same bytes instead of drawing them again.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MEAN_SHIFT_SD = 0.35
SCALE_FACTOR = 1.5
TAIL_SHARE, TAIL_FACTOR = 0.15, 3.0
CAT_BIG = ([0.4, 0.3, 0.2, 0.1], [0.2, 0.3, 0.2, 0.3])
CAT_SMALL = (
    [0.30, 0.25, 0.15, 0.12, 0.10, 0.08],
    [0.205, 0.25, 0.18, 0.12, 0.13, 0.115],
)

NUMERIC = [
    "num_mean",
    "num_scale",
    "num_tail",
    "n_normal",
    "n_lognormal",
    "n_exponential",
    "n_uniform",
    "n_gamma",
    "n_beta",
    "n_student_t",
    "n_bimodal",
    "n_poisson",
    "n_weibull",
    "n_pareto",
    "n_missing",
]
CATEGORICAL = ["cat_big", "cat_small", "c_country", "c_device", "c_merchant"]
FEATURES = NUMERIC + CATEGORICAL
SHIFTED = frozenset({"num_mean", "num_scale", "num_tail", "cat_big", "cat_small"})

COUNTRIES = ["DE", "FR", "NL", "BE", "AT", "CH", "IT", "ES", "PL", "SE"]
DEVICES = ["web", "ios", "android"]
MERCHANTS = [f"m{i:02d}" for i in range(50)]
LEVELS: dict[str, list[str]] = {
    "cat_big": ["a", "b", "c", "d"],
    "cat_small": ["u", "v", "w", "x", "y", "z"],
    "c_country": COUNTRIES,
    "c_device": DEVICES,
    "c_merchant": MERCHANTS,
}
WINDOW_START = np.datetime64("2026-01-05T00:00:00", "ns")
"""Every current row falls inside this UTC day, so a 1-day bucket holds the whole window."""


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


def _numeric(rng: np.random.Generator, n: int, current: bool) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    mean = 50 + (MEAN_SHIFT_SD * 10 if current else 0.0)
    out["num_mean"] = rng.normal(mean, 10, n)
    out["num_scale"] = rng.laplace(0, 2 * (SCALE_FACTOR if current else 1.0), n)
    tail = rng.lognormal(3, 0.5, n)
    if current:
        tail[rng.random(n) < TAIL_SHARE] *= TAIL_FACTOR
    out["num_tail"] = tail
    out["n_normal"] = rng.normal(0, 1, n)
    out["n_lognormal"] = rng.lognormal(0, 1, n)
    out["n_exponential"] = rng.exponential(2, n)
    out["n_uniform"] = rng.uniform(-5, 5, n)
    out["n_gamma"] = rng.gamma(2, 3, n)
    out["n_beta"] = rng.beta(2, 5, n)
    out["n_student_t"] = rng.standard_t(3, n)
    first = rng.random(n) < 0.6
    out["n_bimodal"] = np.where(first, rng.normal(-2, 0.5, n), rng.normal(3, 1, n))
    out["n_poisson"] = rng.poisson(4, n).astype(float)
    out["n_weibull"] = rng.weibull(1.5, n) * 10
    out["n_pareto"] = rng.pareto(3, n) + 1
    missing = rng.normal(100, 15, n)
    missing[rng.random(n) < 0.02] = np.nan
    out["n_missing"] = missing
    return out


def _categorical(rng: np.random.Generator, n: int, current: bool) -> dict[str, np.ndarray]:
    """Category codes (int8); -1 is a missing value."""
    pick = 1 if current else 0
    probs = {
        "cat_big": np.array(CAT_BIG[pick]),
        "cat_small": np.array(CAT_SMALL[pick]),
        "c_country": _zipf(len(COUNTRIES)),
        "c_device": np.array([0.6, 0.3, 0.1]),
        "c_merchant": _zipf(len(MERCHANTS), 0.9),
    }
    out = {}
    for name, p in probs.items():
        codes = rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)
        if name == "c_device":
            codes[rng.random(n) < 0.01] = -1
        out[name] = codes
    return out


def _draw(n: int, seed: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for part, current in (("ref", False), ("cur", True)):
        rng = np.random.default_rng([seed, int(current)])
        for name, values in _numeric(rng, n, current).items():
            arrays[f"{part}:{name}"] = values
        for name, codes in _categorical(rng, n, current).items():
            arrays[f"{part}:{name}"] = codes
    rng = np.random.default_rng([seed, 2])
    offsets = np.sort(rng.integers(0, 86_400 * 10**6, n)) * 1000  # whole microseconds
    arrays["cur:@ts"] = (WINDOW_START + offsets.astype("timedelta64[ns]")).astype("int64")
    return arrays


def cache_dir() -> Path:
    path = Path(os.environ.get("VIGIL_BENCH_CACHE", Path(tempfile.gettempdir()) / "vigil-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_cached(n: int, seed: int = 7) -> Path:
    """Draw the arrays once per (n, seed) and keep them as an uncompressed .npz."""
    path = cache_dir() / f"drift_v2_n{n}_s{seed}.npz"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **_draw(n, seed))
        tmp.replace(path)
    return path


@dataclass
class BenchData:
    reference: pd.DataFrame
    current: pd.DataFrame
    ts: np.ndarray
    """Prediction times of the current rows: int64 ns since the epoch, UTC, all in one day."""
    numeric: list[str] = field(default_factory=lambda: list(NUMERIC))
    categorical: list[str] = field(default_factory=lambda: list(CATEGORICAL))
    shifted: frozenset[str] = SHIFTED

    @property
    def raw_bytes(self) -> int:
        """N x 20 x 8 bytes: the window's features as float64 arrays."""
        return len(self.current) * len(FEATURES) * 8


def _frame(arrays: dict[str, np.ndarray], part: str) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for name in FEATURES:
        values = arrays[f"{part}:{name}"]
        if name in LEVELS:
            # One shared str object per category (as a database driver's interned strings):
            # the column is an object array of pointers, missing values are None.
            table = np.array([*LEVELS[name], None], dtype=object)
            values = table[np.where(values < 0, len(LEVELS[name]), values)]
        columns[name] = values
    return pd.DataFrame(columns)


def load(n: int, seed: int = 7) -> BenchData:
    """The reference and current frames (float64 numeric, object-string categorical)."""
    with np.load(ensure_cached(n, seed)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return BenchData(
        reference=_frame(arrays, "ref"),
        current=_frame(arrays, "cur"),
        ts=arrays["cur:@ts"],
    )


def generate(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, frozenset[str]]:
    """The reference frame, the current frame and the set of shifted columns."""
    data = load(n, seed)
    return data.reference, data.current, data.shifted
