"""The Python API, called directly: Sweep (file or code, same validation and space), run, load,
Study's tables against what the CLI prints, child studies, a decorated function as the trainer."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

import rlsweep
from rlsweep.cli import main

SYNTHETIC = {"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 400}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def every_marker_sweep(study: str) -> dict[str, Any]:
    """A sweep using each marker kind, once written with the API's functions and once as plain YAML."""
    return {
        "study": study,
        "trainer": {**SYNTHETIC, "speed": rlsweep.uniform(2.0, 4.0), "n": rlsweep.integer(1, 3, step=1)},
        "eval": {"every": 100},
        "strategy": {"name": "random", "runs": 6},
        "params": {
            "learning_rate": rlsweep.loguniform(1e-4, 1e-2),
            "width": rlsweep.choice(32, 64),
            "gamma": rlsweep.grid([0.98, 0.99]),
            "batch": rlsweep.logint(16, 256),
            "epochs": rlsweep.opt_values(3, 5),
            "clip": rlsweep.uniform(0.1, 0.3, step=0.1),
            "net": rlsweep.choice([[64, 64], [32, 32]]),
            "layers": rlsweep.int_(1, 2),
        },
    }


YAML_TWIN = """\
study: twin
trainer: {kind: function, target: "rlsweep.examples.synthetic:train", timesteps: 400,
          speed: {uniform: [2.0, 4.0]}, n: {int: [1, 3], step: 1}}
eval: {every: 100}
strategy: {name: random, runs: 6}
params:
  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
  width: {choice: [32, 64]}
  gamma: {grid: [0.98, 0.99]}
  batch: {logint: [16, 256]}
  epochs: {opt_values: [3, 5]}
  clip: {uniform: [0.1, 0.3], step: 0.1}
  net: {choice: [[64, 64], [32, 32]]}
  layers: {int: [1, 2]}
"""


def test_markers_build_the_sweep_files_markers() -> None:
    assert rlsweep.choice(1, 2) == {"choice": [1, 2]} == rlsweep.choice([1, 2])
    assert rlsweep.choice([[64, 64]]) == {"choice": [[64, 64]]}
    assert rlsweep.loguniform(1e-5, 1e-2) == {"loguniform": [1e-5, 1e-2]}
    assert rlsweep.integer(1, 9, step=2) == {"int": [1, 9], "step": 2}
    assert rlsweep.int_ is rlsweep.integer
    assert rlsweep.logint(8, 64) == {"logint": [8, 64]}
    assert rlsweep.grid(1, 2) == {"grid": [1, 2]}
    assert rlsweep.opt_values(1, 2) == {"opt_values": [1, 2]}


def test_sweep_in_code_equals_the_same_sweep_as_yaml(in_tmp: Path) -> None:
    (in_tmp / "twin.yaml").write_text(YAML_TWIN)
    in_code = rlsweep.Sweep(**every_marker_sweep("twin"))
    from_file = rlsweep.Sweep.from_file(in_tmp / "twin.yaml")
    assert in_code.space_hash() == from_file.space_hash()
    assert in_code.to_dict() == from_file.to_dict()
    assert len(in_code.loaded.space.names) == 10


def test_sweep_in_code_is_validated_like_a_file() -> None:
    with pytest.raises(rlsweep.ConfigError) as err:
        rlsweep.Sweep(study="bad", trainer=SYNTHETIC, params={"learning_rate": rlsweep.loguniform(0, 0.1)})
    assert str(err.value) == "<Python>: params.learning_rate: loguniform needs 0 < low < high (log scale), got [0, 0.1]"
    assert err.value.exit_code == 2
    with pytest.raises(rlsweep.ConfigError, match="strategy.runz"):
        rlsweep.Sweep(study="bad", trainer=SYNTHETIC, strategy={"runz": 3})


def test_run_load_and_tables_agree_with_the_cli(in_tmp: Path) -> None:
    sweep = rlsweep.Sweep(
        study="api-grid",
        trainer=SYNTHETIC,
        eval={"every": 100},
        strategy={"name": "grid", "seeds": 2},
        params={"learning_rate": rlsweep.choice(1e-3, 1e-2), "width": rlsweep.choice(64, 256)},
    )
    out = io.StringIO()
    with redirect_stdout(out):
        study = rlsweep.run(sweep, workers=2)
    assert out.getvalue() == ""  # the API prints nothing unless asked
    assert study.result is not None and study.result.code == 0
    assert study.counts() == {"done": 8}
    assert (in_tmp / "runs" / "api-grid" / "study.db").exists()  # the CLI's default storage

    loaded = rlsweep.load("api-grid")
    top = loaded.top(10)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["top", "api-grid", "--json"]) == 0
    printed = json.loads(buf.getvalue())
    assert list(top["config_id"]) == [r["config_id"] for r in printed]
    for (_, row), cli in zip(top.iterrows(), printed, strict=True):
        assert row["seeds"] == cli["n"] and row["mean"] == pytest.approx(cli["mean"])
        assert row["ci_low"] == pytest.approx(cli["ci_low"]) and row["iqm"] == pytest.approx(cli["iqm"])
        assert {k: row[k] for k in cli["values"]} == cli["values"]
    # The synthetic curve peaks at learning_rate 1e-3, width 64.
    assert (top.iloc[0]["learning_rate"], top.iloc[0]["width"]) == (1e-3, 64)

    runs = loaded.runs()
    assert len(runs) == 8 and set(runs["state"]) == {"complete"} and set(runs["seed"]) == {0, 1}
    curves = loaded.curves("eval/mean_return")
    assert list(curves.columns) == ["run", "config_id", "seed", "step", "value"]
    assert len(curves) == 8 * 4 and sorted(set(curves["step"])) == [100, 200, 300, 400]
    assert "api-grid" in loaded._repr_html_() and "<table" in loaded._repr_html_()

    paths = loaded.export("json")
    assert all(Path(p).exists() for p in paths)

    child = loaded.reseed(top=2, seeds=2, workers=2)
    assert child.name == "api-grid-reseed" and child.counts() == {"done": 4}
    assert set(child.runs()["seed"]) == {2, 3}  # held-out seeds: the parent used 0 and 1
    assert list(child.top()["config_id"])[:1] != [] and set(child.top()["config_id"]) <= set(top["config_id"][:2])
    assert Path(child.report()).exists()


@rlsweep.trainer
def quadratic(run: rlsweep.RunContext) -> None:
    """A trainer written in the test: the objective is highest at x = 0.3."""
    x = float(run.params["x"])
    for step in range(run.eval_every, run.budget + 1, run.eval_every):
        if run.report(step, {"score": -((x - 0.3) ** 2) * step}).should_stop:
            break


def test_a_decorated_function_is_a_trainer(in_tmp: Path) -> None:
    sweep = rlsweep.Sweep(
        study="api-fn",
        trainer={"target": quadratic, "timesteps": 30},
        eval={"every": 10},
        objective={"metric": "score", "mode": "max"},
        strategy={"name": "grid"},
        params={"x": rlsweep.choice(0.0, 0.3, 0.9)},
    )
    assert sweep.settings.trainer["target"] == f"{__name__}:quadratic"
    study = rlsweep.run(sweep, workers=2)
    assert study.counts() == {"done": 3}
    assert study.top(1).iloc[0]["x"] == 0.3


def test_a_trainer_function_is_found_by_fresh_worker_interpreters(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has imported JAX starts its workers as fresh interpreters (no fork); they find
    the trainer's module where this process found it (here: the test suite's root, not the cwd)."""
    pytest.importorskip("jax")
    from rlsweep.launchers import local

    forked: list[int] = []
    monkeypatch.setattr(local, "_fork_worker", lambda *a: forked.append(1))
    sweep = rlsweep.Sweep(
        study="api-fresh", trainer={"target": quadratic, "timesteps": 30}, eval={"every": 10},
        objective={"metric": "score", "mode": "max"}, strategy={"name": "grid"}, params={"x": rlsweep.choice(0.0, 0.3)},
    )  # fmt: skip
    study = rlsweep.run(sweep, workers=2)
    assert not forked
    assert study.counts() == {"done": 2}, (in_tmp / "runs/api-fresh/logs/worker-0.log").read_text()


def test_index_runs_one_grid_run_in_this_process(in_tmp: Path) -> None:
    sweep = rlsweep.Sweep(
        study="api-index", trainer=SYNTHETIC, eval={"every": 200}, strategy={"name": "grid", "seeds": 2},
        params={"width": rlsweep.choice(64, 256)},
    )  # fmt: skip
    study = rlsweep.run(sweep, index=3)
    runs = study.runs()
    assert len(runs) == 1 and runs.iloc[0]["seed"] == 1 and runs.iloc[0]["width"] == 256
    assert study.result is not None and study.result.code == 0


def test_load_names_the_closest_study(in_tmp: Path) -> None:
    rlsweep.run(rlsweep.Sweep(study="api-near", trainer=SYNTHETIC, eval={"every": 200}, strategy={"name": "grid"}), workers=1)
    with pytest.raises(rlsweep.StorageError, match="did you mean 'api-near'"):
        rlsweep.load("api-neer", storage=f"sqlite:///{os.getcwd()}/runs/api-near/study.db")


def test_help_of_run_shows_a_runnable_example() -> None:
    doc = rlsweep.run.__doc__ or ""
    code = "\n".join(line.strip()[4:] for line in doc.splitlines() if line.strip().startswith((">>> ", "... ")))
    code = code.replace("# doctest: +SKIP", "")
    assert "rlsweep.run(sweep" in code
    namespace: dict[str, Any] = {}
    exec(compile(code, "<help(rlsweep.run)>", "exec"), namespace)  # runs the example as written
    assert namespace["study"].counts() == {"done": 12}


def test_sweep_yaml_round_trip(in_tmp: Path) -> None:
    sweep = rlsweep.Sweep(**every_marker_sweep("rt"))
    (in_tmp / "rt.yaml").write_text(yaml.safe_dump(sweep.to_dict(), sort_keys=False))
    assert rlsweep.Sweep.from_file(in_tmp / "rt.yaml").space_hash() == sweep.space_hash()
