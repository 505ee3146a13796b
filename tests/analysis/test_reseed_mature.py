"""Reseed (child study on held-out seeds) and mature (held-out evaluation, cached per episode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rlsweep.cli import main
from rlsweep.study import StudyHandle
from tests.conftest import synthetic_sweep


def test_reseed_trains_top_configs_on_unused_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = synthetic_sweep("par", tmp_path, strategy={"name": "random", "runs": 8, "seeds": 2})
    sweep.pop("storage", None)
    Path("s.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["run", "s.yaml", "--workers", "2", "--quiet"]) == 0
    assert main(["reseed", "par", "--top", "2", "--seeds", "3", "--workers", "2", "--quiet"]) == 0
    url = "sqlite:///runs/par/study.db"
    parent, child = StudyHandle.load("par", url), StudyHandle.load("par-reseed", url)
    assert parent.study.user_attrs["rlsweep:children"] == ["par-reseed"]
    assert child.study.user_attrs["rlsweep:parent"] == "par"
    parent_seeds = {t.user_attrs["seed"] for t in parent.study.trials}
    child_trials = child.study.trials
    assert len(child_trials) == 6
    assert {t.user_attrs["seed"] for t in child_trials} == {2, 3, 4}
    assert not parent_seeds & {t.user_attrs["seed"] for t in child_trials}
    from rlsweep.analysis.ranking import rank

    best_two = [r.config_id for r in rank(parent)[:2]]
    assert sorted({child.config_id(t) for t in child_trials}) == sorted(best_two)
    # the child ranks on its own (new) seeds only, and is found without --storage
    assert main(["top", "par-reseed", "--json"]) == 0


@pytest.mark.slow
def test_mature_evaluates_once_and_gathers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = {
        "study": "m",
        "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 2048, "n_envs": 2},
        "eval": {"every": 2048, "episodes": 2},
        "strategy": {"name": "grid", "seeds": 2},
        "params": {"n_steps": {"choice": [128]}},
    }
    Path("s.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["run", "s.yaml", "--workers", "2", "--quiet"]) == 0
    assert main(["mature", "m", "--threshold", "-1", "--episodes", "3", "--workers", "2"]) == 0
    index = json.loads(Path("runs/m/mature/index.json").read_text())
    assert len(index["mature"]) == 2
    for entry in index["mature"]:
        assert len(entry["returns"]) == 3
        assert entry["score"] == pytest.approx(sum(entry["returns"]) / 3)
        assert Path("runs/m/mature", f"m-run{entry['run']}-model.zip").exists()
    handle = StudyHandle.load("m", "sqlite:///runs/m/study.db")
    stored = handle.metrics(names=["mature/return"])
    assert len(stored) == 6
    capsys.readouterr()
    # another threshold: nothing is evaluated again, the verdict changes
    assert main(["mature", "m", "--threshold", "1e9", "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "evaluating" not in out
    assert "0 of 2 policies mature" in out
    assert len(handle.metrics(names=["mature/return"])) == 6
    assert json.loads(Path("runs/m/mature/index.json").read_text())["mature"] == []
    # held-out evaluation seeds: same policy, same seeds -> same returns when asked with more episodes
    from rlsweep.analysis.mature import episode_seeds

    assert episode_seeds(0, 3) == [1_000_000_000, 1_000_000_001, 1_000_000_002]
