"""End to end on the built-in synthetic trainer: run (2 worker processes), status, top, grid, --index,
export, the study read back by plain Optuna, and a crashing trainer."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from rlsweep.cli import main
from rlsweep.config import load_sweep
from rlsweep.space import is_marker

SEED = 10
# 2 x 2 configurations x 2 seeds = 8 runs. The synthetic curve's peak depends on learning_rate and
# width (best at 1e-3 and 64), and both seeds add the same noise to every configuration, so the
# ranking is known: (1e-3, 64) > (1e-3, 256) > (1e-2, 64) > (1e-2, 256).
SWEEP = """\
study: {name}
seed: 10
trainer: {{kind: function, target: "rlsweep.examples.synthetic:train", timesteps: 1000}}
eval: {{every: 500}}
strategy: {{name: grid, seeds: 2}}
params:
  learning_rate: {{choice: [0.001, 0.01]}}
  width: {{choice: [64, 256]}}
  policy_kwargs: {{net_arch: {{choice: [[64, 64]]}}}}
"""
CONFIGS = [  # grid order: the last parameter varies fastest
    {"learning_rate": 0.001, "width": 64, "policy_kwargs.net_arch": [64, 64]},
    {"learning_rate": 0.001, "width": 256, "policy_kwargs.net_arch": [64, 64]},
    {"learning_rate": 0.01, "width": 64, "policy_kwargs.net_arch": [64, 64]},
    {"learning_rate": 0.01, "width": 256, "policy_kwargs.net_arch": [64, 64]},
]


@dataclass
class Finished:
    dir: Path
    name: str
    code: int
    out: str

    @property
    def url(self) -> str:
        return f"sqlite:///{self.dir}/runs/{self.name}/study.db"


def unique(prefix: str) -> str:
    # One name per study: rlsweep caches an engine per (relative) storage URL in the process.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """One sweep run through the real CLI with 2 worker processes; the tests below only read it."""
    directory = tmp_path_factory.mktemp("e2e")
    name = unique("e2e")
    (directory / "sweep.yaml").write_text(SWEEP.format(name=name))
    out = io.StringIO()
    with cwd(directory), contextlib.redirect_stdout(out):
        code = main(["run", "sweep.yaml", "--workers", "2", "--quiet"])
    return Finished(directory, name, code, out.getvalue())


@pytest.fixture
def study(finished: Finished, monkeypatch: pytest.MonkeyPatch) -> Finished:
    monkeypatch.chdir(finished.dir)
    monkeypatch.delenv("RLSWEEP_STORAGE", raising=False)
    return finished


def load(f: Finished) -> optuna.Study:
    return optuna.load_study(study_name=f.name, storage=f.url)


# ---------------------------------------------------------------- run


def test_run_finishes_every_run_with_two_workers(study: Finished) -> None:
    assert study.code == 0, study.out
    assert (
        f"study '{study.name}' in sqlite:///runs/{study.name}/study.db: 8 waiting; starting 2 worker(s)"
        in study.out
    )
    assert "finished: 8/8 finished (done 8, pruned 0, failed 0)" in study.out


def test_plain_optuna_reads_the_study(study: Finished) -> None:
    s = load(study)
    assert s.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = s.get_trials()
    assert len(trials) == 8
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Every (configuration, seed) ran once; list choices are stored JSON-encoded.
    seen = sorted(
        (
            t.params["learning_rate"],
            t.params["width"],
            t.params["policy_kwargs.net_arch"],
            t.user_attrs["seed"],
        )
        for t in trials
    )
    assert seen == sorted(
        (c["learning_rate"], c["width"], "[64, 64]", SEED + s_) for c in CONFIGS for s_ in (0, 1)
    )
    assert sorted(t.user_attrs["key"] for t in trials) == sorted(f"grid:{i}" for i in range(8))
    for t in trials:
        assert sorted(t.intermediate_values) == [500, 1000]  # the learning curve
        assert t.value == t.intermediate_values[1000]  # objective reduce: last
    assert s.best_trial.params["learning_rate"] == 0.001 and s.best_trial.params["width"] == 64
    assert len(s.trials_dataframe()) == 8


# ---------------------------------------------------------------- status, top


def test_status(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", study.name]) == 0
    out = capsys.readouterr().out
    assert f"{study.name} in sqlite:///runs/{study.name}/study.db" in out
    assert "strategy grid, trainer function, objective eval/mean_return (max)" in out
    assert "runs: waiting 0, running 0, done 8, pruned 0, failed 0, lost 0, interrupted 0" in out
    best = load(study).best_trial
    assert f"best: {best.value:.4g} (run {best.number}, learning_rate=0.001, width=64" in " ".join(
        out.split()
    )
    assert "workers alive: 0" in out


def test_top_table(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", study.name, "-n", "3"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "config" in line and "seeds" in line)
    assert [c.strip() for c in header.strip("┃").split("┃")] == [
        "#",
        "config",
        "seeds",
        "mean",
        "std",
        "IQM",
        "95% CI",
        "pruned",
        "values",
    ]
    rows = [line for line in out.splitlines() if re.match(r"^│ \d ", line)]
    assert len(rows) == 3
    # Piped (as here), the table fits 100 columns: the values column holds one value per line.
    lines = out.splitlines()
    start = lines.index(rows[0])
    block = [lines[start]] + list(itertools.takewhile(lambda line: re.match(r"^│\s+│", line), lines[start + 1 :]))
    values = "".join(line.rstrip().rstrip("│").split("│")[-1].strip() for line in block)
    assert values == "learning_rate=0.001width=64policy_kwargs.net_arch=[64, 64]"
    assert "95% CI of the mean over seeds" in " ".join(out.split())
    assert max(len(line) for line in lines) <= 100


def top_json(study: Finished, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["top", study.name, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_top_json_is_sorted_best_first_by_mean(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    ranked = top_json(study, capsys, "-n", "3")
    assert [r["rank"] for r in ranked] == [1, 2, 3]
    assert [r["values"] for r in ranked] == CONFIGS[:3]
    means = [r["mean"] for r in ranked]
    assert means == sorted(means, reverse=True)
    # The statistics are those of the two seeds' final values, as plain Optuna sees them.
    by_config: dict[tuple[float, int], list[float]] = {}
    for t in load(study).trials:
        by_config.setdefault((t.params["learning_rate"], t.params["width"]), []).append(t.value)
    for r in ranked:
        values = sorted(by_config[(r["values"]["learning_rate"], r["values"]["width"])])
        assert r["n"] == 2 and len(r["runs"]) == 2 and sorted(r["seeds"]) == [SEED, SEED + 1]
        assert r["mean"] == pytest.approx(sum(values) / 2)
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
        assert values[0] - 1e-9 <= r["iqm"] <= values[1] + 1e-9
    assert len(top_json(study, capsys)) == 4  # default -n 10: every configuration


def test_top_export_writes_ready_to_run_sweep_files(
    study: Finished, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = study.dir / f"best-{uuid.uuid4().hex[:6]}"
    assert main(["top", study.name, "-n", "2", "--export", str(out_dir)]) == 0
    files = sorted(out_dir.glob("*.yaml"))
    assert [f.name for f in files] == [f"{study.name}-best1.yaml", f"{study.name}-best2.yaml"]
    for i, file in enumerate(files):
        data = yaml.safe_load(file.read_text())

        def markers(tree: Any) -> int:
            if is_marker(tree):
                return 1
            if isinstance(tree, dict):
                return sum(markers(v) for v in tree.values())
            return sum(markers(v) for v in tree) if isinstance(tree, list) else 0

        assert markers(data) == 0
        loaded = load_sweep(file)
        assert loaded.space.params == []
        assert loaded.sweep.study == f"{study.name}-best{i + 1}"
        assert loaded.sweep.params == {
            "learning_rate": CONFIGS[i]["learning_rate"],
            "width": CONFIGS[i]["width"],
            "policy_kwargs": {"net_arch": [64, 64]},
        }
        assert loaded.sweep.trainer["target"] == "rlsweep.examples.synthetic:train"
    # An exported file runs as it is (in a fresh folder: its own study, its own storage).
    run_dir = study.dir / f"rerun-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    name = f"{study.name}-best1"
    capsys.readouterr()
    assert main(["grid", str(files[0]), "--format", "json"]) == 0
    assert [(r["config"], r["seed"]) for r in json.loads(capsys.readouterr().out)] == [
        (0, SEED),
        (0, SEED + 1),
    ]
    assert main(["run", str(files[0]), "--index", "0"]) == 0
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///runs/{name}/study.db").trials
    assert len(trials) == 1 and trials[0].state == TrialState.COMPLETE
    assert trials[0].params == {}  # nothing searched any more
    assert trials[0].user_attrs["seed"] == SEED


# ---------------------------------------------------------------- grid


def test_grid_table_lists_every_run(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "sweep.yaml"]) == 0
    out = capsys.readouterr().out
    assert "4 configurations x 2 seeds = 8 runs" in " ".join(out.split())
    rows = [line for line in out.splitlines() if re.match(r"^│ \d+ +│", line)]
    assert len(rows) == 8


def test_grid_json_maps_index_to_configuration_and_seed(
    study: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grid", "sweep.yaml", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8
    for i, row in enumerate(rows):
        assert row["index"] == i
        assert row["config"] == i % 4
        assert row["seed"] == SEED + i // 4
        assert {k: row[k] for k in CONFIGS[0]} == CONFIGS[i % 4]


def test_grid_csv(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "sweep.yaml", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 8
    assert rows[5] == {
        "index": "5",
        "config": "1",
        "seed": "11",
        "learning_rate": "0.001",
        "width": "256",
        "policy_kwargs.net_arch": "[64, 64]",
    }


def test_run_index_runs_exactly_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    name = unique("idx")
    Path("sweep.yaml").write_text(SWEEP.format(name=name))
    url = f"sqlite:///runs/{name}/study.db"

    assert main(["run", "sweep.yaml", "--index", "3"]) == 0
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert len(trials) == 1
    t = trials[0]
    assert t.state == TrialState.COMPLETE
    assert t.params == {"learning_rate": 0.01, "width": 256, "policy_kwargs.net_arch": "[64, 64]"}
    assert t.user_attrs["seed"] == SEED and t.user_attrs["key"] == "grid:3"

    capsys.readouterr()
    assert main(["run", "sweep.yaml", "--index", "3"]) == 0  # re-running a finished index does nothing
    assert "index 3 already finished as run 0 (done); not re-running it" in capsys.readouterr().out
    assert len(optuna.load_study(study_name=name, storage=url).trials) == 1

    assert main(["run", "sweep.yaml", "--index", "6"]) == 0  # configuration 2, seed number 1
    t6 = optuna.load_study(study_name=name, storage=url).trials[1]
    assert t6.params == {"learning_rate": 0.01, "width": 64, "policy_kwargs.net_arch": "[64, 64]"}
    assert t6.user_attrs["seed"] == SEED + 1 and t6.user_attrs["key"] == "grid:6"
    assert t6.state == TrialState.COMPLETE


# ---------------------------------------------------------------- export


def test_export_csv(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = study.dir / f"csv-{uuid.uuid4().hex[:6]}"
    assert main(["export", study.name, "--format", "csv", "--out", str(out_dir)]) == 0
    assert capsys.readouterr().out.split() == [
        "wrote",
        str(out_dir / "runs.csv"),
        "wrote",
        str(out_dir / "curves.csv"),
        "wrote",
        str(out_dir / "ranking.csv"),
    ]
    with (out_dir / "ranking.csv").open() as fh:
        ranking = list(csv.DictReader(fh))
    assert [int(r["rank"]) for r in ranking] == [1, 2, 3, 4]  # the order `top` prints
    assert [(float(r["param:learning_rate"]), int(r["param:width"])) for r in ranking] == [
        (c["learning_rate"], c["width"]) for c in CONFIGS
    ]
    with (out_dir / "runs.csv").open() as fh:
        runs = list(csv.DictReader(fh))
    assert len(runs) == 8
    assert {r["state"] for r in runs} == {"complete"}
    assert sorted(int(r["seed"]) for r in runs) == [SEED] * 4 + [SEED + 1] * 4
    assert {r["param:policy_kwargs.net_arch"] for r in runs} == {"[64, 64]"}
    assert {(float(r["param:learning_rate"]), int(r["param:width"])) for r in runs} == {
        (c["learning_rate"], c["width"]) for c in CONFIGS
    }
    with (out_dir / "curves.csv").open() as fh:
        curves = list(csv.DictReader(fh))
    returns = [c for c in curves if c["name"] == "eval/mean_return"]
    assert len(returns) == 8 * 2  # two evaluations per run
    assert {c["name"] for c in curves} == {"eval/mean_return", "train/loss"}
    values = {int(r["number"]): float(r["value"]) for r in runs}
    last = {int(c["trial_number"]): float(c["value"]) for c in returns if c["step"] == "1000"}
    assert last == pytest.approx(values)


def test_export_json(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = study.dir / f"json-{uuid.uuid4().hex[:6]}"
    assert main(["export", study.name, "--format", "json", "--out", str(out_dir)]) == 0
    doc = json.loads((out_dir / f"{study.name}.json").read_text())
    assert doc["study"] == study.name
    assert load_sweep(doc["sweep"]).sweep.study == study.name  # the sweep re-loads as it is
    assert len(doc["runs"]) == 8
    for run in doc["runs"]:
        curve = run["curves"]["eval/mean_return"]
        assert [step for step, _ in curve] == [500, 1000]
        assert curve[-1][1] == pytest.approx(run["value"])
        assert run["params"]["policy_kwargs.net_arch"] == [64, 64]  # decoded, not the JSON string


def test_default_export_folder(study: Finished, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", study.name]) == 0
    assert (study.dir / "runs" / study.name / "export" / "runs.csv").exists()


# ---------------------------------------------------------------- failures


def test_crashing_trainer_fails_the_run_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    name = unique("crash")
    sweep = {
        "study": name,
        "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:crash", "timesteps": 1000},
        "eval": {"every": 500},
        "strategy": {"name": "random", "runs": 1},
        "params": {"learning_rate": {"loguniform": [1e-4, 1e-2]}},
    }
    Path("crash.yaml").write_text(json.dumps(sweep))
    assert main(["run", "crash.yaml", "--workers", "1", "--quiet"]) == 1
    assert "failed 1" in capsys.readouterr().out
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///runs/{name}/study.db").trials
    assert len(trials) == 1
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["failure_reason"].startswith("error: RuntimeError")
    assert trials[0].user_attrs["failure_reason"] == "error: RuntimeError: this trainer always crashes"
    # Nothing is left to run; a second `run` says so and still reports the failure.
    assert main(["run", "crash.yaml", "--workers", "1", "--quiet"]) == 1
    assert "nothing left to run" in capsys.readouterr().out


def test_quick_start_without_a_sweep_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rlsweep run --algo ppo --env CartPole-v1 --runs N --timesteps T`: a study named after the env
    and algorithm, searching PPO's default space with real SB3 runs."""
    pytest.importorskip("stable_baselines3")
    from rlsweep.trainers.sb3.spaces import default_space

    monkeypatch.chdir(tmp_path)
    code = main(["run", "--algo", "ppo", "--env", "CartPole-v1", "--runs", "2", "--timesteps", "1000",
                 "--workers", "2", "--quiet"])  # fmt: skip
    assert code == 0
    loaded = optuna.load_study(study_name="cartpole-v1-ppo", storage="sqlite:///runs/cartpole-v1-ppo/study.db")
    trials = loaded.get_trials(states=[TrialState.COMPLETE])
    assert len(trials) == 2
    space = default_space("ppo")
    nested = {f"policy_kwargs.{k}" for k in space.get("policy_kwargs", {})}
    assert set(trials[0].params) == (set(space) - {"policy_kwargs"}) | nested
    assert all(Path(t.user_attrs["model"]).exists() for t in trials)
