"""The batched JAX trainer with rejax's SAC and TD3 on Pendulum: two learning rates trained as one
vmapped batch through the real worker on a SQLite file; the learning one's saved actor plays
Gymnasium's Pendulum deterministically about as well as its evaluation said, the other stays near
a random policy. JAX on CPU is deterministic for a given seed: the returns are the same every run
(measured: SAC -346 vs -1306 at 12,000 steps; TD3, which learns Pendulum sooner, -506 vs -1533 at
9,000 steps of 2 epochs, half the time of 12,000 of 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rejax")

from optuna.trial import TrialState  # noqa: E402

from rlsweep.config import load_sweep  # noqa: E402
from rlsweep.errors import ConfigError  # noqa: E402
from tests.conftest import run_in_process  # noqa: E402
from tests.trainers.test_jax import gymnasium_returns  # noqa: E402

TINY = {"num_envs": 4, "num_epochs": 4, "buffer_size": 16384, "fill_buffer": 1000, "batch_size": 128, "polyak": 0.995}
LRS = [1e-6, 1e-3]
# Each algorithm's budget: (timesteps, evaluation every, num_epochs); the shortest at which it learns.
BUDGET = {"sac": (12000, 4000, 4), "td3": (9000, 3000, 2)}


def sweep_of(algo: str, name: str, tmp_path: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "study": name,
        "trainer": {"kind": "jax", "algo": algo, "env": "Pendulum-v1", "timesteps": 12000, "batch": 2, **TINY, **trainer},
        "eval": {"every": 4000, "episodes": 4},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "grid", "seeds": 1},
        "params": {"learning_rate": {"choice": LRS}},
        "storage": f"sqlite:///{tmp_path}/runs/{name}/study.db",
        "artifacts": str(tmp_path / "runs" / name / "artifacts"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_actor_critic_runs_train_as_one_batch_and_their_actors_play_gymnasium(algo: str, tmp_path: Path) -> None:

    steps, every, epochs = BUDGET[algo]
    sweep = sweep_of(algo, f"pendulum-{algo}", tmp_path, timesteps=steps, num_epochs=epochs)
    sweep["eval"]["every"] = every
    handle = run_in_process(sweep)
    trials = {handle.decode(t.params)["learning_rate"]: t for t in handle.study.get_trials(deepcopy=False)}
    assert sorted(trials) == LRS
    assert len({t.user_attrs["batch"]["id"] for t in trials.values()}) == 1
    for t in trials.values():
        assert t.state == TrialState.COMPLETE and sorted(t.intermediate_values) == [every, 2 * every, steps]
    learned, still = trials[1e-3], trials[1e-6]
    assert learned.value > -700 and still.value < -1000, (learned.value, still.value)

    def in_range(action: Any) -> None:
        assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0  # within Pendulum's torque range

    returns = gymnasium_returns(handle.sweep.trainer, learned.user_attrs["model"], 3, check=in_range)
    assert sum(returns) / 3 > (learned.value + still.value) / 2, returns


def test_actor_critic_settings_are_checked(tmp_path: Path) -> None:
    cases = [
        ("td3", {"env": "CartPole-v1"}, "trainer.algo: td3 needs continuous actions and CartPole-v1 has discrete ones; use ppo, dqn, pqn or sac"),
        ("sac", {"policy_delay": 2}, "trainer.policy_delay: unknown setting 'policy_delay' (a setting of td3, not sac)"),
        ("td3", {"polyak": 1.5}, "trainer.polyak: must be between 0 and 1, got 1.5"),
        ("sac", {"num_critics": 0}, "trainer.num_critics: must be a whole number >= 1, got 0"),
    ]  # fmt: skip
    for algo, change, message in cases:
        with pytest.raises(ConfigError) as err:
            load_sweep(sweep_of(algo, "bad", tmp_path, **change), file="sweep.yaml")
        assert str(err.value) == f"sweep.yaml: {message}"
    # SAC also takes discrete actions (a categorical actor)
    assert load_sweep(sweep_of("sac", "ok", tmp_path, env="CartPole-v1"), file="sweep.yaml").sweep.study == "ok"
