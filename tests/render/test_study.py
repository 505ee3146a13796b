"""Choosing what to render: why a run has no checkpoint timeline, on plain stand-ins for a study."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rlsweep.config import load_sweep
from rlsweep.errors import ConfigError
from rlsweep.render import render_many
from rlsweep.render.study import no_checkpoints, policy_jobs, policy_of, timeline
from tests.conftest import synthetic_sweep


def run(
    number: int,
    last_step: int,
    state: str = "COMPLETE",
    reason: str | None = None,
    checkpoints: list[str] | None = None,
) -> Any:
    attrs: dict[str, Any] = {"stop_reason": reason} if reason else {}
    if checkpoints is not None:
        attrs["checkpoints"] = checkpoints
    return SimpleNamespace(
        number=number,
        state=SimpleNamespace(name=state),
        user_attrs=attrs,
        intermediate_values={s: 1.0 for s in range(5000, last_step + 1, 5000)},
    )


def study(tmp_path: Path, every: int | None = 20000) -> Any:
    def saved(number: int) -> list[str]:
        path = tmp_path / str(number) / "checkpoints" / "step_20000.zip"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"zip")
        return [str(path)]

    trials = [
        run(
            3,
            25000,
            reason="success: eval/mean_return = 500 for 2 evaluations in a row",
            checkpoints=saved(3),
        ),
        run(5, 40000, checkpoints=saved(5)),
        run(6, 10000, "PRUNED", reason="pruned by median at step 10000"),
        run(
            8,
            25000,
            "PRUNED",
            reason="gate: eval/mean_return = 20 < 60 at step 20000 (after 20000)",
            checkpoints=[],
        ),
        run(9, 5000, "FAIL"),
        run(11, 10000, "RUNNING"),
        run(17, 15000, reason="success: eval/mean_return = 500 for 2 evaluations in a row"),
        run(18, 40000, checkpoints=[str(tmp_path / "gone" / "step_20000.zip")]),
    ]
    sweep = SimpleNamespace(checkpoint=SimpleNamespace(every=every), trainer={"timesteps": 40000})
    return SimpleNamespace(name="cartpole-ppo", sweep=sweep, get_trials=lambda deepcopy=False: trials)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (
            17,
            "run 17 of study 'cartpole-ppo' stopped at step 15000 (success gate) before its first checkpoint at 20000; runs with checkpoints: 3, 5",
        ),
        (
            6,
            "run 6 of study 'cartpole-ppo' stopped at step 10000 (pruned by median) before its first checkpoint at 20000; runs with checkpoints: 3, 5",
        ),
        (
            9,
            "run 9 of study 'cartpole-ppo' stopped at step 5000 (failed) before its first checkpoint at 20000; runs with checkpoints: 3, 5",
        ),
        (
            11,
            "run 11 of study 'cartpole-ppo' is still running (step 10000) and has no checkpoint yet; runs with checkpoints: 3, 5",
        ),
        (
            8,
            "run 8 of study 'cartpole-ppo' reached step 25000 but recorded no checkpoint (every 20000 steps); runs with checkpoints: 3, 5",
        ),
        (18, "run 18 of study 'cartpole-ppo' has no saved checkpoints (its checkpoint files are missing)"),
    ],
)
def test_a_run_without_checkpoints_says_why_and_which_runs_have_some(
    tmp_path: Path, number: int, message: str
) -> None:
    handle = study(tmp_path)
    with pytest.raises(ConfigError) as excinfo:
        timeline(handle, number, tmp_path / "render")
    assert str(excinfo.value) == message
    assert excinfo.value.exit_code == 2


def test_without_checkpoint_every_the_fix_is_to_set_it(tmp_path: Path) -> None:
    handle = study(tmp_path, every=None)
    trial = next(t for t in handle.get_trials() if t.number == 17)
    assert no_checkpoints(handle, trial) == (
        "run 17 of study 'cartpole-ppo' has no saved checkpoints (set 'checkpoint: {every: N}' in the sweep file)"
    )


def test_the_sidecar_holds_every_hyperparameter_of_the_run(tmp_path: Path) -> None:
    import dataclasses

    import gymnasium as gym

    params = {
        "learning_rate": {"loguniform": [1e-5, 1e-1]},
        "gamma": {"uniform": [0.9, 0.9999]},
        "policy_kwargs": {"net_arch": {"choice": [[64, 64], [128]]}},
        "batch_size": 64,  # fixed, not searched: still one of the run's hyperparameters
    }
    loaded = load_sweep(synthetic_sweep("side", tmp_path, params=params))
    model = tmp_path / "model.zip"
    model.write_bytes(b"zip")
    values = {"learning_rate": 3e-4, "gamma": 0.99, "policy_kwargs.net_arch": [128]}
    trial = SimpleNamespace(
        number=4,
        params=values,
        user_attrs={"seed": 1, "model": str(model)},
        state=SimpleNamespace(name="COMPLETE"),
    )
    handle = SimpleNamespace(
        name="side", space=loaded.space, decode=lambda p: p, config_id=lambda t: "c0ffee"
    )
    policy = policy_of(handle, trial)
    assert policy.hyperparameters == {
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "policy_kwargs": {"net_arch": [128]},
        "batch_size": 64,
    }

    (job,) = policy_jobs([policy], tmp_path / "render", "side", size=(64, 48))
    job = dataclasses.replace(
        job,
        make_env=lambda config, seed, render_mode=None: gym.make("CartPole-v1", render_mode=render_mode),
        load_policy=lambda path, config: lambda obs: 0,
    )
    (outcome,) = render_many([job], workers=1)
    assert outcome.ok, outcome.error
    meta = json.loads(outcome.results[0].sidecar.read_text())
    assert meta["hyperparameters"] == policy.hyperparameters
    assert (meta["study"], meta["run"], meta["train_seed"], meta["config_id"]) == ("side", 4, 1, "c0ffee")
