"""The batched JAX trainer against the SB3 trainer on the same PPO-CartPole-v1 configurations.

Both sides run exactly Stable-Baselines3's PPO settings (1 env x 2048 steps per update, 10 epochs,
minibatches of 64, two 64-unit tanh layers per network, clip 0.2, no entropy bonus, gradient norm 0.5:
`preset: sb3` on the JAX side) over one grid of learning rates x GAE lambdas, each configuration on
one seed, evaluated every `--every` steps on 10 episodes. Each side is one `rlsweep run` in a fresh
process (imports and compilation included):

  (a) jax: `--jax-workers` worker processes (default 2), each training its claimed runs as one batch;
  (b) sb3: 2 worker processes, one run at a time each.

Prints each side's wall time and best configuration's final evaluation return, then the wall-time
ratio sb3 / jax (targets: >= 30 and the best jax return >= 475 for 32 x 100k). `--short` runs the
issue's short study instead (8 configurations x 20k steps) twice on the JAX side, first with an empty
compilation cache and then with it warm (targets: >= 5 cold, >= 8 warm). If rl-zoo3 is installed,
its `-optimize` on the same budget is a third column.

    python bench/jax_vs_sb3.py                  # 32 x 100k (the SB3 side takes tens of minutes on 2 cores)
    python bench/jax_vs_sb3.py --short          # 8 x 20k, cold and warm compilation cache
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

LRS = [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3]
LAMBDAS = [0.8, 0.9, 0.95, 0.98]
SB3_PPO = {
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}


def grid(configs: int) -> dict[str, Any]:
    lambdas = LAMBDAS[: max(1, configs // len(LRS))]
    lrs = LRS[: configs // len(lambdas)] if configs < len(LRS) * len(lambdas) else LRS
    return {"learning_rate": {"grid": lrs}, "gae_lambda": {"grid": lambdas}}


def sweep(
    side: str, name: str, configs: int, steps: int, every: int, workers: int, cache: Path
) -> dict[str, Any]:
    if side == "jax":
        batch = -(-configs // workers)
        trainer = {
            "kind": "jax",
            "algo": "ppo",
            "env": "CartPole-v1",
            "timesteps": steps,
            "preset": "sb3",
            "batch": batch,
            "compile_cache": str(cache),
        }
    else:
        trainer = {
            "kind": "sb3",
            "algo": "PPO",
            "env": "CartPole-v1",
            "timesteps": steps,
            "n_envs": 1,
            "kwargs": {k: v for k, v in SB3_PPO.items()},
        }
    return {
        "study": name,
        "seed": 0,
        "trainer": trainer,
        "eval": {"every": every, "episodes": 10},
        "objective": {"metric": "eval/mean_return", "mode": "max", "reduce": "last"},
        "strategy": {"name": "grid", "seeds": 1, "workers": workers},
        "params": grid(configs),
    }


def run(spec: dict[str, Any], root: Path) -> tuple[float, float]:
    """`rlsweep run` in a fresh process; returns (wall seconds, best final evaluation return)."""
    file = root / f"{spec['study']}.yaml"
    file.write_text(yaml.safe_dump(spec, sort_keys=False))
    print(
        f"== {spec['study']}: {spec['trainer']['kind']}, {spec['strategy']['workers']} worker(s)", flush=True
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rlsweep", "run", str(file), "--quiet"], cwd=root)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"rlsweep run {file} exited with {done.returncode}")
    import optuna

    study = optuna.load_study(
        study_name=spec["study"], storage=f"sqlite:///{root}/runs/{spec['study']}/study.db"
    )
    best = max((t.value for t in study.trials if t.value is not None), default=float("nan"))
    print(f"   {wall:.1f} s, best final return {best:.1f}", flush=True)
    batches = {
        t.user_attrs["batch"]["id"]: t.user_attrs["batch"] for t in study.trials if "batch" in t.user_attrs
    }
    for b in batches.values():  # the JAX side: each worker's batch, compile vs train seconds
        print(
            f"   batch {b['id']}: {b['size']} runs, compile {b['compile_s']:.1f} s, train {b['train_s']:.1f} s",
            flush=True,
        )
    return wall, best


def zoo(configs: int, steps: int, root: Path) -> float | None:
    """rl-zoo3's -optimize on the same budget (configs trials x steps), or None when not installed."""
    if importlib.util.find_spec("rl_zoo3") is None:
        return None
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "CartPole-v1", "-optimize", "--n-trials", str(configs),
           "--n-jobs", "2", "-n", str(steps), "--sampler", "random", "--pruner", "none", "--log-folder", str(root / "zoo")]  # fmt: skip
    subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--short", action="store_true", help="8 configurations x 20k steps, cold and warm cache"
    )
    parser.add_argument("--configs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--every", type=int, default=None)
    parser.add_argument("--jax-workers", type=int, default=2)
    parser.add_argument("--skip-sb3", action="store_true", help="time the JAX side only")
    args = parser.parse_args()
    configs = args.configs or (8 if args.short else 32)
    steps = args.steps or (20_000 if args.short else 100_000)
    every = args.every or max(steps // 10, 2048)
    print(
        f"{configs} configurations x {steps} steps, SB3's PPO settings on both sides; load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="rlsweep-bench-") as tmp:
        root = Path(tmp)
        cache = root / "jax-cache"  # empty: the first JAX run compiles from scratch
        jax_wall, jax_best = run(
            sweep("jax", "jax-cold", configs, steps, every, args.jax_workers, cache), root
        )
        warm = (
            run(sweep("jax", "jax-warm", configs, steps, every, args.jax_workers, cache), root)
            if args.short
            else None
        )
        sb3_wall, sb3_best = (
            (float("nan"), float("nan"))
            if args.skip_sb3
            else run(sweep("sb3", "sb3", configs, steps, every, 2, cache), root)
        )
        zoo_wall = None if args.skip_sb3 else zoo(configs, steps, root)
    print()
    print(f"jax (cold cache): {jax_wall:8.1f} s  best return {jax_best:.1f}")
    if warm is not None:
        print(f"jax (warm cache): {warm[0]:8.1f} s  best return {warm[1]:.1f}")
    print(f"sb3, 2 workers:   {sb3_wall:8.1f} s  best return {sb3_best:.1f}")
    print(f"rl-zoo3 -optimize: {'not installed' if zoo_wall is None else f'{zoo_wall:.1f} s'}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"ratio sb3/jax (cold): {sb3_wall / jax_wall:.2f}  (target {'>= 5' if args.short else '>= 30'})")
    if warm is not None:
        print(f"ratio sb3/jax (warm): {sb3_wall / warm[0]:.2f}  (target >= 8)")
    if not args.short:
        print(f"best jax return: {jax_best:.1f}  (target >= 475)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
