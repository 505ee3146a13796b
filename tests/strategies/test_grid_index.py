"""Grid indices as in policy-params: every index i >= 0 is configuration i mod N with seed number
i div N (whether or not `seeds` covers it), and `strategy.runs` on a grid is the number of indices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlsweep.cli import main
from rlsweep.config import load_sweep
from rlsweep.strategies.grid import GridStrategy

TRAINER = {"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 400}


def sweep(tmp_path: Path, **strategy: Any) -> dict[str, Any]:
    return {
        "study": "gi",
        "trainer": TRAINER,
        "eval": {"every": 200},
        "strategy": {"name": "grid", **strategy},
        "params": {"learning_rate": {"grid": [1e-3, 1e-2]}, "gamma": {"grid": [0.9, 0.99]}},  # N = 4
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
    }


def test_runs_on_a_grid_is_the_number_of_indices(tmp_path: Path) -> None:
    strategy = GridStrategy(load_sweep(sweep(tmp_path, runs=10)))
    specs = strategy.initial_runs()
    assert [(s.attrs["_config_index"], s.seed_number) for s in specs] == [(i % 4, i // 4) for i in range(10)]
    assert GridStrategy(load_sweep(sweep(tmp_path, runs=3, seeds=2))).total() == 3
    assert GridStrategy(load_sweep(sweep(tmp_path, seeds=2))).total() == 8


def test_an_index_beyond_the_seeds_runs_its_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.json").write_text(json.dumps(sweep(tmp_path)))  # seeds: 1, yet index 9 is config 1, seed number 2
    assert main(["run", "g.json", "--index", "9"]) == 0
    import optuna

    (trial,) = optuna.load_study(study_name="gi", storage=f"sqlite:///{tmp_path}/study.db").trials
    assert trial.user_attrs["seed"] == 2 and trial.user_attrs["key"] == "grid:9"
    assert (trial.params["learning_rate"], trial.params["gamma"]) == (1e-3, 0.99)
