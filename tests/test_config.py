"""The sweep file: parsing (YAML, JSON, defaults, --set overrides) and every validation error, with its
exact message (STYLE.md 8: file, key path, the bad value quoted, the fix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlsweep.config import PRUNERS, STRATEGIES, LoadedSweep, load_sweep
from rlsweep.errors import ConfigError, RlsweepError
from rlsweep.trainers import TRAINERS

# Every registered kind, as the messages list them (a new trainer plugin changes them)
KINDS = f"{', '.join(list(TRAINERS)[:-1])} or {list(TRAINERS)[-1]}"

TRAINER = {"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 1000}

SWEEP_YAML = """\
study: cartpole-ppo
trainer: {kind: function, target: "rlsweep.examples.synthetic:train", timesteps: 1000, n_envs: {int: [1, 8]}}
eval: {every: 500}
strategy: {name: tpe, runs: 8, pruner: median}
stop:
  - {metric: eval/mean_return, after: 500, min: 100}
  - {metric: eval/mean_return, success: {min: 475, for: 3}}
params:
  learning_rate: {loguniform: [1.0e-5, 1.0e-2]}
  gamma: {uniform: [0.9, 0.9999]}
  policy_kwargs: {net_arch: {choice: [[64, 64], [256, 256]]}}
"""


def sweep(**sections: Any) -> dict[str, Any]:
    return {"study": "s", "trainer": dict(TRAINER), **sections}


def error(source: Any, overrides: tuple[str, ...] = ()) -> str:
    """The message of the ConfigError that loading `source` raises (a mapping is named f.yaml)."""
    with pytest.raises(ConfigError) as excinfo:
        if isinstance(source, dict):
            load_sweep(source, overrides, file="f.yaml")
        else:
            load_sweep(source, overrides)
    assert excinfo.value.exit_code == 2
    return str(excinfo.value)


# ---------------------------------------------------------------- parsing


def test_yaml_file_is_parsed_with_defaults_filled(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_YAML)
    loaded = load_sweep(path)
    assert isinstance(loaded, LoadedSweep)
    assert loaded.file == str(path)
    s = loaded.sweep
    assert s.study == "cartpole-ppo"
    assert s.seed == 0
    assert s.trainer["timesteps"] == 1000
    assert (s.eval.every, s.eval.episodes, s.eval.deterministic) == (500, 10, True)
    assert (s.objective.metric, s.objective.mode, s.objective.reduce, s.objective.k) == (
        "eval/mean_return",
        "max",
        "last",
        3,
    )
    assert (s.strategy.name, s.strategy.runs, s.strategy.seeds, s.strategy.pruner) == ("tpe", 8, 1, "median")
    assert s.strategy.workers is None
    assert [(g.metric, g.after, g.min) for g in s.stop] == [
        ("eval/mean_return", 500, 100.0),
        ("eval/mean_return", 0, None),
    ]
    assert s.stop[1].success is not None and (s.stop[1].success.min, s.stop[1].success.for_) == (475.0, 3)
    assert (s.storage, s.artifacts, s.checkpoint.every) == (None, None, None)
    assert (s.worker.heartbeat, s.worker.lost_after, s.worker.requeue) == (5.0, 25.0, 1)
    assert loaded.space.names == ["trainer.n_envs", "learning_rate", "gamma", "policy_kwargs.net_arch"]
    # The stored form uses the file's spelling ("for", not "for_") and reloads to the same sweep.
    stored = loaded.to_dict()
    assert stored["stop"][1]["success"]["for"] == 3
    assert load_sweep(json.loads(json.dumps(stored))).sweep == s


def test_json_file_is_parsed_like_yaml(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(yaml.safe_load(SWEEP_YAML)))
    from_yaml = tmp_path / "sweep.yaml"
    from_yaml.write_text(SWEEP_YAML)
    assert load_sweep(path).sweep == load_sweep(from_yaml).sweep
    assert load_sweep(path).space.hash() == load_sweep(from_yaml).space.hash()


def test_minimal_sweep_gets_every_default() -> None:
    s = load_sweep(sweep()).sweep
    assert (s.strategy.name, s.strategy.runs, s.strategy.seeds, s.strategy.pruner) == ("tpe", None, 1, "none")
    assert (s.eval.every, s.eval.episodes) == (10_000, 10)
    assert s.stop == [] and s.params == {}


def test_set_overrides_values_with_yaml_typing(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_YAML)
    loaded = load_sweep(
        path,
        [
            "strategy.runs=100",
            "trainer.timesteps=2000",
            "objective.mode=min",
            "params.gamma={choice: [0.9, 0.99]}",
            "checkpoint.every=500",  # a section the file does not have
        ],
    )
    s = loaded.sweep
    assert s.strategy.runs == 100
    assert s.strategy.name == "tpe"  # untouched neighbours stay
    assert s.trainer["timesteps"] == 2000
    assert s.objective.mode == "min"
    assert s.checkpoint.every == 500
    assert loaded.space["gamma"].choices == (0.9, 0.99)


def test_set_on_a_mapping_source_does_not_change_the_callers_mapping() -> None:
    data = sweep(strategy={"runs": 3})
    assert load_sweep(data, ["strategy.runs=5"]).sweep.strategy.runs == 5
    assert data["strategy"] == {"runs": 3}


def test_tuples_in_a_mapping_source_are_lists() -> None:
    loaded = load_sweep(sweep(params={"net_arch": {"choice": ((64, 64), (128,))}}))
    assert loaded.space["net_arch"].choices == ([64, 64], [128])


# ---------------------------------------------------------------- every validation error, exact message


def test_error_is_a_config_error_with_exit_code_2() -> None:
    assert ConfigError.exit_code == 2
    assert issubclass(ConfigError, RlsweepError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            sweep(strateg={"name": "tpe"}),
            "f.yaml: strateg: unknown key 'strateg' (did you mean 'strategy'?)",
            id="top-level",
        ),
        pytest.param(
            sweep(strategy={"nmae": "tpe"}),
            "f.yaml: strategy.nmae: unknown key 'nmae' (did you mean 'name'?)",
            id="nested",
        ),
        pytest.param(
            sweep(eval={"zzz": 1}),
            "f.yaml: eval.zzz: unknown key 'zzz'; known: every, episodes, deterministic",
            id="no-close-key",
        ),
        pytest.param(
            sweep(stop=[{"metric": "m", "min": 1, "aftr": 3}]),
            "f.yaml: stop[0].aftr: unknown key 'aftr' (did you mean 'after'?)",
            id="in-list",
        ),
        pytest.param(
            sweep(stop=[{"metric": "m", "success": {"min": 1, "fr": 3}}]),
            "f.yaml: stop[0].success.fr: unknown key 'fr' (did you mean 'for'?)",
            id="alias",
        ),
    ],
)
def test_unknown_key(data: dict[str, Any], message: str) -> None:
    assert error(data) == message


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ({"uniform": [1, 0.5]}, "uniform needs low < high, got [1, 0.5]"),
        ({"uniform": [1, 1]}, "uniform needs low < high, got [1, 1]"),
        ({"int": [8, 2]}, "int needs low < high, got [8, 2]"),
        ({"loguniform": [0, 0.1]}, "loguniform needs 0 < low < high (log scale), got [0, 0.1]"),
        ({"loguniform": [-1, 0.1]}, "loguniform needs 0 < low < high (log scale), got [-1, 0.1]"),
        ({"logint": [0, 10]}, "logint needs 0 < low < high (log scale), got [0, 10]"),
        ({"uniform": [0, 1], "step": 0}, "step must be a positive number, got 0"),
        ({"int": [0, 10], "step": 0}, "step must be a positive number, got 0"),
        ({"uniform": [0, 1], "step": -0.5}, "step must be a positive number, got -0.5"),
        (
            {"uniform": [0, 1], "step": 0.3},
            "step 0.3 does not divide the range [0, 1]; choose a step that does",
        ),
        ({"int": [0, 10], "step": 3}, "step 3 does not divide the range [0, 10]; choose a step that does"),
        ({"int": [0, 10], "step": 2.5}, "step of an int range must be a whole number, got 2.5"),
        (
            {"loguniform": [0.1, 1], "step": 0.1},
            "loguniform cannot take a step (log scale); use uniform with a step",
        ),
        ({"choice": []}, "choice needs a non-empty list of values, got []"),
        ({"grid": []}, "grid needs a non-empty list of values, got []"),
        ({"opt_values": 3}, "opt_values needs a non-empty list of values, got 3"),
        ({"choice": [1, 2], "step": 1}, "choice takes no 'step'; list the values instead"),
        ({"choice": [1, 1]}, "choice lists a value twice: [1, 1]; list each value once"),
        (
            {"choice": [1, 2, 1.0]},
            "choice lists 1 and 1.0, which compare equal and cannot be told apart; keep one of them",
        ),
        (
            {"grid": [0, "a", False]},
            "grid lists 0 and False, which compare equal and cannot be told apart; keep one of them",
        ),
        (
            {"choice": [1.0, float("nan")]},
            "choice values must be JSON values (finite numbers, strings, booleans, null, lists, mappings), got nan",
        ),
        (
            {"choice": [{"uniform": [0, 1]}]},
            "choice values cannot contain markers (a marker inside a marker); list plain values",
        ),
        (
            {"choice": [[{"int": [1, 2]}]]},
            "choice values cannot contain markers (a marker inside a marker); list plain values",
        ),
        (
            {"uniform": {"choice": [1, 2]}},
            "uniform cannot hold another marker (a marker inside a marker); give [low, high]",
        ),
        (
            {"uniform": [0, 1], "choice": [1, 2]},
            "one marker per value, got ['uniform', 'choice']; keep one of them",
        ),
        (
            {"uniform": [0, 1], "foo": 1},
            "a 'uniform' marker takes only 'step' beside it, got ['foo']; move them out of the marker",
        ),
        ({"int": [0.5, 3]}, "int needs whole numbers, got [0.5, 3]; use uniform for real values"),
        ({"logint": [1, 2.5]}, "logint needs whole numbers, got [1, 2.5]; use uniform for real values"),
        ({"uniform": 3}, "uniform needs [low, high] as two numbers, got 3"),
        ({"uniform": [0, 1, 2]}, "uniform needs [low, high] as two numbers, got [0, 1, 2]"),
        ({"uniform": ["a", 1]}, "uniform needs [low, high] as two numbers, got ['a', 1]"),
        ({"uniform": [True, 3]}, "uniform needs [low, high] as two numbers, got [True, 3]"),
        ({"uniform": [0, float("inf")]}, "uniform needs [low, high] as two numbers, got [0, inf]"),
    ],
)
def test_bad_marker(marker: dict[str, Any], message: str) -> None:
    assert error(sweep(params={"lr": marker})) == f"f.yaml: params.lr: {message}"


def test_bad_marker_deep_in_the_trainer_names_its_path() -> None:
    trainer = {**TRAINER, "policy": {"net": {"width": {"int": [64, 32]}}}}
    assert (
        error(sweep(trainer=trainer))
        == "f.yaml: trainer.policy.net.width: int needs low < high, got [64, 32]"
    )


def test_marker_inside_a_list_is_an_error_not_a_silent_plain_value() -> None:
    data = sweep(params={"policy_kwargs": {"net_arch": [{"int": [32, 64]}, 64]}})
    assert error(data) == (
        "f.yaml: params.policy_kwargs.net_arch: a marker inside a list is not searched; "
        "search the whole list instead, e.g. {choice: [[64, 64], [256, 256]]}"
    )


def test_two_markers_with_the_same_dotted_name() -> None:
    data = sweep(params={"a.b": {"choice": [1, 2]}, "a": {"b": {"choice": [3, 4]}}})
    assert error(data) == (
        "f.yaml: params.a.b: two searched values share the name 'a.b' (dotted keys and nesting collide); rename one"
    )


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def test_python_object_in_a_mapping_source() -> None:
    data = sweep(params={"a": {"choice": [1, Opaque()]}})
    assert error(data) == (
        "f.yaml: params.a.choice[1]: Opaque() (Opaque) is not a JSON value; use numbers, strings, booleans, null, lists and mappings"
    )


def test_nan_in_a_mapping_source_choice() -> None:
    assert error(sweep(params={"a": {"choice": [float("nan")]}})) == (
        "f.yaml: params.a: choice values must be JSON values (finite numbers, strings, booleans, null, lists, mappings), got nan"
    )


def test_non_string_key_in_a_mapping_source() -> None:
    assert error(sweep(params={"a": {3: 1}})) == "f.yaml: params.a.3: keys must be strings, got 3; quote it"


@pytest.mark.parametrize(
    ("params_yaml", "message"),
    [
        ("a: {choice: [!!set {1, 2}]}", "params.a.choice[0]: {1, 2} (set) is not a JSON value"),
        ("a: {choice: !!set {1, 2}}", "params.a.choice: {1, 2} (set) is not a JSON value"),
        ("a: !!set {1, 2}", "params.a: {1, 2} (set) is not a JSON value"),
        (
            "a: {choice: [2024-01-01]}",
            "params.a.choice[0]: datetime.date(2024, 1, 1) (date) is not a JSON value",
        ),
    ],
)
def test_yaml_values_json_cannot_hold(tmp_path: Path, params_yaml: str, message: str) -> None:
    # The sweep is stored in the study as JSON: a set or date would reach the workers changed.
    path = tmp_path / "sweep.yaml"
    path.write_text(f"study: s\ntrainer: {json.dumps(TRAINER)}\nparams:\n  {params_yaml}\n")
    assert error(path) == f"{path}: {message}; use numbers, strings, booleans, null, lists and mappings"


def test_yaml_nan_choice(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"study: s\ntrainer: {json.dumps(TRAINER)}\nparams:\n  a: {{choice: [.nan, 1]}}\n")
    assert error(path) == (
        f"{path}: params.a: choice values must be JSON values (finite numbers, strings, booleans, null, lists, mappings), got nan"
    )


def test_unknown_strategy_with_suggestion() -> None:
    assert error(sweep(strategy={"name": "tpee"})) == (
        f"f.yaml: strategy.name: unknown strategy 'tpee' (did you mean 'tpe'?); known: {', '.join(STRATEGIES)}"
    )


def test_unknown_strategy_without_suggestion() -> None:
    assert (
        error(sweep(strategy={"name": "zzz"}))
        == f"f.yaml: strategy.name: unknown strategy 'zzz'; known: {', '.join(STRATEGIES)}"
    )


def test_unknown_pruner_with_suggestion() -> None:
    assert error(sweep(strategy={"pruner": "medain"})) == (
        f"f.yaml: strategy.pruner: unknown pruner 'medain' (did you mean 'median'?); known: {', '.join(PRUNERS)}"
    )
    assert set(PRUNERS) >= {"none", "median", "percentile", "asha", "hyperband"}


def test_missing_study() -> None:
    data = {"trainer": dict(TRAINER)}
    assert error(data) == "f.yaml: study: is required (the study's name; the storage keys everything by it)"


def test_missing_trainer() -> None:
    assert (
        error({"study": "s"})
        == "f.yaml: trainer: is required (what trains a run: kind and its settings (markers allowed))"
    )


def test_missing_gate_metric() -> None:
    assert (
        error(sweep(stop=[{"min": 1}]))
        == "f.yaml: stop[0].metric: is required (the reported metric the gate watches)"
    )


def test_missing_trainer_kind() -> None:
    data = {"study": "s", "trainer": {"target": "rlsweep.examples.synthetic:train"}}
    assert error(data) == f"f.yaml: trainer.kind: needs 'kind' ({KINDS})"


def test_unknown_trainer_kind() -> None:
    data = {"study": "s", "trainer": {"kind": "functoin"}}
    assert error(data) == (
        f"f.yaml: trainer.kind: unknown trainer kind 'functoin' (did you mean 'function'?); known: {', '.join(TRAINERS)}"
    )


def test_function_target_module_cannot_be_imported() -> None:
    data = {
        "study": "s",
        "trainer": {"kind": "function", "target": "nosuchmodule_xyz:train", "timesteps": 10},
    }
    assert error(data) == (
        "f.yaml: trainer.target: cannot import module 'nosuchmodule_xyz' (No module named 'nosuchmodule_xyz'); "
        "check the name and PYTHONPATH"
    )


def test_function_target_function_missing() -> None:
    data = {
        "study": "s",
        "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:trian", "timesteps": 10},
    }
    assert (
        error(data)
        == "f.yaml: trainer.target: 'rlsweep.examples.synthetic' has no function 'trian' (did you mean 'train'?)"
    )


def test_function_target_without_colon() -> None:
    data = {
        "study": "s",
        "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic", "timesteps": 10},
    }
    assert (
        error(data)
        == "f.yaml: trainer.target: target must be 'module:function', got 'rlsweep.examples.synthetic'"
    )


def test_function_trainer_without_timesteps() -> None:
    data = {"study": "s", "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:train"}}
    assert error(data) == "f.yaml: trainer.timesteps: needs a positive whole number of steps, got None"


def test_bad_study_name() -> None:
    assert (
        error(sweep(study="a b"))
        == "f.yaml: study: 'a b' is not a usable study name; use letters, digits, '-', '_' and '.'"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (sweep(strategy={"runs": 0}), "f.yaml: strategy.runs: Input should be greater than 0, got 0"),
        (
            sweep(objective={"mode": "maximize"}),
            "f.yaml: objective.mode: Input should be 'max' or 'min', got 'maximize'",
        ),
        (sweep(stop=[{"metric": "m"}]), "f.yaml: stop[0]: a gate needs min, max or success"),
        (
            sweep(stop=[{"metric": "m", "min": 5, "max": 1}]),
            "f.yaml: stop[0]: min 5.0 is above max 1.0; no run could pass",
        ),
        (
            sweep(strategy={"name": "pbt"}),
            "f.yaml: strategy.interval: pbt needs interval: environment steps between exploit steps",
        ),
    ],
)
def test_other_field_errors(data: dict[str, Any], message: str) -> None:
    assert error(data) == message


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ({"uniform": [0, 1]}, "got the continuous range float [0.0, 1.0]; add 'step' or use 'choice'"),
        (
            {"loguniform": [0.1, 1]},
            "got the continuous range log float [0.1, 1.0]; use a linear range with 'step', or 'choice'",
        ),
        (
            {"logint": [1, 8]},
            "got the continuous range log int [1, 8]; use a linear range with 'step', or 'choice'",
        ),
    ],
)
def test_grid_strategy_with_a_continuous_range(marker: dict[str, Any], message: str) -> None:
    data = sweep(strategy={"name": "grid"}, params={"lr": marker})
    assert error(data) == f"f.yaml: params.lr: the grid strategy needs a finite set of values, {message}"


def test_grid_strategy_with_a_continuous_range_in_the_trainer() -> None:
    data = sweep(strategy={"name": "grid"}, trainer={**TRAINER, "speed": {"uniform": [1, 2]}})
    assert error(data) == (
        "f.yaml: trainer.speed: the grid strategy needs a finite set of values, "
        "got the continuous range float [1.0, 2.0]; add 'step' or use 'choice'"
    )


def test_grid_strategy_accepts_steps_and_ints() -> None:
    data = sweep(
        strategy={"name": "grid"}, params={"lr": {"uniform": [0, 1], "step": 0.5}, "n": {"int": [1, 3]}}
    )
    assert len(load_sweep(data).space.grid()) == 9


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("study: s\n  trainer: x\n")
    assert error(path) == f"{path}: not valid YAML at line 2, column 10: mapping values are not allowed here"


def test_unclosed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("study: s\nparams: [\n")
    assert (
        error(path)
        == f"{path}: not valid YAML at line 3, column 1: expected the node content, but found '<stream end>'"
    )


def test_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "sweep.json"
    path.write_text('{"study": "s", "trainer": {"kind": "function", }}')
    assert (
        error(path)
        == f"{path}: not valid JSON at line 1, column 48: Expecting property name enclosed in double quotes"
    )


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just a string\n"])
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    assert error(path) == f"{path}: a sweep file must be a mapping with study, trainer, params …"


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert error(path) == f"{path}: file not found; check the path"


def test_file_is_a_directory(tmp_path: Path) -> None:
    assert error(tmp_path) == f"{tmp_path}: cannot read: Is a directory"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("strategy", "f.yaml: --set needs KEY=VALUE, got 'strategy'"),
        ("=3", "f.yaml: --set needs KEY=VALUE, got '=3'"),
        (
            "strategy.runs=[",
            "f.yaml: strategy.runs: --set value '[' is not valid YAML (expected the node content, but found '<stream end>'); "
            "close brackets or quote it",
        ),
        (
            "strategy.runs.x=3",
            "f.yaml: strategy.runs.x: --set cannot go inside 'strategy.runs': it holds the plain value 3, not a section; "
            "set 'strategy.runs' itself",
        ),
        # A value the override set is blamed on the override, not on the file it is not in.
        ("strategy.nmae=x", "--set strategy.nmae=x: unknown key 'nmae' (did you mean 'name'?)"),
        (
            "strategy.runs=abc",
            "--set strategy.runs=abc: Input should be a valid integer, unable to parse string as an integer, got 'abc'",
        ),
        ("params.lr={uniform: [1, 0]}", "--set params.lr={uniform: [1, 0]}: uniform needs low < high, got [1, 0]"),
        ("params={lr: {uniform: [1, 0]}}", "--set params={lr: {uniform: [1, 0]}}: params.lr: uniform needs low < high, got [1, 0]"),
        ("trainer.timesteps=-100", "--set trainer.timesteps=-100: needs a positive whole number of steps, got -100"),
    ],
)
def test_bad_override(override: str, message: str) -> None:
    assert error(sweep(strategy={"runs": 3}), (override,)) == message


def test_bad_file_value_beside_a_good_override_is_blamed_on_the_file() -> None:
    bad = sweep(strategy={"runs": 0})
    assert error(bad, ("trainer.timesteps=500",)) == "f.yaml: strategy.runs: Input should be greater than 0, got 0"


def test_the_last_override_of_a_key_is_blamed() -> None:
    assert error(sweep(), ("strategy.runs=3", "strategy.runs=-1")) == (
        "--set strategy.runs=-1: Input should be greater than 0, got -1"
    )


# ---------------------------------------------------------------- strategy settings per strategy
@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (
            {"name": "tpe", "fraction": 0.3},
            "f.yaml: strategy.fraction: 'fraction' is a setting of pbt, pb2, pb2_mixed, not of tpe",
        ),
        (
            {"name": "grid", "sampler_kwargs": {}},
            "f.yaml: strategy.sampler_kwargs: 'sampler_kwargs' is a setting of random, tpe, cmaes, gp, qmc, not of grid",
        ),
        (
            {"name": "pbt", "interval": 4, "configs": []},
            "f.yaml: strategy.configs: 'configs' is a setting of list, not of pbt",
        ),
        ({"population": 4}, "f.yaml: strategy.population: 'population' is a setting of pbt, pb2, pb2_mixed, not of tpe"),
        (
            {"name": "pbt", "interval": 4, "fracton": 0.3},
            "f.yaml: strategy.fracton: unknown key 'fracton' (did you mean 'fraction'?)",
        ),
        (
            {"name": "grid", "zzz": 1},
            "f.yaml: strategy.zzz: unknown key 'zzz'; known: name, runs, seeds, workers, pruner, pruner_kwargs",
        ),
        (
            {"name": "pbt", "interval": 4, "fraction": 0.9},
            "f.yaml: strategy.fraction: Input should be less than or equal to 0.5, got 0.9",
        ),
    ],
)
def test_strategy_keys_belong_to_the_named_strategy(strategy: dict[str, Any], message: str) -> None:
    assert error(sweep(strategy=strategy)) == message


def test_a_key_of_another_strategy_through_set() -> None:
    assert error(sweep(strategy={"name": "random"}), ("strategy.synchronous=true",)) == (
        "--set strategy.synchronous=true: 'synchronous' is a setting of pbt, pb2, pb2_mixed, not of random"
    )


def test_each_strategy_gets_its_own_settings_model() -> None:
    from rlsweep.strategies import GridSettings, ListSettings, PopulationSettings, SamplerSettings

    pbt = load_sweep(sweep(strategy={"name": "pbt", "interval": 4, "population": 3})).sweep.strategy
    assert isinstance(pbt, PopulationSettings) and (pbt.population, pbt.interval, pbt.fraction) == (3, 4, 0.25)
    assert isinstance(load_sweep(sweep()).sweep.strategy, SamplerSettings)
    assert isinstance(load_sweep(sweep(strategy={"name": "grid"})).sweep.strategy, GridSettings)
    listed = load_sweep(sweep(strategy={"name": "list", "configs": [{"x": 1}]}, params={"x": {"choice": [1, 2]}}))
    assert isinstance(listed.sweep.strategy, ListSettings)
    assert not hasattr(load_sweep(sweep()).sweep.strategy, "population")


@pytest.mark.parametrize(
    "strategy",
    [{"name": "tpe", "runs": 4, "sampler_kwargs": {"n_startup_trials": 2}}, {"name": "pb2", "interval": 4, "fixed": ["gamma"]}],
)
def test_saved_sweep_round_trips_with_its_own_keys(strategy: dict[str, Any]) -> None:
    loaded = load_sweep(sweep(strategy=strategy, params={"gamma": {"uniform": [0.9, 0.99]}}))
    data = loaded.to_dict()
    again = load_sweep(json.loads(json.dumps(data)))
    assert again.to_dict() == data
    assert again.space.hash() == loaded.space.hash()
    assert set(data["strategy"]) == set(type(loaded.sweep.strategy).model_fields)


def test_a_sweep_saved_with_the_flat_strategy_model_still_loads() -> None:
    # What rlsweep stored before each strategy had its own model: every key under every strategy.
    flat = {
        "name": "tpe", "runs": 8, "seeds": 1, "workers": None, "pruner": "median", "pruner_kwargs": {},
        "sampler_kwargs": {}, "population": 8, "interval": None, "selection": "truncation", "fraction": 0.25,
        "factors": [0.8, 1.2], "resample_probability": 0.25, "synchronous": False, "fixed": [], "exploit": True,
        "explore": True, "configs": [], "seed_offset": 0,
    }  # fmt: skip
    loaded = load_sweep(sweep(strategy=flat))
    assert loaded.to_dict()["strategy"] == {
        "name": "tpe", "runs": 8, "seeds": 1, "workers": None, "pruner": "median", "pruner_kwargs": {}, "sampler_kwargs": {},
    }  # fmt: skip
    # one key short of the flat model is a user's file, checked key by key
    del flat["seed_offset"]
    assert error(sweep(strategy=flat)) == (
        "f.yaml: strategy.population: 'population' is a setting of pbt, pb2, pb2_mixed, not of tpe"
    )


def test_values_that_cannot_be_enumerated_stored_or_seeded() -> None:
    """Huge numbers are refused before any run exists (they died later: a MemoryError listing a grid,
    runs that all failed on an overflowing range or seed), naming the key and the limit."""
    def sweep(**extra: Any) -> dict[str, Any]:
        return {"study": "h", "trainer": dict(TRAINER), "params": {"x": {"uniform": [0, 1]}}, **extra}

    grid = {"name": "grid"}
    assert error(sweep(strategy=grid, params={"n": {"int": [0, 10**12]}})) == (
        "f.yaml: params.n: int [0, 1000000000000] gives 1000000000001 grid values, more than a grid can "
        "enumerate (limit 1000000); use a larger 'step', or a searching strategy such as random or tpe"
    )
    three = {"a": {"int": [0, 999]}, "b": {"int": [0, 999]}, "c": {"choice": list(range(10))}}
    assert error(sweep(strategy=grid, params=three)) == (
        "f.yaml: params: the grid has 10000000 configurations (1000 (a) x 1000 (b) x 10 (c)), more than a grid "
        "can enumerate (limit 1000000); use fewer values or a searching strategy such as random or tpe"
    )
    assert error(sweep(params={"x": {"uniform": [-1e308, 1e308]}})) == (
        "f.yaml: params.x: uniform range [-1e+308, 1e+308] is too wide: high - low overflows a double; keep both within ±8.9e307"
    )
    assert error(sweep(params={"n": {"int": [0, 10**20]}})).startswith(
        "f.yaml: params.n: int values must lie within ±9007199254740992 (2^53"
    )
    assert error(sweep(seed=10**20)) == (
        "f.yaml: seed: 100000000000000000000 is too large: a run's seed (this plus its seed number) must fit the "
        "32-bit seeds NumPy and Gymnasium take; use at most 2147483647"
    )
    assert error(sweep(trainer={**TRAINER, "timesteps": 10**20})) == (
        "f.yaml: trainer.timesteps: at most 9007199254740992 (2^53) environment steps: steps are stored as 64-bit "
        "numbers and compared as doubles, got 100000000000000000000"
    )
    # the limits themselves are fine
    load_sweep(sweep(seed=2**31 - 1, trainer={**TRAINER, "timesteps": 2**53}), file="f.yaml")
    load_sweep(sweep(strategy=grid, params={"n": {"int": [1, 10**6]}}), file="f.yaml")


def test_every_example_sweep_file_is_valid() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    # every YAML file there but the ML-Agents config template a sweep renders
    sweeps = [f for f in sorted(examples.glob("*.yaml")) if "\nstudy:" in f.read_text()]
    assert len(sweeps) == len(list(examples.glob("*.yaml"))) - 1
    for file in sweeps:
        try:
            assert load_sweep(file).sweep.study, file
        except ConfigError as exc:  # Procgen's: its own environment is made by scripts/procgen-env.sh
            assert "trainer.python: cannot run '.procgen-venv/bin/python'" in str(exc), exc
