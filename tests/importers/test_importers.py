"""`rlsweep import`: ML-Agents configs (81 runs for 3x3 default_settings markers over two behaviors,
in the config's order; opt_stop as gates), policy-params JSON (lists are grid axes; index i is
configuration i mod N, seed number i div N) and rl-zoo3 entries (policy_kwargs read without
evaluating code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlsweep.cli import main
from rlsweep.config import load_sweep

MLAGENTS = """
default_settings:
  trainer_type: ppo
  hyperparameters:
    learning_rate: {opt_values: [1.0e-4, 3.0e-4, 1.0e-3]}
    batch_size: {opt_values: [64, 128, 256]}
  max_steps: 50000
  summary_freq: 5000
behaviors:
  Striker:
    opt_stop: {tag: "Environment/Cumulative Reward", step: 20000, min: 0.5}
  Goalie:
    network_settings: {hidden_units: 64}
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def grid_rows(path: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["grid", path, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_ml_agents_two_behaviors_make_81_runs_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    Path("trainer_config.yaml").write_text(MLAGENTS)
    command = "python -c pass {config_file} --run-id={run_id}"
    assert main(["import", "ml-agents", "trainer_config.yaml", "-o", "sweep.yaml", "--command", command]) == 0
    assert capsys.readouterr().out == "wrote sweep.yaml: study 'sweep'; 'rlsweep grid sweep.yaml' lists its runs\n"
    rows = grid_rows("sweep.yaml", capsys)
    assert len(rows) == 81
    b = "trainer.config.behaviors"
    order = [(r[f"{b}.Striker.hyperparameters.learning_rate"], r[f"{b}.Striker.hyperparameters.batch_size"],
              r[f"{b}.Goalie.hyperparameters.learning_rate"], r[f"{b}.Goalie.hyperparameters.batch_size"]) for r in rows]  # fmt: skip
    values = [(lr, bs) for lr in (1e-4, 3e-4, 1e-3) for bs in (64, 128, 256)]
    assert order == [(*s, *g) for s in values for g in values]
    sweep = load_sweep("sweep.yaml").sweep
    assert sweep.trainer["command"] == ["python", "-c", "pass", "{config_file}", "--run-id={run_id}"]
    assert sweep.trainer["timesteps"] == 50000 and sweep.eval.every == 5000
    assert [g.model_dump(exclude_none=True, by_alias=True) for g in sweep.stop] == [{"metric": "eval/mean_return", "after": 20000, "min": 0.5}]


def test_ml_agents_needs_the_config_file_in_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    Path("c.yaml").write_text(MLAGENTS)
    assert main(["import", "ml-agents", "c.yaml", "-o", "s.yaml", "--command", "mlagents-learn --run-id={run_id}"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: --command: --command must hand the config over with {config_file}, got 'mlagents-learn --run-id={run_id}'\n"
    )


def test_policy_params_lists_are_grid_axes_and_indices_go_past_the_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    Path("agent.json").write_text(json.dumps({"algo": "PPO", "learning_rate": [1e-3, 3e-4], "gamma": 0.99, "n_steps": [64, 128],
                                              "policy_kwargs": {"net_arch": [[32], [64, 64]]}}))  # fmt: skip
    Path("env.json").write_text(json.dumps({"env_id": "CartPole-v1", "total_timesteps": 5000, "seeds": 2}))
    assert main(["import", "policy-params", "agent.json", "--env", "env.json", "-o", "pp.yaml"]) == 0
    rows = grid_rows("pp.yaml", capsys)
    assert len(rows) == 16  # 2 x 2 x 2 configurations x 2 seeds
    for i, row in enumerate(rows):
        assert (row["config"], row["seed"]) == (i % 8, i // 8)
    assert rows[1]["policy_kwargs.net_arch"] == [64, 64] and rows[2]["n_steps"] == 128
    loaded = load_sweep("pp.yaml")
    assert loaded.sweep.trainer == {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 5000}


ZOO = """
CartPole-v1:
  n_envs: 8
  n_timesteps: !!float 1e5
  policy: 'MlpPolicy'
  n_steps: 32
  batch_size: 256
  learning_rate: lin_0.001
  normalize: "{'norm_obs': True, 'norm_reward': False}"
  policy_kwargs: "dict(net_arch=[64, 64], activation_fn=nn.ReLU, ortho_init=False)"
Pendulum-v1:
  n_timesteps: 1000
"""


def test_zoo_entry_as_a_fixed_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    Path("ppo.yml").write_text(ZOO)
    assert main(["import", "zoo", "ppo.yml", "--env", "CartPole-v1", "-o", "zoo.yaml"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "note: learning_rate: lin_0.001 is a linear schedule; rlsweep's sb3 trainer takes a constant: imported as 0.001"
    )
    sweep = load_sweep("zoo.yaml").sweep
    assert sweep.trainer == {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "n_envs": 8, "timesteps": 100000,
                             "policy": "MlpPolicy", "normalize": {"norm_obs": True, "norm_reward": False}}  # fmt: skip
    assert sweep.params == {"n_steps": 32, "batch_size": 256, "learning_rate": 0.001,
                            "policy_kwargs": {"net_arch": [64, 64], "activation_fn": "nn.ReLU", "ortho_init": False}}  # fmt: skip
    assert len(grid_rows("zoo.yaml", capsys)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ("__import__('os').system('touch pwned')",
         "cannot read \"__import__('os').system('touch pwned')\" in \"__import__('os').system('touch pwned')\" without running code; "
         "write plain values, dict(...), lists or names like nn.ReLU"),
        ("dict(net_arch=[64,", "'dict(net_arch=[64,' is not a Python expression ('[' was never closed)"),
    ],
)
def test_zoo_policy_kwargs_are_never_evaluated(capsys: pytest.CaptureFixture[str], kwargs: str, message: str) -> None:
    Path("ppo.yml").write_text(yaml.safe_dump({"CartPole-v1": {"n_timesteps": 1000, "policy_kwargs": kwargs}}))
    assert main(["import", "zoo", "ppo.yml", "--env", "CartPole-v1", "-o", "zoo.yaml"]) == 2
    assert capsys.readouterr().err == f"rlsweep: error: ppo.yml: CartPole-v1.policy_kwargs: {message}\n"
    assert not Path("pwned").exists() and not Path("zoo.yaml").exists()


def test_zoo_unknown_env_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    Path("ppo.yml").write_text(ZOO)
    assert main(["import", "zoo", "ppo.yml", "--env", "CartPole-v2", "-o", "z.yaml"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: ppo.yml: CartPole-v2: has no entry for 'CartPole-v2' (did you mean 'CartPole-v1'?); pass --env with one of its ids\n"
    )
