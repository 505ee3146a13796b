"""What resuming costs: `rlsweep run` SIGKILLed five times at random moments, then run to the end,
against the same sweep uninterrupted, both timed in this one run (target: at most x1.5).

The sweep: --runs runs of the built-in `sleepy` trainer (one report after --sleep s), 2 workers,
SQLite. The uninterrupted sweep runs first; then a fresh study is started, and each of five times
killed (SIGKILL to `rlsweep run`; its workers, told by SIGTERM, follow it) at a random moment after
a run of that start has finished, within an eighth of the uninterrupted time; a last `rlsweep run`
finishes it. The killed sweep's time is the sum of the six starts. Every seed must be done exactly
once, else the bench exits with an error.
tests/faults/test_soak.py checks the same behaviour on a smaller sweep, without timing it.

    python bench/resume.py [--runs 200] [--sleep 0.2] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """
study: {name}
trainer: {{kind: function, target: "rlsweep.examples.synthetic:sleepy", timesteps: 250, sleep: {sleep}}}
eval: {{every: 250}}
objective: {{metric: eval/mean_return, mode: max}}
strategy: {{name: grid, seeds: {runs}, workers: 2}}
worker: {{heartbeat: 1.0, lost_after: 5.0, requeue: 1}}
"""


def start(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", "sweep.yaml", "--quiet"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def done(folder: Path, name: str) -> int:
    """Runs done so far (0 before the study exists)."""
    import optuna
    from optuna.trial import TrialState

    db = folder / "runs" / name / "study.db"
    if not db.exists():
        return 0
    try:
        return len(optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials(states=[TrialState.COMPLETE]))
    except Exception:  # not created yet
        return 0


def seeds_done(folder: Path, name: str) -> list[int]:
    """The seeds of the runs done, sorted: 0..runs-1 once each when nothing was lost or run twice."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'runs' / name / 'study.db'}")
    return sorted(int(t.user_attrs["seed"]) for t in study.get_trials(states=[TrialState.COMPLETE]))


def sweep(folder: Path, name: str, runs: int, sleep: float) -> None:
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text(SWEEP.format(name=name, runs=runs, sleep=sleep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        ref = Path(d) / "ref"
        sweep(ref, "ref", args.runs, args.sleep)
        began = time.monotonic()
        if start(ref).wait() != 0:
            raise SystemExit("the uninterrupted sweep failed")
        uninterrupted = time.monotonic() - began

        killed = Path(d) / "killed"
        sweep(killed, "killed", args.runs, args.sleep)
        rng = random.Random(args.seed)
        total = 0.0
        for k in range(5):
            before = done(killed, "killed")
            began = time.monotonic()
            proc = start(killed)
            while done(killed, "killed") <= before and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, uninterrupted / 8))
            os.kill(proc.pid, signal.SIGKILL)  # its workers get SIGTERM and leave their runs to be resumed
            proc.wait()
            total += time.monotonic() - began
            print(f"kill {k + 1}: {done(killed, 'killed')} of {args.runs} runs done", flush=True)
        began = time.monotonic()
        if start(killed).wait() != 0:
            raise SystemExit("the last `rlsweep run` of the killed sweep failed")
        total += time.monotonic() - began
        seeds = seeds_done(killed, "killed")
    if seeds != list(range(args.runs)):
        raise SystemExit(f"{len(seeds)} runs done ({len(set(seeds))} distinct seeds), not each of {args.runs} once")
    print(f"uninterrupted: {args.runs} runs in {uninterrupted:.1f} s; killed 5 times and resumed: {total:.1f} s in all")
    print(f"killed 5 times / uninterrupted: x{total / uninterrupted:.2f} (target <= x1.5)")


if __name__ == "__main__":
    main()
