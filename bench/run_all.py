"""Run the five benchmarks (drift, window, features, detection, attribution) with their default sizes and collect their tables.

    .venv/bin/python bench/run_all.py                  # full run (about 15-25 min, evidently at 1M
                                                       # dominates)
    .venv/bin/python bench/run_all.py --quick          # small sizes, a minute or two
    .venv/bin/python bench/run_all.py --setup-nannyml  # create bench/.venv-nannyml first

Each benchmark writes its JSON to bench/results/; this script also writes
bench/results/latest.md with the machine, the load before and after, and the three tables.
The machine should be quiet: the load average is printed and a warning given above 0.5/core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, RESULTS, ROOT, machine_info

NANNYML_VENV = BENCH_DIR / ".venv-nannyml"
NANNYML_PACKAGES = ["nannyml==0.13.1", "statsmodels", "pandas==2.3.3"]
"""nannyml 0.13.1 imports statsmodels without declaring it, and resolves to pandas 3 on its
own; pandas is pinned to Vigil's 2.3 so both read the same frames the same way."""


def setup_nannyml() -> None:
    if not (NANNYML_VENV / "bin" / "python").exists():
        subprocess.run(["python3", "-m", "venv", str(NANNYML_VENV)], check=True)
    pip = [str(NANNYML_VENV / "bin" / "pip"), "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *NANNYML_PACKAGES], check=True)


def run(script: str, args: list[str]) -> tuple[int, str]:
    cmd = [sys.executable, str(BENCH_DIR / script), *args]
    print(f"\n$ {' '.join(Path(c).name if c == sys.executable else c for c in cmd)}", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    print(proc.stdout, flush=True)
    return proc.returncode, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--setup-nannyml", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=["drift", "window", "features"])
    args = parser.parse_args()
    if args.setup_nannyml:
        setup_nannyml()
    machine = machine_info()
    load = machine["loadavg"][0]
    print(f"machine: {machine}")
    if load > 0.5 * (machine["nproc"] or 1):
        print(
            f"WARNING: load average {load:.2f} on {machine['nproc']} cores: figures will be noisy"
        )
    if args.quick:
        plans = {
            "drift": ("drift_bench.py", ["--sizes", "10000", "100000", "--repeats", "2"]),
            "window": ("window_bench.py", ["--rows", "1000", "10000", "--repeats", "3"]),
            "features": ("features_bench.py", ["--rows", "10000", "--repeats", "2"]),
            "detection": ("detection_bench.py", ["--quick"]),
            "attribution": ("attribution_bench.py", ["--quick"]),
        }
    else:
        plans = {
            "drift": ("drift_bench.py", ["--repeats", "3", "--peer-repeats", "1"]),
            "window": ("window_bench.py", ["--rows", "1000", "10000", "100000", "--repeats", "5"]),
            "features": ("features_bench.py", ["--rows", "10000", "100000", "--repeats", "3"]),
            "detection": ("detection_bench.py", []),
            "attribution": ("attribution_bench.py", []),
        }
    sections = []
    status = 0
    started = time.time()
    for key, (script, extra) in plans.items():
        if key in args.skip:
            continue
        code, out = run(script, extra)
        status |= code
        sections.append(f"## {key}\n\n`{script} {' '.join(extra)}`\n\n{out.strip()}\n")
    end_load = os.getloadavg()
    header = (
        f"# Vigil benchmarks, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"{machine['nproc']} × {machine['cpu_model']}, {machine['ram_gib']} GiB RAM, "
        f"Python {machine['python']}, numpy {machine['numpy']}, pandas {machine['pandas']}, "
        f"scipy {machine['scipy']}, evidently {machine['evidently']}, "
        f"OPENBLAS_CORETYPE={machine['OPENBLAS_CORETYPE'] or 'not set'}, BLAS {machine['blas']}\n\n"
        f"load average before {machine['loadavg']}, after {[round(x, 2) for x in end_load]}; "
        f"{(time.time() - started) / 60:.1f} min\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(header + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"tables written to {(RESULTS / 'latest.md').relative_to(ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
