"""The strategy registry: one table validates each strategy's settings and builds the strategy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlsweep.cli import main
from rlsweep.config import load_sweep
from rlsweep.strategies import REGISTRY, STRATEGIES, make_strategy, strategies_taking
from tests.conftest import synthetic_sweep

ALL = ["grid", "random", "tpe", "cmaes", "gp", "qmc", "pbt", "pb2", "pb2_mixed", "list"]


def test_registry_names_every_strategy() -> None:
    assert list(STRATEGIES) == ALL


@pytest.mark.parametrize("name", ALL)
def test_registry_builds_the_strategy_that_reads_its_settings(name: str, tmp_path: Path) -> None:
    strategy = {"name": name}
    if name in ("pbt", "pb2", "pb2_mixed"):
        strategy["interval"] = 250  # type: ignore[assignment]
    if name == "list":
        strategy["configs"] = [{"learning_rate": 1e-3, "gamma": 0.95}]  # type: ignore[assignment]
    params = {"learning_rate": {"choice": [1e-3, 1e-2]}, "gamma": {"uniform": [0.9, 0.99], "step": 0.045}}
    loaded = load_sweep(synthetic_sweep("r", tmp_path, strategy=strategy, params=params))
    built = make_strategy(loaded)
    entry = REGISTRY[name]
    assert type(built) is entry.strategy_class()
    assert built.settings_model is entry.settings
    assert type(loaded.sweep.strategy) is entry.settings
    assert built.initial_runs()  # it reads its own settings without error


def test_strategies_taking() -> None:
    assert strategies_taking("fraction") == ["pbt", "pb2", "pb2_mixed"]
    assert strategies_taking("seeds") == ALL
    assert strategies_taking("nothing") == []


def test_a_key_of_another_strategy_exits_2_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(yaml.safe_dump(synthetic_sweep("s", tmp_path, strategy={"name": "tpe", "fraction": 0.3})))
    assert main(["run", "s.yaml", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "s.yaml: strategy.fraction: 'fraction' is a setting of pbt, pb2, pb2_mixed, not of tpe" in err
    assert not Path("runs").exists() or not list(Path("runs").rglob("study.db"))  # nothing started
