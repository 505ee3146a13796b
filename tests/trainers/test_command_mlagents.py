"""ML-Agents through the command trainer: the trainer config as a template (markers under
default_settings searched per behavior, opt_stop as gates), and the stand-in sweep with gates
stopping runs by SIGINT (the stand-in saves its model then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from tests.conftest import run_in_process

ROOT = Path(__file__).resolve().parents[2]
STANDIN = str(ROOT / "examples" / "mlagents_standin.py")
TWO_BEHAVIORS = {
    "default_settings": {
        "trainer_type": "ppo",
        "hyperparameters": {"learning_rate": {"opt_values": [1e-4, 3e-4, 1e-3]}, "batch_size": {"opt_values": [64, 128, 256]}},
        "max_steps": 1000,
    },
    "behaviors": {
        "Striker": {"hyperparameters": {"buffer_size": 2048}},
        "Goalie": {"network_settings": {"hidden_units": 64}},
    },
}


def sweep_for(template: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "study": "mla",
        "trainer": {
            "kind": "command",
            "command": ["{python}", STANDIN, "{config_file}", "--run-id={run_id}", "--results-dir={run_dir}/results"],
            "config_template": str(template),
            "metrics": {"tensorboard": "{run_dir}/results/{run_id}", "tags": {"Environment/Cumulative Reward": "eval/mean_return"}},
            "stop_signal": "SIGINT",
            "timesteps": 100000,
            **trainer,
        },
        "objective": {"metric": "eval/mean_return"},
        "strategy": {"name": "grid"},
    }


def test_default_settings_markers_are_searched_per_behavior(tmp_path: Path) -> None:
    template = tmp_path / "trainer_config.yaml"
    template.write_text(yaml.safe_dump(TWO_BEHAVIORS, sort_keys=False))
    loaded = load_sweep(sweep_for(template))
    grid = loaded.space.grid()
    prefix = "trainer.config.behaviors"
    assert loaded.space.names == [
        f"{prefix}.Striker.hyperparameters.learning_rate",
        f"{prefix}.Striker.hyperparameters.batch_size",
        f"{prefix}.Goalie.hyperparameters.learning_rate",
        f"{prefix}.Goalie.hyperparameters.batch_size",
    ]
    assert len(grid) == 81
    assert [tuple(c.values()) for c in grid[:4]] == [(1e-4, 64, 1e-4, 64), (1e-4, 64, 1e-4, 128), (1e-4, 64, 1e-4, 256), (1e-4, 64, 3e-4, 64)]
    config, _ = loaded.space.fill(grid[5])
    assert config["config"]["default_settings"] == {"trainer_type": "ppo", "max_steps": 1000}
    assert config["config"]["behaviors"]["Goalie"] == {
        "network_settings": {"hidden_units": 64},
        "hyperparameters": {"learning_rate": 3e-4, "batch_size": 256},
    }
    # the stored sweep needs no template file and loads to the same space
    template.unlink()
    assert load_sweep(loaded.to_dict(secrets=True)).space.hash() == loaded.space.hash()


def test_a_behavior_setting_its_own_value_is_not_searched_for_it(tmp_path: Path) -> None:
    data = {**TWO_BEHAVIORS, "behaviors": {"Striker": {"hyperparameters": {"batch_size": 32}}, "Goalie": None}}
    template = tmp_path / "c.yaml"
    template.write_text(yaml.safe_dump(data))
    assert len(load_sweep(sweep_for(template)).space.grid()) == 3 * 9


def test_opt_stop_becomes_a_gate(tmp_path: Path) -> None:
    data = {"behaviors": {"3DBall": {"max_steps": 500, "opt_stop": {"tag": "Environment/Cumulative Reward", "step": 3000, "min": 5},
                                     "hyperparameters": {"learning_rate": {"opt_values": [1e-4, 1e-3]}}}}}  # fmt: skip
    template = tmp_path / "c.yaml"
    template.write_text(yaml.safe_dump(data))
    sweep = load_sweep(sweep_for(template, metrics={"tensorboard": "tb", "tags": {}})).sweep
    assert [g.model_dump(exclude_none=True, by_alias=True) for g in sweep.stop] == [
        {"metric": "Environment/Cumulative Reward", "after": 3000, "min": 5.0}
    ]
    assert "opt_stop" not in sweep.trainer["config"]["behaviors"]["3DBall"]
    # with renamed tags the gate watches the rlsweep name
    sweep = load_sweep(sweep_for(template)).sweep
    assert sweep.stop[0].metric == "eval/mean_return"


def test_the_standin_sweep_prunes_runs_below_its_gate(tmp_path: Path) -> None:
    data = load_sweep(ROOT / "examples" / "ml-agents-3dball.yaml").to_dict(secrets=True)
    data["trainer"]["command"][1] = STANDIN
    # 20 summaries of 0.15 s: a gate at the 6th is seen (polls every 0.1 s) long before the program's end
    data["trainer"].update(env={"STANDIN_SECONDS_PER_SUMMARY": "0.15"}, poll=0.1)
    data["params"] = {}
    data.update(storage=f"sqlite:///{tmp_path}/study.db", artifacts=str(tmp_path / "artifacts"))
    trials = run_in_process(data).study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert len(trials) == 6 and TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in trials:
        results = tmp_path / "artifacts" / str(t.number) / "results" / f"ml-agents-3dball-{t.number}"
        assert (results / "3DBall.onnx").is_file()  # saved at the end, or on SIGINT when pruned
        if t.state == TrialState.PRUNED:
            assert t.user_attrs["stopped_by"] == "SIGINT"
            assert t.user_attrs["stop_reason"].startswith("gate: eval/mean_return = ")
            assert max(t.intermediate_values) == 30000
        else:
            assert max(t.intermediate_values) == 100000


@pytest.mark.parametrize("bad", [{"opt_stop": {"tag": "x", "step": 10}}, {"opt_stop": {"tag": "x", "min": 1, "after": 3}}])
def test_bad_opt_stop_is_named(tmp_path: Path, bad: dict[str, Any]) -> None:
    from rlsweep.errors import ConfigError

    template = tmp_path / "c.yaml"
    template.write_text(yaml.safe_dump({"behaviors": {"B": bad}}))
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_for(template), file="s.yaml")
    key = "trainer.config.behaviors.B.opt_stop"
    expected = (
        f"s.yaml: {key}: needs min or max: the threshold a run must pass"
        if "after" not in bad["opt_stop"]
        else f"s.yaml: {key}.after: unknown key 'after'; known: tag, step, min, max"
    )
    assert str(info.value) == expected


def test_a_program_may_write_its_event_files_where_rlsweep_writes_its_own(tmp_path: Path) -> None:
    # rlsweep writes every run's metrics to <run_dir>/tb as well; a program logging there too, with
    # its tags kept under their own names, must not have rlsweep's copies read back as new values
    # (each poll used to re-report every earlier step once more)
    template = tmp_path / "cfg.yaml"
    template.write_text(yaml.safe_dump({"behaviors": {"3DBall": {"max_steps": 5000, "summary_freq": 1000}}}))
    tag = "Environment/Cumulative Reward"
    sweep = sweep_for(
        template,
        command=["{python}", STANDIN, "{config_file}", "--run-id={run_id}", "--results-dir={run_dir}/tb"],
        metrics={"tensorboard": "{run_dir}/tb", "tags": {tag: tag}},
        env={"STANDIN_SECONDS_PER_SUMMARY": "0.3"},
        poll=0.1,
        timesteps=5000,
    )
    sweep.update(objective={"metric": tag}, storage=f"sqlite:///{tmp_path}/study.db", artifacts=str(tmp_path / "artifacts"))
    handle = run_in_process(sweep)
    (trial,) = handle.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1000, 2000, 3000, 4000, 5000]
    rows = [(int(r["step"]), str(r["name"])) for r in handle.metrics([trial.number], None)]
    assert sorted(rows) == [(step, tag) for step in (1000, 2000, 3000, 4000, 5000)]
