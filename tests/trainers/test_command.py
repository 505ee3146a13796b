"""The command trainer through the real worker: a real program per run (tests/trainers/command_prog.py),
its metrics read while it runs, pruned runs stopped by signal, failures and silence."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from rlsweep.errors import ConfigError
from tests.conftest import run_in_process

PROG = str(Path(__file__).with_name("command_prog.py"))


def sweep(tmp_path: Path, command: list[Any], **trainer: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "study": "cmd",
        "trainer": {
            "kind": "command",
            "command": ["{python}", PROG, *command],
            "metrics": {"regex": r"step=(?P<step>\d+) value=(?P<value>\S+)", "tags": {"value": "score"}},
            "timesteps": 500,
            "poll": 0.2,
            **trainer,
        },
        "eval": {"every": 100},
        "objective": {"metric": "score", "mode": "max"},
        "strategy": {"name": "grid"},
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
    }
    return data


def trials(handle: Any) -> list[Any]:
    return handle.study.get_trials(deepcopy=False)


def test_a_run_reports_every_step_and_keeps_its_output(tmp_path: Path) -> None:
    data = sweep(tmp_path, ["--steps=5", "--slope={slope}"])
    data["params"] = {"slope": {"grid": [1.0, 2.0]}}
    handle = run_in_process(data)
    done = trials(handle)
    assert [t.state for t in done] == [TrialState.COMPLETE, TrialState.COMPLETE]
    for t in done:
        slope = t.params["slope"]
        assert t.intermediate_values == {100 * i: slope * i for i in range(1, 6)}
        assert t.user_attrs["command"] == [sys.executable, PROG, "--steps=5", f"--slope={slope}"]
        assert t.user_attrs["exit"] == {"code": 0, "stopped_by": None, "why": None}
        folder = tmp_path / "artifacts" / str(t.number)
        assert (folder / "stdout.log").read_text().splitlines()[-1] == f"step=500 value={slope * 5}"
        assert (folder / "stderr.log").read_text() == ""


def test_jsonl_metrics_with_nested_names(tmp_path: Path) -> None:
    data = sweep(tmp_path, ["--steps=4", "--jsonl={run_dir}/m.jsonl"])
    data["trainer"]["metrics"] = {"jsonl": "{run_dir}/m.jsonl"}
    data["objective"]["metric"] = "eval/mean_return"
    handle = run_in_process(data)
    (t,) = trials(handle)
    assert t.state == TrialState.COMPLETE
    assert t.intermediate_values == {100: 1.0, 200: 2.0, 300: 3.0, 400: 4.0}


def test_a_non_zero_exit_fails_the_run_with_its_last_lines(tmp_path: Path) -> None:
    handle = run_in_process(sweep(tmp_path, ["--steps=2", "--exit-code=3"]))
    (t,) = trials(handle)
    assert t.state == TrialState.FAIL
    assert t.user_attrs["failure_reason"] == (
        f"{sys.executable} exited with code 3: Traceback (most recent call last): | RuntimeError: the simulator crashed"
    )


def test_a_pruned_run_gets_the_stop_signal_and_saves(tmp_path: Path) -> None:
    data = sweep(tmp_path, ["--steps=200", "--on-int={run_dir}/saved"], stop_signal="SIGINT", grace=30)
    data["stop"] = [{"metric": "score", "after": 300, "min": 100}]
    handle = run_in_process(data)
    (t,) = trials(handle)
    assert t.state == TrialState.PRUNED
    assert t.user_attrs["stopped_by"] == "SIGINT"
    assert (tmp_path / "artifacts" / str(t.number) / "saved").read_text() == "saved"
    assert max(t.intermediate_values) < 200 * 100


def test_a_program_ignoring_the_stop_signal_gets_sigterm_after_the_grace(tmp_path: Path) -> None:
    data = sweep(tmp_path, ["--steps=200", "--ignore=SIGINT"], stop_signal="INT", grace=0.5)
    data["stop"] = [{"metric": "score", "after": 300, "min": 100}]
    handle = run_in_process(data)
    (t,) = trials(handle)
    assert t.state == TrialState.PRUNED
    assert t.user_attrs["stopped_by"] == "SIGTERM"


def test_a_program_ignoring_sigterm_too_is_killed(tmp_path: Path) -> None:
    data = sweep(tmp_path, ["--steps=200", "--ignore=SIGINT", "--ignore=SIGTERM"], stop_signal="SIGINT", grace=0.5)
    data["stop"] = [{"metric": "score", "after": 300, "min": 100}]
    (t,) = trials(run_in_process(data))
    assert t.state == TrialState.PRUNED
    assert t.user_attrs["stopped_by"] == "SIGKILL"
    assert t.user_attrs["exit"]["code"] == -9


def test_a_silent_program_is_stopped_and_failed(tmp_path: Path) -> None:
    data = sweep(tmp_path, ["--steps=50", "--silent-after=2"], timeout_idle=1.5, grace=1)
    (t,) = trials(run_in_process(data))
    assert t.state == TrialState.FAIL
    assert t.user_attrs["failure_reason"] == "silent for 1.5 s (no output, no metrics); stopped with SIGTERM"
    assert t.intermediate_values == {100: 1.0, 200: 2.0}


def test_the_budget_ends_a_program_that_goes_on(tmp_path: Path) -> None:
    # 500 steps of budget; the program would go on to 20000: it is stopped as finished, not failed
    data = sweep(tmp_path, ["--steps=200"], grace=0.5)
    (t,) = trials(run_in_process(data))
    assert t.state == TrialState.COMPLETE
    assert max(t.intermediate_values) == 500
    assert t.user_attrs["exit"]["why"] == "budget reached"


def error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_sweep(data, file="s.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"command": ["{python}", PROG, "--lr={learning_rat}"]},
         "s.yaml: trainer.command[2]: unknown placeholder {learning_rat} (did you mean 'learning_rate'?); use a run value "
         "(seed, run_id, study, number, run_dir, budget, start_step, end_step, config_file, python, checkpoint_in, "
         "checkpoint_out) or a value of params by its dotted name"),
        ({"command": ["{python}", PROG]},
         "s.yaml: params.learning_rate: reaches the program nowhere: put {learning_rate} in trainer.command (or in the config)"),
        ({"command": ["{python}", PROG, "--lr={learning_rate}", "--load={checkpoint_in}"]},
         "s.yaml: trainer.command[3]: {checkpoint_in} has no value for a fresh run; put it in an optional group, "
         'e.g. ["--load", "{checkpoint_in}"]'),
        ({"command": ["{python}", PROG, "--lr={learning_rate}", "{config_file}"]},
         "s.yaml: trainer.command[3]: {config_file} needs the tool's config: add trainer.config_template (a file) or trainer.config"),
        ({"config": {"a": 1}},
         "s.yaml: trainer.command: the tool's config is rendered but never handed over: put {config_file} in trainer.command"),
        ({"stop_signal": "SIGINTT"},
         "s.yaml: trainer.stop_signal: unknown signal 'SIGINTT' (did you mean 'SIGINT'?); use a name such as SIGINT or SIGTERM"),
        ({"grace_period": 3}, "s.yaml: trainer.grace_period: unknown key 'grace_period' (did you mean 'grace'?) for the command trainer"),
        ({"metrics": {"tags": {}}},
         "s.yaml: trainer.metrics: needs exactly one source of metrics: tensorboard, csv, jsonl or regex (got none)"),
        ({"metrics": {"regex": "step=(\\d+"}},
         "s.yaml: trainer.metrics.regex: not a valid regular expression: missing ), unterminated subpattern at position 5"),
        ({"metrics": {"tensorbord": "x"}}, "s.yaml: trainer.metrics.tensorbord: unknown key 'tensorbord' (did you mean 'tensorboard'?)"),
        ({"command": ["no-such-program-xyz", "--lr={learning_rate}"]},
         "s.yaml: trainer.command[0]: cannot run 'no-such-program-xyz': not an executable file on PATH; check the name (or give its full path)"),
        ({"command": ["{python}", "--x={learning_rate}", "{oops"]},
         "s.yaml: trainer.command[2]: a lone '{' in '{oops'; write '{{' for a literal brace"),
        ({"timesteps": 0}, "s.yaml: trainer.timesteps: Input should be greater than 0, got 0"),
        ({"config_template": "missing.yaml"},
         "s.yaml: trainer.config_template: cannot read 'missing.yaml' (No such file or directory); a relative path is "
         "relative to the sweep file's folder"),
    ],
)
def test_bad_settings_are_named_before_any_run(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    data = sweep(tmp_path, ["--lr={learning_rate}"])
    data["params"] = {"learning_rate": {"grid": [0.1, 0.2]}}
    data["trainer"].update(change)
    assert error(data) == message
