"""CLI exit codes in-process: bad input exits 2 with one line naming file, key and fix, and leaves no
run behind; an existing study with another search space needs --new or --force."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest

from rlsweep.cli import main
from rlsweep.config import PRUNERS, STRATEGIES
from rlsweep.trainers import TRAINERS

TRAINER = {"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 1000}
GRID = {
    "study": "g",
    "trainer": TRAINER,
    "eval": {"every": 500},
    "strategy": {"name": "grid", "seeds": 2},
    "params": {"learning_rate": {"choice": [0.001, 0.01]}, "width": {"int": [64, 65]}},
}


@pytest.fixture
def name() -> str:
    # A fresh study name per test: rlsweep caches one engine per storage URL in the process, and the
    # default URL is relative (see test_same_relative_url_in_another_directory).
    return f"g-{uuid.uuid4().hex[:8]}"


def grid(name: str, **params: Any) -> dict[str, Any]:
    return {**GRID, "study": name, "params": {**GRID["params"], **params}}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLSWEEP_STORAGE", raising=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def write(name: str, data: dict[str, Any] | str) -> str:
    Path(name).write_text(data if isinstance(data, str) else json.dumps(data))
    return name


def exit_code(argv: list[str]) -> int:
    """main's return value, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def n_trials(study: str) -> int:
    path = Path(f"runs/{study}/study.db")
    if not path.exists():
        return 0
    return len(optuna.load_study(study_name=study, storage=f"sqlite:///{path}").trials)


def assert_no_run_created() -> None:
    """No study file at all, or only studies without trials."""
    for db in Path("runs").glob("*/study.db") if Path("runs").exists() else []:
        storage = f"sqlite:///{db}"
        for name in optuna.get_all_study_names(storage):
            assert optuna.load_study(study_name=name, storage=storage).trials == [], (
                f"{name} in {db} has trials"
            )


def sweep(**sections: Any) -> dict[str, Any]:
    return {"study": "bad", "trainer": dict(TRAINER), "eval": {"every": 500}, **sections}


BAD_FILES = [
    pytest.param(
        sweep(strategy={"nmae": "tpe"}),
        "strategy.nmae: unknown key 'nmae' (did you mean 'name'?)",
        id="unknown-key",
    ),
    pytest.param(
        sweep(params={"lr": {"uniform": [1, 0.5]}}),
        "params.lr: uniform needs low < high, got [1, 0.5]",
        id="low>=high",
    ),
    pytest.param(
        sweep(params={"lr": {"loguniform": [0, 0.1]}}),
        "params.lr: loguniform needs 0 < low < high (log scale), got [0, 0.1]",
        id="log-low<=0",
    ),
    pytest.param(
        sweep(params={"lr": {"uniform": [0, 1], "step": 0}}),
        "params.lr: step must be a positive number, got 0",
        id="step-0",
    ),
    pytest.param(
        sweep(params={"lr": {"uniform": [0, 1], "step": 0.3}}),
        "params.lr: step 0.3 does not divide the range [0, 1]; choose a step that does",
        id="step-divides",
    ),
    pytest.param(
        sweep(params={"a": {"choice": []}}),
        "params.a: choice needs a non-empty list of values, got []",
        id="empty-choice",
    ),
    pytest.param(
        'study: bad\ntrainer: {kind: function, target: "rlsweep.examples.synthetic:train", timesteps: 1000}\n'
        "params:\n  a: {choice: [!!set {1, 2}]}\n",
        "params.a.choice[0]: {1, 2} (set) is not a JSON value; use numbers, strings, booleans, null, lists and mappings",
        id="non-json-choice",
    ),
    pytest.param(
        sweep(strategy={"name": "tpee"}),
        f"strategy.name: unknown strategy 'tpee' (did you mean 'tpe'?); known: {', '.join(STRATEGIES)}",
        id="unknown-strategy",
    ),
    pytest.param(
        sweep(strategy={"pruner": "medain"}),
        f"strategy.pruner: unknown pruner 'medain' (did you mean 'median'?); known: {', '.join(PRUNERS)}",
        id="unknown-pruner",
    ),
    pytest.param(
        sweep(params={"a": {"choice": [{"uniform": [0, 1]}]}}),
        "params.a: choice values cannot contain markers (a marker inside a marker); list plain values",
        id="marker-in-marker",
    ),
    pytest.param(
        sweep(params={"a": {"uniform": [0, 1], "choice": [1, 2]}}),
        "params.a: one marker per value, got ['uniform', 'choice']; keep one of them",
        id="two-markers",
    ),
    pytest.param(
        {"trainer": TRAINER},
        "study: is required (the study's name; the storage keys everything by it)",
        id="no-study",
    ),
    pytest.param(
        {"study": "bad", "trainer": {"target": "x:y"}},
        f"trainer.kind: needs 'kind' ({', '.join(list(TRAINERS)[:-1])} or {list(TRAINERS)[-1]})",
        id="no-kind",
    ),
    pytest.param(
        {"study": "bad", "trainer": {**TRAINER, "target": "nosuchmodule_xyz:train"}},
        "trainer.target: cannot import module 'nosuchmodule_xyz' (No module named 'nosuchmodule_xyz'); check the name and PYTHONPATH",
        id="bad-target",
    ),
    pytest.param(
        sweep(strategy={"name": "grid"}, params={"lr": {"uniform": [0, 1]}}),
        "params.lr: the grid strategy needs a finite set of values, got the continuous range float [0.0, 1.0]; add 'step' or use 'choice'",
        id="grid-continuous",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES)
def test_bad_sweep_file_exits_2_with_one_line_and_no_run(
    data: dict[str, Any] | str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write("bad.yaml", data)
    assert main(["run", file, "--workers", "1"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0] == f"rlsweep: error: {file}: {message}"
    assert captured.out == ""
    assert not Path("runs/bad/study.db").exists()
    assert_no_run_created()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "study: bad\n  trainer: x\n",
            "not valid YAML at line 2, column 10: mapping values are not allowed here",
        ),
        ("- 1\n", "a sweep file must be a mapping with study, trainer, params …"),
    ],
)
def test_unreadable_sweep_file_exits_2(text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = write("bad.yaml", text)
    assert main(["run", file]) == 2
    assert capsys.readouterr().err == f"rlsweep: error: {file}: {message}\n"
    assert not Path("runs").exists()


def test_missing_sweep_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nope.yaml"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: nope.yaml: file not found; check the path\n"
    assert not Path("runs").exists()


def test_bad_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", GRID)
    assert main(["run", file, "--set", "strategy.seeds=0"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --set strategy.seeds=0: Input should be greater than 0, got 0\n"
    assert not Path("runs").exists()


def test_bad_timesteps_override_names_the_override(capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", GRID)
    assert main(["run", file, "--set", "trainer.timesteps=-100"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: --set trainer.timesteps=-100: needs a positive whole number of steps, got -100\n"
    )
    assert main(["run", file, "--timesteps", "-100"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --timesteps -100: needs a positive whole number of steps, got -100\n"
    assert not Path("runs").exists()


def test_grid_command_with_a_bad_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    file = write("bad.yaml", sweep(params={"lr": {"uniform": [0, 1]}}))
    assert main(["grid", file]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: bad.yaml: params.lr: the grid strategy needs a finite set of values, "
        "got the continuous range float [0.0, 1.0]; add 'step' or use 'choice'\n"
    )


def test_workers_below_one_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", GRID)
    assert main(["run", file, "--workers", "0"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --workers must be at least 1, got 0\n"
    assert not Path("runs").exists()


def test_file_and_quickstart_together_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", GRID)
    assert main(["run", file, "--algo", "ppo", "--env", "CartPole-v1"]) == 2
    assert (
        capsys.readouterr().err
        == "rlsweep: error: g.yaml: give either a sweep file or --algo/--env, not both\n"
    )


def test_run_without_file_or_quickstart_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: give a sweep file, or both --algo and --env\n"


# ---------------------------------------------------------------- an existing study with another space


def test_changed_search_space_needs_new_or_force(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", grid(name))
    assert main(["run", file, "--index", "0"]) == 0
    assert n_trials(name) == 1
    write("g.yaml", grid(name, width={"int": [64, 66]}))
    capsys.readouterr()

    assert main(["run", file, "--index", "1"]) == 2
    assert capsys.readouterr().err == (
        f"rlsweep: error: g.yaml: params: study '{name}' exists in sqlite:///runs/{name}/study.db with a different "
        "search space; use --new to start a fresh study beside it, or --force to continue it with this space\n"
    )
    assert n_trials(name) == 1  # refused before any run

    # Without --index too (the multi-worker path): refused before any worker starts.
    assert main(["run", file, "--workers", "1"]) == 2
    assert "with a different search space" in capsys.readouterr().err
    assert n_trials(name) == 1

    assert main(["run", file, "--index", "2", "--force"]) == 0
    assert n_trials(name) == 2
    # Once forced, the study holds the new space: no flag needed any more.
    assert main(["run", file, "--index", "3"]) == 0
    assert n_trials(name) == 3


def test_force_refuses_a_changed_choice_list(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Optuna keeps one choice list per parameter name in a study: --force cannot change it, and says so.
    file = write("g.yaml", grid(name))
    assert main(["run", file, "--index", "0"]) == 0
    write("g.yaml", grid(name, learning_rate={"choice": [0.001, 0.01, 0.1]}))
    capsys.readouterr()
    assert main(["run", file, "--index", "1", "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rlsweep: error: {file}: params.learning_rate: changed from choice [")
    assert err.rstrip().endswith("use --new for a fresh study")
    assert n_trials(name) == 1


def test_new_starts_a_second_study_beside_the_first(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", grid(name))
    assert main(["run", file, "--index", "0"]) == 0
    write("g.yaml", grid(name, width={"int": [64, 66]}))
    capsys.readouterr()
    assert main(["run", file, "--index", "0", "--new"]) == 0
    assert f"study '{name}' exists; starting '{name}-2'" in capsys.readouterr().out
    assert n_trials(name) == 1  # the first study is untouched
    storages = [f"sqlite:///{db}" for db in Path("runs").glob("*/study.db")]
    holding = [s for s in storages if f"{name}-2" in optuna.get_all_study_names(s)]
    assert len(holding) == 1
    trials = optuna.load_study(study_name=f"{name}-2", storage=holding[0]).trials
    assert len(trials) == 1 and trials[0].params == {"learning_rate": 0.001, "width": 64}
    # The new study is found by its name alone, like any other.
    assert main(["status", f"{name}-2"]) == 0
    assert f"{name}-2" in capsys.readouterr().out
    # --new again: the next free name.
    assert main(["run", file, "--index", "0", "--new"]) == 0
    assert f"study '{name}' exists; starting '{name}-3'" in capsys.readouterr().out


def test_same_relative_url_in_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"same-{uuid.uuid4().hex[:8]}"
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        monkeypatch.chdir(tmp_path / sub)
        file = write("g.yaml", grid(name))
        assert main(["run", file, "--index", "0"]) == 0
        assert n_trials(name) == 1


# ---------------------------------------------------------------- --index


def test_a_negative_index_exits_2(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", grid(name))  # 2 x 2 configurations x 2 seeds = 8 runs
    assert main(["run", file, "--index", "-1"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: --index -1: grid indices start at 0 (index i is configuration i mod 4, seed number i div 4); "
        "see 'rlsweep grid'\n"
    )
    assert_no_run_created()


def test_index_with_a_non_grid_strategy_exits_2(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = write("t.yaml", {**grid(name), "strategy": {"name": "tpe", "runs": 4}})
    assert main(["run", file, "--index", "0"]) == 2
    assert (
        capsys.readouterr().err
        == "rlsweep: error: t.yaml: strategy.name: --index needs the grid strategy, the sweep uses 'tpe'\n"
    )
    assert not Path("runs").exists()


# ---------------------------------------------------------------- commands on studies that do not exist


@pytest.mark.parametrize("command", ["status", "top", "export"])
def test_unknown_study_exits_2(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "nosuchstudy"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: no study 'nosuchstudy' under runs/; known here: none (or give --storage URL)\n"
    )
    assert not Path("runs/nosuchstudy/study.db").exists()


def test_unknown_study_without_storage_suggests_the_closest_local_one(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = write("g.yaml", grid(name))
    assert main(["run", file, "--index", "0"]) == 0
    capsys.readouterr()
    assert main(["status", f"{name}x"]) == 2
    assert capsys.readouterr().err == (
        f"rlsweep: error: no study '{name}x' under runs/ (did you mean '{name}'?); known here: {name} (or give --storage URL)\n"
    )


def test_unknown_study_in_an_existing_storage_suggests_the_closest(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write("g.yaml", grid(name))
    assert main(["run", file, "--index", "0"]) == 0
    capsys.readouterr()
    url = f"sqlite:///runs/{name}/study.db"
    assert main(["status", f"{name}x", "--storage", url]) == 2
    assert (
        capsys.readouterr().err
        == f"rlsweep: error: no study '{name}x' in {url} (did you mean '{name}'?); known: {name}\n"
    )


# ---------------------------------------------------------------- argparse


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["run", "--workers", "many"],
        ["run", "--index", "x"],
        ["top"],
        ["top", "s", "--by", "median"],
        ["export", "s", "--format", "xml"],
        ["grid"],
        ["status", "a", "b"],
        ["run", "--no-such-flag"],
    ],
)
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(argv) == 2
    assert "error:" in capsys.readouterr().err
    assert not Path("runs").exists()


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: rlsweep" in capsys.readouterr().out


def test_unreachable_storage_exits_2_and_leaves_nothing(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Workers start in standby while the study is created; when the storage cannot be reached they
    exit unused and the folders made for their logs are removed again."""
    file = write("s.json", grid(name))
    url = "postgresql+psycopg2://rl:hunter2@127.0.0.1:1/optuna"
    assert exit_code(["run", file, "--storage", url, "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlsweep: error: cannot open storage postgresql+psycopg2://rl:***@127.0.0.1:1/optuna: ")
    assert "Connection refused" in err and "hunter2" not in err
    assert not Path("runs").exists()


def test_new_with_local_workers_trains_the_second_study(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`run --new` looks up the taken names before the workers are forked; the workers then open
    their own connections and train every run of the new study (8 = 4 configurations x 2 seeds)."""
    file = write("g.yaml", grid(name))
    assert main(["run", file, "--workers", "2", "--quiet"]) == 0
    write("g.yaml", grid(name, width={"int": [64, 66]}))
    assert main(["run", file, "--workers", "2", "--quiet", "--new"]) == 0
    assert f"study '{name}' exists; starting '{name}-2'" in capsys.readouterr().out
    storages = [f"sqlite:///{db}" for db in Path("runs").glob("*/study.db")]
    (storage,) = [s for s in storages if f"{name}-2" in optuna.get_all_study_names(s)]
    trials = optuna.load_study(study_name=f"{name}-2", storage=storage).trials
    assert len(trials) == 2 * 3 * 2 and all(t.state.name == "COMPLETE" for t in trials)
    assert n_trials(name) == 2 * 2 * 2  # the first study is untouched


def test_a_missing_optional_package_names_its_extra(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo installs sb3 and samplers only; `rlsweep report` then needs matplotlib."""
    assert main(["run", write("g.yaml", grid(name)), "--index", "0"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["report", name]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "rlsweep: error: 'report' needs matplotlib, which is not installed: "
        "pip install 'rlsweep[report]' (or bash scripts/setup.sh all)"
    )


def test_a_broken_optional_package_is_named_with_its_reinstall(name: str, tmp_path: Path) -> None:
    """A package left half-installed (here as pip leaves matplotlib when the disk fills up: its
    pyplot imports a `style` module that was never written) is named, with the command that
    reinstalls it, instead of an internal error."""
    assert main(["run", write("g.yaml", grid(name)), "--index", "0"]) == 0
    broken = tmp_path / "site" / "matplotlib"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("def use(*args, **kwargs):\n    pass\n")
    (broken / "pyplot.py").write_text("from matplotlib import style\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    done = subprocess.run(
        [sys.executable, "-m", "rlsweep", "report", name], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        "rlsweep: error: 'report' could not import matplotlib, which is installed but broken "
        "(cannot import name 'style' from 'matplotlib'"
    ), done.stderr
    assert done.stderr.rstrip().endswith("reinstall it: pip install --force-reinstall --no-deps matplotlib")
    assert not Path("runs", "rlsweep.log").exists()  # not an internal error
