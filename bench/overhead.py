"""Overhead of rlsweep over a bare Optuna loop: 400 runs of a trainer that does nothing, SQLite, 2 workers.

Both sides are timed end to end in this one run (study creation and process start-up included): (a) 2 processes each
running `study.optimize` on a no-op objective that samples the same 3 parameters and reports one
value, and (b) `rlsweep run` with 2 workers on the built-in no-op trainer. The bare loop runs twice:
on a default SQLite file, and with the SQLite settings rlsweep uses (WAL, synchronous=NORMAL), so the
last figure isolates rlsweep's own per-run cost. Prints runs/s for each; the last line is the ratio
rlsweep/optuna at equal SQLite settings (target >= 0.8), the median of --repeat interleaved rounds
(the machine's noise moves a single round by about +-0.05).

    python bench/overhead.py [--runs 400]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BARE = textwrap.dedent(
    """
    import sys, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, n, tuned = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tuned"
    storage = optuna.storages.RDBStorage(url)
    if tuned:  # the SQLite settings rlsweep uses: WAL (set in the file) and synchronous=NORMAL
        import sqlalchemy as sa
        sa.event.listen(storage.engine, "connect", lambda con, rec: con.execute("PRAGMA synchronous=NORMAL"))
        storage.engine.dispose()
    url = storage
    study = optuna.load_study(study_name="bare", storage=url)
    def objective(trial):
        trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
        trial.suggest_float("gamma", 0.9, 0.9999)
        trial.suggest_categorical("width", [32, 64, 128])
        trial.report(1.0, 1000)
        return 1.0
    study.optimize(objective, n_trials=n)
    """
)

SWEEP = """
study: overhead
trainer: {{kind: function, target: "rlsweep.examples.synthetic:noop", timesteps: 1000}}
eval: {{every: 1000}}
strategy: {{name: random, runs: {runs}, workers: 2}}
params:
  learning_rate: {{loguniform: [1.0e-5, 1.0e-1]}}
  gamma: {{uniform: [0.9, 0.9999]}}
  width: {{choice: [32, 64, 128]}}
"""


def bare_optuna(tmp: Path, runs: int, tuned: bool) -> float:
    import optuna

    url = f"sqlite:///{tmp}/bare-{tuned}.db"
    if tuned:
        import sqlite3

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(url.removeprefix("sqlite:///")).execute("PRAGMA journal_mode=WAL").close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    script = tmp / "bare.py"
    script.write_text(BARE)
    # Timed from the study's creation, as `rlsweep run` is (it creates its study, then starts workers);
    # the study is created once before the two processes start, so they never race to create tables.
    start = time.perf_counter()
    optuna.create_study(study_name="bare", storage=url, sampler=optuna.samplers.RandomSampler())
    procs = [subprocess.Popen([sys.executable, str(script), url, str(runs // 2), "tuned" if tuned else "default"]) for _ in range(2)]
    for p in procs:
        assert p.wait() == 0
    return time.perf_counter() - start


def rlsweep_run(tmp: Path, runs: int) -> float:
    (tmp / "sweep.yaml").write_text(SWEEP.format(runs=runs))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rlsweep", "run", "sweep.yaml", "--quiet"], cwd=tmp, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"rlsweep run failed:\n{result.stdout}\n{result.stderr}")
    import optuna

    study = optuna.load_study(study_name="overhead", storage=f"sqlite:///{tmp}/runs/overhead/study.db")
    assert len(study.trials) == runs, len(study.trials)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all three, interleaved; medians are printed")
    args = parser.parse_args()
    n = args.runs
    rounds = []
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            times = (bare_optuna(tmp, n, tuned=False), bare_optuna(tmp, n, tuned=True), rlsweep_run(tmp, n))
        rounds.append(times)
        print(f"round {r + 1}: bare default {times[0]:.1f}s, bare WAL+NORMAL {times[1]:.1f}s, rlsweep {times[2]:.1f}s; "
              f"ratio {times[1] / times[2]:.2f}", flush=True)  # fmt: skip
    t_default, t_tuned, t_rl = (statistics.median(column) for column in zip(*rounds, strict=True))
    ratio = statistics.median(t[1] / t[2] for t in rounds)
    print(f"bare optuna, default SQLite file:          {n} runs in {t_default:5.1f}s = {n / t_default:5.1f} runs/s")
    print(f"bare optuna, WAL + synchronous=NORMAL:     {n} runs in {t_tuned:5.1f}s = {n / t_tuned:5.1f} runs/s")
    print(f"rlsweep run (WAL + synchronous=NORMAL):    {n} runs in {t_rl:5.1f}s = {n / t_rl:5.1f} runs/s")
    print(f"ratio vs bare optuna with default SQLite:  {t_default / t_rl:.2f}")
    print(f"ratio vs bare optuna with rlsweep's SQLite settings (the target, >= 0.8; median of {args.repeat} rounds): {ratio:.2f}")


if __name__ == "__main__":
    main()
