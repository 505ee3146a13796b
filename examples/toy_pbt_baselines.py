"""PBT against its baselines on the PBT paper's toy problem, through the real storage and workers.

Runs four studies from examples/toy-pbt.yaml and examples/toy-grid.yaml: PBT, explore-only
(`strategy.exploit: false`), exploit-only (`strategy.explore: false`) and a 3 x 3 grid of fixed h,
then prints each one's best Q and the steps until a member first reached Q >= 1.19. About a minute
for one seed with 2 workers; `--seeds 5` repeats the population strategies on 5 sweep seeds.

    python examples/toy_pbt_baselines.py [--seeds 5] [--workers 2]

Studies are stored under ./runs/<study>/ like any `rlsweep run`; running the script again reads
them back instead of training again.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
THRESHOLD = 1.19
# name -> (sweep file, overrides); the population ones get a study name and seed per sweep seed
METHODS: dict[str, tuple[str, list[str]]] = {
    "PBT": ("toy-pbt.yaml", []),
    "explore-only": ("toy-pbt.yaml", ["strategy.exploit=false"]),
    "exploit-only": ("toy-pbt.yaml", ["strategy.explore=false"]),
    "grid (3x3)": ("toy-grid.yaml", []),
}


def run_study(file: str, overrides: list[str], workers: int) -> str:
    """Run (or resume) one study with `rlsweep run`; return its name."""
    from rlsweep.cli import main
    from rlsweep.config import load_sweep

    args = ["run", str(HERE / file), "--workers", str(workers), "--quiet"]
    for item in overrides:
        args += ["--set", item]
    code = main(args)
    if code != 0:
        sys.exit(f"rlsweep run {file} {' '.join(overrides)} exited with {code}")
    return load_sweep(HERE / file, overrides).sweep.study


def measure(study: str) -> tuple[float, int | None, int]:
    """(best Q of any run at its end, first step any member reached the threshold, runs)."""
    from rlsweep.analysis.lineage import best_curve, steps_to
    from rlsweep.storage import default_url
    from rlsweep.study import StudyHandle

    handle = StudyHandle.load(study, default_url(study))
    trials = handle.study.get_trials(deepcopy=False)
    best = max(t.value for t in trials if t.value is not None)
    return best, steps_to(best_curve(trials), THRESHOLD), len(trials)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=1, help="sweep seeds for the population methods (default 1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="local workers per study (default 2)")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, int | None, int]]] = {}
    for method, (file, overrides) in METHODS.items():
        seeds = range(args.seeds) if file == "toy-pbt.yaml" else range(1)  # the grid has no randomness
        for seed in seeds:
            extra = [] if file != "toy-pbt.yaml" else [f"seed={seed}", f"study={_name(method)}-s{seed}"]
            print(f"== {method}, seed {seed}", flush=True)
            study = run_study(file, [*overrides, *extra], args.workers)
            results.setdefault(method, []).append(measure(study))
    print()
    print(f"toy problem, 160 steps per member; seeds 0..{args.seeds - 1} for the population methods")
    print(
        f"{'method':<14} {'best Q mean':>11} {'best Q min':>10} {f'steps to {THRESHOLD} (median)':>24} {'runs':>5}"
    )
    medians: dict[str, float] = {}
    for method, rows in results.items():
        qs = [q for q, _, _ in rows]
        reached = [s if s is not None else float("inf") for _, s, _ in rows]
        medians[method] = statistics.median(reached)
        shown = "never" if medians[method] == float("inf") else f"{medians[method]:g}"
        print(f"{method:<14} {statistics.mean(qs):>11.4f} {min(qs):>10.4f} {shown:>24} {rows[0][2]:>5}")
    fastest = min(medians, key=lambda m: medians[m])
    print(f"fastest to Q >= {THRESHOLD}: {fastest}")
    return 0


def _name(method: str) -> str:
    return {"PBT": "toy-pbt", "explore-only": "toy-explore", "exploit-only": "toy-exploit"}[method]


if __name__ == "__main__":
    sys.exit(main())
