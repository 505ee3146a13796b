"""Time `rlsweep report` on a study of 200 runs (target: under 30 s).

The study is made first, untimed, with `rlsweep run --workers 2` on the built-in synthetic trainer
(200 random-search runs of 1000 steps, evaluated every 100: 10 points per curve, two metrics per
point); then the report is built from the storage, as the command does: trials, the metrics table,
Optuna's fANOVA importance, the figures and the page. Everything happens in a temporary folder.

    python bench/report.py [--runs 200] [--keep DIR]

The last line printed is the report's build time in seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def sweep(runs: int) -> dict[str, object]:
    return {
        "study": "bench-report",
        "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 1000},
        "eval": {"every": 100},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "random", "runs": runs, "seeds": 1},
        "params": {
            "learning_rate": {"loguniform": [1e-5, 1e-1]},
            "gamma": {"uniform": [0.9, 0.9999]},
            "width": {"choice": [32, 64, 128]},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--keep", metavar="DIR", help="make the study in DIR and keep it (default: a temporary folder)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        os.chdir(work)
        Path("sweep.yaml").write_text(yaml.safe_dump(sweep(args.runs)))
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "rlsweep", "run", "sweep.yaml", "--workers", "2", "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"made a study of {args.runs} runs in {time.perf_counter() - t0:.1f} s (not part of the figure)"
        )

        from rlsweep.report.study import build_study_report
        from rlsweep.study import StudyHandle

        t0 = time.perf_counter()
        handle = StudyHandle.load("bench-report", "sqlite:///runs/bench-report/study.db")
        index = build_study_report(handle)
        seconds = time.perf_counter() - t0
        images = len(list((index.parent / "img").glob("*.png")))
        size = index.stat().st_size / 1e3
        print(f"report: {index} ({size:.0f} kB, {images} figures) for {len(handle.study.trials)} runs")
        print(f"build time (target < 30 s): {seconds:.2f} s")
        print(f"{seconds:.2f}")


if __name__ == "__main__":
    main()
