"""The CleanRL-style script (examples/cleanrl_ppo.py) through the command trainer: it learns
CartPole-v1 at a small budget, and PBT works through its command line (an exploited member's
program is handed its donor's checkpoint file and continues it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from tests.conftest import run_in_process

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cleanrl-ppo-command.yaml"


def from_example(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """The example's sweep with the script's path made absolute and small-budget changes."""
    data = load_sweep(EXAMPLE).to_dict(secrets=True)
    trainer = data["trainer"]
    trainer["command"] = [str(ROOT / c) if c == "examples/cleanrl_ppo.py" else c for c in trainer["command"]]
    trainer["command"] = [c.replace("--num-envs=4", "--num-envs=2") if isinstance(c, str) else c for c in trainer["command"]]
    trainer["command"].insert(-1, "--num-steps=64")
    data.update(storage=f"sqlite:///{tmp_path}/study.db", artifacts=str(tmp_path / "artifacts"), **changes)
    return data


@pytest.mark.slow
def test_the_script_learns_cartpole(tmp_path: Path) -> None:
    data = from_example(tmp_path, strategy={"name": "grid"}, eval={"every": 2048})
    data["trainer"]["timesteps"] = 12288
    data["params"] = {"learning_rate": 2.5e-3, "ent_coef": 0.01}
    (t,) = run_in_process(data).study.get_trials(deepcopy=False)
    assert t.state == TrialState.COMPLETE, t.user_attrs
    curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
    assert max(t.intermediate_values) == 12288
    assert curve[0] < 40 and max(curve[-3:]) > 120, curve  # a random policy scores about 22
    assert Path(t.user_attrs["checkpoint"]).is_file()


@pytest.mark.slow
def test_pbt_members_start_from_their_donors_checkpoint(tmp_path: Path) -> None:
    import torch

    interval, generations = 512, 2  # 4 updates of 2 envs x 64 steps per generation
    data = from_example(
        tmp_path,
        strategy={"name": "pbt", "population": 2, "interval": interval, "synchronous": True, "selection": "winner_takes_all"},
        eval={"every": 128},
    )
    data["trainer"]["timesteps"] = interval * generations
    data["objective"]["reduce"] = "last"
    trials = run_in_process(data).study.get_trials(deepcopy=False)
    assert all(t.state is TrialState.COMPLETE for t in trials), [t.user_attrs.get("failure_reason") for t in trials]
    assert len(trials) == 2 * generations
    by_number = {t.number: t for t in trials}
    exploits = 0
    for t in trials:
        if int(t.user_attrs["generation"]) == 0:
            assert "--load-path" not in t.user_attrs["command"]
            continue
        parent = by_number[int(t.user_attrs["parent"])]
        start = t.user_attrs["start_checkpoint"]
        assert start == parent.user_attrs["checkpoint"]
        assert int(parent.user_attrs["member"]) == int(t.user_attrs.get("donor", t.user_attrs["member"]))
        exploits += "donor" in t.user_attrs
        command = t.user_attrs["command"]
        assert command[command.index("--load-path") + 1] == start
        # the program continued that checkpoint: its step count goes on from the parent's
        saved = torch.load(t.user_attrs["checkpoint"], weights_only=True)
        assert saved["global_step"] == torch.load(start, weights_only=True)["global_step"] + interval
        assert min(t.intermediate_values) == int(t.user_attrs["start_step"]) + 128
    assert exploits >= 1
