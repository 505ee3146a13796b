#!/usr/bin/env python
"""A stand-in for Unity ML-Agents' `mlagents-learn`, for machines without Unity (and without the
Python 3.10 that ML-Agents needs): the same command-line shape, the same trainer config YAML, the
same results layout and TensorBoard tag names, so a sweep written for it runs unchanged against the
real tool (see the README's command trainer section).

    python examples/mlagents_standin.py config.yaml --run-id=ID [--env=builds/3DBall] [--no-graphics]
        [--num-envs=N] [--seed=S] [--results-dir=results] [--force] [--resume] [--initialize-from=ID]

It "trains" a synthetic learning curve whose speed and plateau depend on the config's
hyperparameters (learning_rate, batch_size, hidden_units, beta, ...), writes one TensorBoard event
file per behavior under <results-dir>/<run-id>/<behavior>/ every `summary_freq` steps with
ML-Agents' tags (Environment/Cumulative Reward, Environment/Episode Length, Policy/Learning Rate,
Losses/Value Loss, ...), prints ML-Agents-like progress lines, and on SIGINT (Ctrl-C) saves its
model (<behavior>.onnx and <behavior>/checkpoint.json) before exiting, as mlagents-learn does.

STANDIN_SECONDS_PER_SUMMARY (default 0.2) sets the wall time of one summary period.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "trainer_type": "ppo",
    "hyperparameters": {"batch_size": 1024, "buffer_size": 10240, "learning_rate": 3.0e-4, "beta": 5.0e-3,
                        "epsilon": 0.2, "lambd": 0.95, "num_epoch": 3, "learning_rate_schedule": "linear"},
    "network_settings": {"normalize": False, "hidden_units": 128, "num_layers": 2},
    "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
    "max_steps": 500000,
    "time_horizon": 64,
    "summary_freq": 50000,
}  # fmt: skip
# The behaviors a build has when the config names none (3DBall's agent).
BUILD_BEHAVIORS = ("3DBall",)
MAX_REWARD = 100.0


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {k: merge(base.get(k), over[k]) if k in over else v for k, v in base.items()} | {
            k: v for k, v in over.items() if k not in base
        }
    return base if over is None else over


def behaviors_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each behavior's settings: ML-Agents' defaults, then default_settings, then its own."""
    defaults = merge(DEFAULTS, config.get("default_settings") or {})
    named = config.get("behaviors") or {name: {} for name in BUILD_BEHAVIORS}
    return {name: merge(defaults, settings or {}) for name, settings in named.items()}


def quality(settings: dict[str, Any]) -> tuple[float, float]:
    """(plateau in [0, 1], steps to reach 63% of it) from the hyperparameters: a learning rate near
    3e-4, a batch near 64-256, wider networks and little entropy bonus learn best."""
    h, net = settings["hyperparameters"], settings["network_settings"]
    lr_fit = math.exp(-((math.log10(float(h["learning_rate"])) + 3.5) ** 2) / 0.5)
    batch_fit = math.exp(-((math.log2(float(h["batch_size"])) - 7.0) ** 2) / 8.0)
    width = min(1.0, 0.6 + float(net["hidden_units"]) / 512.0)
    beta = math.exp(-float(h["beta"]) / 0.02)
    plateau = max(0.02, lr_fit * batch_fit * width * beta)
    tau = 40000.0 / (0.3 + lr_fit)
    return plateau, tau


class Behavior:
    def __init__(self, name: str, settings: dict[str, Any], folder: Path, rng: random.Random, start: int) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.name, self.settings, self.rng = name, settings, rng
        self.plateau, self.tau = quality(settings)
        self.step = start
        folder.mkdir(parents=True, exist_ok=True)
        self.writer = EventFileWriter(str(folder))
        self.started = time.time()

    def summary(self, step: int) -> float:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        h = self.settings["hyperparameters"]
        progress = 1.0 - math.exp(-step / self.tau)
        reward = MAX_REWARD * self.plateau * progress + self.rng.gauss(0.0, 2.0)
        length = 10.0 + 990.0 * self.plateau * progress
        lr = float(h["learning_rate"]) * (1.0 - step / max(1, int(self.settings["max_steps"])))
        tags = {
            "Environment/Cumulative Reward": reward,
            "Environment/Episode Length": length,
            "Policy/Learning Rate": lr,
            "Policy/Entropy": 1.4 * (1.0 - 0.7 * progress),
            "Losses/Value Loss": 0.5 * (1.0 - progress) + abs(self.rng.gauss(0.0, 0.02)),
            "Losses/Policy Loss": 0.05 * (1.0 - progress),
            "Is Training": 1.0,
        }
        value = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in tags.items()]
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=value)))
        self.writer.flush()  # ML-Agents flushes each summary: readers see it at once
        return reward

    def save(self, results: Path) -> None:
        """<behavior>.onnx and a checkpoint, each written to a temporary name first."""
        state = {"behavior": self.name, "step": self.step, "plateau": self.plateau}
        for path in (results / f"{self.name}.onnx", results / self.name / "checkpoint.json"):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, path)
        print(f"[INFO] Exported {results / (self.name + '.onnx')}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mlagents-learn", description="ML-Agents trainer (rlsweep stand-in)")
    p.add_argument("trainer_config_path")
    p.add_argument("--run-id", default="ppo")
    p.add_argument("--env", dest="env_path", default=None)
    p.add_argument("--no-graphics", action="store_true")
    p.add_argument("--num-envs", type=int, default=1)
    p.add_argument("--seed", type=int, default=-1)
    p.add_argument("--results-dir", default="results")
    p.add_argument("--force", action="store_true")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--initialize-from", default=None)
    p.add_argument("--base-port", type=int, default=5005)
    p.add_argument("--time-scale", type=float, default=20.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = yaml.safe_load(Path(args.trainer_config_path).read_text()) or {}
    results = Path(args.results_dir) / args.run_id
    if results.exists() and not (args.force or args.resume):
        print(f"mlagents.trainers.exception.UnityTrainerException: Previous data from this run ID was found. "
              f"Either specify a new run ID, use --resume to resume this run, or use the --force parameter "
              f"to overwrite existing data. ({results})", file=sys.stderr)  # fmt: skip
        return 1
    seed = args.seed if args.seed >= 0 else random.randrange(10000)
    results.mkdir(parents=True, exist_ok=True)
    (results / "run_logs").mkdir(exist_ok=True)
    (results / "configuration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    interrupted: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    behaviors = [
        Behavior(name, settings, results / name, random.Random(seed * 1000 + i), 0)
        for i, (name, settings) in enumerate(behaviors_of(config).items())
    ]
    pause = float(os.environ.get("STANDIN_SECONDS_PER_SUMMARY", "0.2"))
    print(f"[INFO] Connected new brain: {', '.join(b.name for b in behaviors)} (seed {seed})", flush=True)
    while not interrupted and any(b.step < int(b.settings["max_steps"]) for b in behaviors):
        deadline = time.monotonic() + pause
        while not interrupted and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        if interrupted:
            break
        for b in behaviors:
            if b.step >= int(b.settings["max_steps"]):
                continue
            b.step = min(int(b.settings["max_steps"]), b.step + int(b.settings["summary_freq"]))
            reward = b.summary(b.step)
            print(f"[INFO] {b.name}. Step: {b.step}. Time Elapsed: {time.time() - b.started:.3f} s. "
                  f"Mean Reward: {reward:.3f}. Training.", flush=True)  # fmt: skip
    if interrupted:
        print("[INFO] Learning was interrupted. Please wait while the graph is generated.", flush=True)
    for b in behaviors:
        b.save(results)
        b.writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
