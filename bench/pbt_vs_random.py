"""PBT and PB2 against a random search with the same total environment steps: SAC on Pendulum-v1.

The three sweeps come from examples/pendulum-pbt.yaml and examples/pendulum-pb2.yaml, shrunk to fit
about 15 minutes on 2 cores in all (by default 4 members x 20k steps, ready every 5k steps, 2 local
workers); the random search trains `population` configurations drawn from the same space for the same
steps each, so all three spend 4 x 20k = 80k environment steps. Printed: each method's best final
evaluation return (population methods: the best member at the last generation; random: the best run)
and the random search's median, and as the last line whether PBT's and PB2's best beat that median.
With --replay-buffer the population methods save and restore SAC's replay buffer with each
checkpoint (`checkpoint: {replay_buffer: true}`), as studies of their own beside the ones without.

    python bench/pbt_vs_random.py [--timesteps 20000] [--interval 5000] [--dir runs/bench-pbt] [--replay-buffer]

Studies live in DIR/bench.db; running again reads finished studies back instead of training again.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def sweeps(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """method -> sweep (plain data): the two example files with the bench's budget, and a random search."""
    root = Path(args.dir).resolve()
    out: dict[str, dict[str, Any]] = {}
    for method, file in (("PBT", "pendulum-pbt.yaml"), ("PB2", "pendulum-pb2.yaml")):
        sweep = yaml.safe_load((EXAMPLES / file).read_text())
        sweep["trainer"]["timesteps"] = args.timesteps
        sweep["strategy"].update(population=args.population, interval=args.interval, workers=args.workers)
        out[method] = sweep
    random = copy.deepcopy(out["PBT"])
    random["strategy"] = {"name": "random", "runs": args.population, "seeds": 1, "workers": args.workers}
    out["random"] = random
    for method, sweep in out.items():
        # the random search continues no checkpoint, so both variants share (and read back) its study
        buffered = args.replay_buffer and method != "random"
        sweep["study"] = f"bench-pendulum-{method.lower()}{'-buf' if buffered else ''}"
        if buffered:
            sweep["checkpoint"] = {**sweep.get("checkpoint", {}), "replay_buffer": True}
        sweep["seed"] = args.seed
        sweep["storage"] = f"sqlite:///{root}/bench.db"
        sweep["artifacts"] = str(root / "artifacts" / sweep["study"])
    return out


def run(method: str, sweep: dict[str, Any], root: Path) -> float:
    """Run (or resume) one sweep with `rlsweep run`; return the wall time in seconds."""
    from rlsweep.cli import main

    file = root / f"{sweep['study']}.yaml"
    file.write_text(yaml.safe_dump(sweep, sort_keys=False))
    print(f"== {method}: {file}", flush=True)
    started = time.time()
    code = main(["run", str(file), "--quiet"])
    if code != 0:
        sys.exit(f"rlsweep run {file} exited with {code}")
    return time.time() - started


def final_returns(sweep: dict[str, Any]) -> tuple[list[float], int]:
    """Each member's final evaluation return (population: at its last generation; random: each run),
    and the environment steps the whole sweep trained."""
    from optuna.trial import TrialState

    from rlsweep.study import StudyHandle

    handle = StudyHandle.load(sweep["study"], sweep["storage"])
    trials = [t for t in handle.study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    steps = sum(
        max(t.intermediate_values) - int(t.user_attrs.get("start_step", 0))
        for t in trials
        if t.intermediate_values
    )
    if "member" in (trials[0].user_attrs if trials else {}):
        last = max(int(t.user_attrs["generation"]) for t in trials)
        trials = [t for t in trials if int(t.user_attrs["generation"]) == last]
    return [float(t.value) for t in trials], steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--timesteps", type=int, default=20_000, help="environment steps per member / per random run"
    )
    p.add_argument("--interval", type=int, default=5_000, help="PBT/PB2 ready interval in steps")
    p.add_argument("--population", type=int, default=4, help="members (and random-search runs)")
    p.add_argument("--workers", type=int, default=2, help="local workers per sweep")
    p.add_argument("--seed", type=int, default=0, help="sweep seed")
    p.add_argument("--dir", default="runs/bench-pbt-vs-random", help="where the studies and artifacts go")
    p.add_argument("--only", default="PBT,PB2,random", help="comma-separated subset of PBT,PB2,random")
    p.add_argument(
        "--replay-buffer",
        action="store_true",
        help="PBT and PB2 keep SAC's replay buffer across generations and exploits (checkpoint.replay_buffer)",
    )
    args = p.parse_args()
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    plans = sweeps(args)
    chosen = [m for m in plans if m in args.only.split(",")]
    walls = {m: run(m, plans[m], root) for m in chosen}
    print()
    buffer = "with" if args.replay_buffer else "without"
    print(
        f"SAC on Pendulum-v1, {args.population} x {args.timesteps} steps per method, {args.workers} workers, "
        f"PBT/PB2 {buffer} the replay buffer"
    )
    print(
        f"{'method':<8} {'best final return':>17} {'median':>9} {'members':>8} {'env steps':>10} {'wall':>7}"
    )
    best: dict[str, float] = {}
    median: dict[str, float] = {}
    for method in chosen:
        returns, steps = final_returns(plans[method])
        best[method], median[method] = max(returns), statistics.median(returns)
        print(
            f"{method:<8} {best[method]:>17.1f} {median[method]:>9.1f} {len(returns):>8} {steps:>10} {walls[method]:>6.0f}s"
        )
    if "random" in median:
        verdicts = [
            f"{m} best {best[m]:.1f} {'beats' if best[m] > median['random'] else 'does not beat'} it"
            for m in ("PBT", "PB2")
            if m in best
        ]
        print(f"random search median {median['random']:.1f}: " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
