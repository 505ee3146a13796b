"""A PPO-CartPole population of 1024 runs x 1M steps as one JAX batch: aggregate environment steps per
second on the GPU, and the ratio to the same batch on the CPU (goal: >= 50 million steps/s on one
H100-class GPU).

It drives the JAX trainer's own batch loop (`rlsweep.trainers.jax.batch.train_batch`: the chunked
vmapped training, the per-run evaluations and reports, the saved states) with run contexts whose
reports are counted, not stored, so the figure is the trainer's throughput without a database. The
CPU figure comes from the same batch in a child process with JAX_PLATFORMS=cpu, trained for
`--cpu-steps` steps per run only (the full budget would take hours there); both throughputs exclude
compilation, which is printed apart.

Exact command on a machine with a CUDA GPU (after `pip install -e '.[jax]' 'jax[cuda12]'`):

    python bench/jax_gpu.py --runs 1024 --steps 1000000 --cpu-steps 8192

Not yet run: no GPU was available where it was written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES = {
    "num_envs": 8,
    "num_steps": 128,
    "num_epochs": 4,
    "num_minibatches": 4,
    "hidden_layer_sizes": [64, 64],
    "activation": "tanh",
}


def measure(runs: int, steps: int, every: int) -> dict[str, Any]:
    """Train `runs` runs of `steps` steps in one batch in this process; throughput and times."""
    import jax

    from rlsweep.trainers._base import Decision, RunContext
    from rlsweep.trainers.jax import batch

    config = {
        "kind": "jax",
        "algo": "ppo",
        "env": "CartPole-v1",
        "timesteps": steps,
        "batch": runs,
        "shrink": False,
        **SHAPES,
    }
    reports = [0]
    recorded: dict[str, Any] = {}

    def report(step: int, metrics: Any) -> Decision:
        reports[0] += 1
        return Decision.CONTINUE

    def record(key: str, value: Any) -> None:
        recorded[key] = value

    with tempfile.TemporaryDirectory(prefix="rlsweep-gpu-") as tmp:
        contexts = []
        for i in range(runs):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            hyper = {
                "learning_rate": 10 ** (-4 + 1.5 * i / max(runs - 1, 1))
            }  # 1e-4 .. 3e-3 across the batch
            contexts.append(
                RunContext(
                    "gpu",
                    i,
                    config,
                    hyper,
                    hyper,
                    i,
                    steps,
                    every,
                    10,
                    "eval/mean_return",
                    folder,
                    report,
                    record=record,
                )
            )
        started = time.perf_counter()
        batch.train_batch(contexts)
        wall = time.perf_counter() - started
    info = recorded["batch"]
    per_iteration = SHAPES["num_envs"] * SHAPES["num_steps"]
    total = runs * -(-steps // per_iteration) * per_iteration
    return {
        "device": jax.devices()[0].device_kind,
        "runs": runs,
        "steps_per_run": steps,
        "wall_s": wall,
        "compile_s": info["compile_s"],
        "train_s": info["train_s"],
        "steps_per_s": total / info["train_s"],
        "reports": reports[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000, help="evaluate every this many steps per run")
    parser.add_argument(
        "--cpu-steps", type=int, default=8192, help="steps per run for the CPU comparison (0: skip)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the CPU comparison, in a process that sees no GPU
        print(json.dumps(measure(args.runs, args.steps, args.every)))
        return 0
    gpu = measure(args.runs, args.steps, args.every)
    print(f"{gpu['device']}: {gpu['runs']} runs x {gpu['steps_per_run']} steps: {gpu['steps_per_s'] / 1e6:.3f} M steps/s "
          f"(train {gpu['train_s']:.1f} s, compile {gpu['compile_s']:.1f} s, wall {gpu['wall_s']:.1f} s)", flush=True)  # fmt: skip
    if args.cpu_steps:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--runs",
            str(args.runs),
            "--steps",
            str(args.cpu_steps),
            "--every",
            str(args.cpu_steps),
        ]
        cpu = json.loads(
            subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        print(f"cpu ({os.cpu_count()} cores): {cpu['runs']} runs x {cpu['steps_per_run']} steps: {cpu['steps_per_s'] / 1e6:.3f} M steps/s "
              f"(train {cpu['train_s']:.1f} s, compile {cpu['compile_s']:.1f} s)")  # fmt: skip
        print(f"ratio gpu/cpu: {gpu['steps_per_s'] / cpu['steps_per_s']:.1f}")
    print(f"goal: >= 50 M steps/s on one H100-class GPU: {'met' if gpu['steps_per_s'] >= 50e6 else 'missed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
