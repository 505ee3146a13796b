"""The trainer contract, run for every trainer that exists (`function`, `sb3` and `command`): each hook returns
its declared type, the modules to warm import, and a tiny run trains through the real Worker on a
SQLite file and reports the objective; a trainer that can load policies loads the saved model and
builds an env that renders it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from rlsweep.errors import ConfigError
from rlsweep.study import StudyHandle
from rlsweep.trainers import QUICKSTART_KIND, TRAINERS, Trainer, get_trainer_class, quickstart_sweep
from tests.conftest import run_in_process

SETTINGS: dict[str, dict[str, Any]] = {
    "function": {"kind": "function", "target": "rlsweep.examples.toy_pbt:train", "timesteps": 8, "lr": 0.01},
    "sb3": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 256},
    "jax": {"kind": "jax", "algo": "ppo", "env": "CartPole-v1", "timesteps": 256, "num_envs": 4, "num_steps": 32,
            "num_epochs": 2, "num_minibatches": 2, "hidden_layer_sizes": [32, 32]},
    "command": {"kind": "command", "command": ["{python}", str(Path(__file__).with_name("command_prog.py")), "--steps=4",
                "--slope={slope}"], "metrics": {"regex": r"step=(?P<step>\d+) value=(?P<value>\S+)", "tags": {"value": "score"}},
                "timesteps": 400, "poll": 0.2},
}
PARAMS: dict[str, dict[str, Any]] = {
    "function": {"h0": {"uniform": [0.0, 1.0]}, "h1": {"uniform": [0.0, 1.0]}},
    "sb3": {"learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}, "n_steps": 64, "batch_size": 32, "n_epochs": 1,
            "policy_kwargs": {"net_arch": [16]}},
    "jax": {"learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}},
    "command": {"slope": {"uniform": [0.5, 2.0]}},
}
OBJECTIVE = {"function": "Q", "sb3": "eval/mean_return", "command": "score", "jax": "eval/mean_return"}
KINDS = list(TRAINERS)


def trainer_of(kind: str) -> type[Trainer]:
    if kind == "sb3":
        pytest.importorskip("stable_baselines3")
    if kind == "jax":
        pytest.importorskip("rejax")
    return get_trainer_class(kind)


def test_every_registered_trainer_is_covered() -> None:
    assert set(SETTINGS) == set(TRAINERS)


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_return_their_declared_types(kind: str) -> None:
    cls = trainer_of(kind)
    settings = SETTINGS[kind]
    assert cls.kind() == kind
    for flag in ("writes_tensorboard", "records_checkpoints", "can_load_policy"):
        assert isinstance(getattr(cls, flag), bool), flag
    assert isinstance(cls.batch_size, int) and cls.batch_size >= 1
    space = cls.default_space(settings)
    assert space is None or isinstance(space, dict)
    if space is not None:
        merged = cls.merge_space(space, {"gamma": 0.5})
        assert isinstance(merged, dict) and merged["gamma"] == 0.5
    updates = cls.updates_per_step(settings, {k: v for k, v in PARAMS[kind].items() if not isinstance(v, dict)})
    assert updates is None or (isinstance(updates, float) and updates > 0)
    modules = cls.warm_modules(settings)
    assert isinstance(modules, list) and modules and all(isinstance(m, str) for m in modules)
    for name in modules:
        importlib.import_module(name)  # a standby worker imports exactly these
    if kind == QUICKSTART_KIND:
        section = cls.quickstart("PPO", "CartPole-v1", 1000)
        assert section["kind"] == kind and section["timesteps"] == 1000
    else:
        with pytest.raises(ConfigError, match=f"^trainer kind '{kind}' has no quick start; write a sweep file$"):
            cls.quickstart("PPO", "CartPole-v1", 1000)
    if not cls.can_load_policy:
        message = f"the '{kind}' trainer saves no policy that rlsweep can load, evaluate or render"
        with pytest.raises(ConfigError, match=f"^{message}$"):
            cls.load_policy(settings, "model.zip")
        with pytest.raises(ConfigError, match=f"^{message}$"):
            cls.make_env(settings, 0)


def test_function_warm_modules_name_the_target() -> None:
    assert get_trainer_class("function").warm_modules(SETTINGS["function"]) == [
        "rlsweep.trainers.function",
        "rlsweep.examples.toy_pbt",
    ]


def test_quickstart_sweep_is_a_valid_search_over_the_default_space() -> None:
    pytest.importorskip("stable_baselines3")
    sweep = quickstart_sweep("ppo", "CartPole-v1", 5000, 3)
    cls = get_trainer_class(QUICKSTART_KIND)
    assert sweep["study"] == "cartpole-v1-ppo"
    assert sweep["trainer"] == cls.quickstart("ppo", "CartPole-v1", 5000)
    assert sweep["eval"] == {"every": 1000, "episodes": 5}
    assert sweep["strategy"] == {"name": "tpe", "runs": 3, "pruner": "median"}
    assert sweep["params"] == cls.default_space(sweep["trainer"])
    assert load_sweep(sweep).sweep.params == sweep["params"]


def train_one(kind: str, tmp_path: Path) -> tuple[StudyHandle, Any]:
    sweep = {
        "study": f"contract-{kind}",
        "trainer": SETTINGS[kind],
        "eval": {"every": SETTINGS[kind]["timesteps"] // 2, "episodes": 2},
        "objective": {"metric": OBJECTIVE[kind], "mode": "max"},
        "strategy": {"name": "random", "runs": 1},
        "params": PARAMS[kind],
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
    }
    handle = run_in_process(sweep)
    trials = handle.study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    return handle, trials[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_tiny_run_trains_through_the_worker(kind: str, tmp_path: Path) -> None:
    cls = trainer_of(kind)
    handle, trial = train_one(kind, tmp_path)
    steps = sorted(trial.intermediate_values)
    budget = SETTINGS[kind]["timesteps"]
    assert steps and steps[-1] == budget
    assert trial.value is not None and np.isfinite(trial.value)
    assert trial.value == pytest.approx(trial.intermediate_values[budget])
    if cls.records_checkpoints:
        recorded = trial.user_attrs.get("checkpoint") or trial.user_attrs.get("model")
        assert recorded and Path(recorded).is_file()
    if cls.writes_tensorboard:
        assert list((tmp_path / "artifacts").rglob("events.out.tfevents*"))
    if cls.can_load_policy:
        config, _ = handle.space.fill(handle.decode(trial.params))
        policy = cls.load_policy(config, trial.user_attrs["model"])
        env = cls.make_env(config, 7, render_mode="rgb_array")
        try:
            obs, _ = env.reset(seed=7)
            action = np.asarray(policy(obs[None]))[0]
            assert env.action_space.contains(action.item() if action.ndim == 0 else action)
            frame = env.render()
            assert isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3
        finally:
            env.close()
