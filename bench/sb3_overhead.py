"""rlsweep's overhead over bare Stable-Baselines3: the same PPO-CartPole runs, 2 at a time.

(a) N bare SB3 scripts (one process per run, 1 torch thread, same evaluation schedule), started 2 at
    a time; (b) `rlsweep run` on a sweep of the same fixed configuration with N seeds and 2 workers.
Both sides evaluate 10 episodes every 5000 steps with the episodes batched over 10 envs, and both
save a best and a final model. Prints both wall times and, last, the ratio rlsweep / bare
(target: <= 1.10).

    python bench/sb3_overhead.py            # 8 runs of 20k steps (about 2-3 minutes on 2 cores)
    python bench/sb3_overhead.py --runs 2 --steps 4000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HYPER = {
    "n_steps": 32,
    "batch_size": 256,
    "n_epochs": 10,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "learning_rate": 1.0e-3,
}
N_ENVS = 8
EVAL_EVERY = 5000
EVAL_EPISODES = 10
PARALLEL = 2

BARE = textwrap.dedent(
    """
    import sys

    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env

    seed, steps, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    env = make_vec_env("CartPole-v1", n_envs={n_envs}, seed=seed)
    eval_env = make_vec_env("CartPole-v1", n_envs={episodes}, seed=seed + 1_000_003)
    callback = EvalCallback(eval_env, n_eval_episodes={episodes}, eval_freq={every} // {n_envs}, best_model_save_path=out, verbose=0)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **{hyper})
    model.learn(steps, callback=callback)
    model.save(out + "/model")
    """
).format(n_envs=N_ENVS, episodes=EVAL_EPISODES, every=EVAL_EVERY, hyper=json.dumps(HYPER))


def sweep_file(steps: int, runs: int) -> str:
    trainer = {
        "kind": "sb3",
        "algo": "PPO",
        "env": "CartPole-v1",
        "timesteps": steps,
        "n_envs": N_ENVS,
        "kwargs": HYPER,
    }
    return textwrap.dedent(
        f"""
        study: sb3-overhead
        seed: 0
        trainer: {json.dumps(trainer)}
        eval: {{every: {EVAL_EVERY}, episodes: {EVAL_EPISODES}}}
        objective: {{metric: eval/mean_return, mode: max}}
        strategy: {{name: grid, seeds: {runs}, workers: {PARALLEL}}}
        """
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.setdefault("SDL_VIDEODRIVER", "dummy")
    return env


def run_bare(workdir: Path, runs: int, steps: int) -> float:
    script = workdir / "bare_ppo.py"
    script.write_text(BARE)
    pending = list(range(runs))
    running: list[subprocess.Popen[bytes]] = []
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < PARALLEL:
            seed = pending.pop(0)
            out = workdir / f"bare-{seed}"
            out.mkdir()
            running.append(
                subprocess.Popen(
                    [sys.executable, str(script), str(seed), str(steps), str(out)], env=child_env()
                )
            )
        time.sleep(0.05)
        for proc in [p for p in running if p.poll() is not None]:
            if proc.returncode != 0:
                raise SystemExit(f"a bare SB3 run failed with exit code {proc.returncode}")
            running.remove(proc)
    elapsed = time.perf_counter() - start
    if len(list(workdir.glob("bare-*/model.zip"))) != runs:
        raise SystemExit("a bare SB3 run saved no final model")
    return elapsed


def run_rlsweep(workdir: Path, runs: int, steps: int) -> float:
    sweep = workdir / "sweep.yaml"
    sweep.write_text(sweep_file(steps, runs))
    command = [sys.executable, "-m", "rlsweep", "run", str(sweep), "--workers", str(PARALLEL), "--quiet"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, env=child_env(), stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"rlsweep run exited with {result.returncode}; see {workdir}/runs/sb3-overhead/logs")
    models = list((workdir / "runs" / "sb3-overhead" / "artifacts").glob("*/model.zip"))
    if len(models) != runs:  # the comparison is void unless every run really trained
        raise SystemExit(f"rlsweep saved {len(models)} final models, expected {runs}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlsweep-bench-") as tmp:
        workdir = Path(tmp)
        bare = run_bare(workdir, args.runs, args.steps)
        print(
            f"bare SB3: {args.runs} runs x {args.steps} steps, {PARALLEL} at a time: {bare:.1f} s", flush=True
        )
        swept = run_rlsweep(workdir, args.runs, args.steps)
        print(
            f"rlsweep:  {args.runs} runs x {args.steps} steps, {PARALLEL} workers:    {swept:.1f} s",
            flush=True,
        )
    print(f"ratio rlsweep/bare: {swept / bare:.3f}")


if __name__ == "__main__":
    main()
