"""Helpers shared by the benchmarks: the machine's description, memory probes, tables.

Only the standard library here: the NannyML child runs in its own virtual environment.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
MIB = 1024 * 1024


def _status(field: str) -> int:
    """A VmXXX line of /proc/self/status, in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_now() -> int:
    return _status("VmRSS")


def rss_peak_since_reset() -> int:
    return _status("VmHWM")


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0) so a step's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def ru_maxrss_bytes() -> int:
    """Peak RSS of this process over its life (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _blas() -> list[dict[str, Any]] | None:
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: i.get(k) for k in keep} for i in threadpool_info()]


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": round(ram / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "pandas": _version("pandas"),
        "scipy": _version("scipy"),
        "sqlalchemy": _version("sqlalchemy"),
        "evidently": _version("evidently"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "blas_env": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("OPENBLAS", "OMP_", "MKL_")) and k != "OPENBLAS_CORETYPE"
        },
        "blas": _blas(),
        "loadavg": list(os.getloadavg()),
        "executable": sys.executable,
    }


WATCHED_SOURCES = (
    "monitor/ingest/summarize.py",
    "monitor/core/summaries.py",
    "monitor/ingest/bucketing.py",
    "monitor/core/reference.py",
    "monitor/ingest/fit.py",
    "monitor/ingest/batches.py",
    "monitor/store/state.py",
    "monitor/engine/tick.py",
    "monitor/ingest/sources.py",
    "monitor/engine/windows.py",
    "monitor/store/slis.py",
    "detectors/drift.py",
    "detectors/stats.py",
)
"""Vigil modules on the measured paths: their hash is recorded with each measurement, so a
run during which someone edited them is seen as such."""


def source_fingerprint() -> str:
    import hashlib

    digest = hashlib.sha256()
    for rel in WATCHED_SOURCES:
        path = ROOT / rel
        digest.update(rel.encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:12]


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}" if abs(value) < 0.01 else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_tick_results(
    benchmark: str,
    args: Any,
    machine: dict[str, Any],
    started: float,
    results: dict[str, dict[str, Any]],
    **extra: Any,
) -> Path:
    """Write a tick benchmark's JSON (the machine with its load at the end, every sample) and
    warn when the ticks measured more than one version of Vigil's source (`vigil_source` of
    each entry): someone edited the measured modules during the run."""
    machine["loadavg_end"] = list(os.getloadavg())
    data = {
        "benchmark": benchmark,
        "args": vars(args),
        "machine": machine,
        "elapsed_s": time.time() - started,
        **extra,
        "results": results,
    }
    path = write_json(args.out, data)
    versions = sorted(
        {
            v
            for e in results.values()
            for x in e.values()
            if isinstance(x, dict)
            for v in x.get("vigil_source", [])
        }
    )
    if len(versions) > 1:
        print(f"WARNING: Vigil's source changed during the run: {versions}")
    print(f"results written to {path.relative_to(ROOT)}", file=sys.stderr)
    return path


def child_result(payload: dict[str, Any]) -> None:
    """Children print one JSON line, marked, as their last line on stdout."""
    sys.stdout.write("@@RESULT " + json.dumps(payload, default=float) + "\n")
    sys.stdout.flush()


def parse_child(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT ") :])
    return None
