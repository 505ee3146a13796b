"""The search space: markers at any depth, filling values back, Optuna distributions and the JSON
encoding of list choices, grid order, run index -> (configuration, seed), stable ids and hashes."""

from __future__ import annotations

import json
from typing import Any

import optuna.distributions as d
import pytest

from rlsweep.space import SearchParam, Space, build_space, config_id, index_to_run, is_marker

TRAINER = {
    "kind": "function",
    "target": "rlsweep.examples.synthetic:train",
    "timesteps": 1000,
    "n_envs": {"int": [1, 8]},
    "env_kwargs": {"wrapper": {"frame_skip": {"choice": [1, 4]}, "name": "x"}},
}
PARAMS = {
    "learning_rate": {"loguniform": [1e-5, 1e-2]},
    "gamma": {"uniform": [0.9, 0.9999]},
    "batch_size": {"int": [32, 256], "step": 32},
    "n_steps": {"choice": [256, 512]},
    "policy_kwargs": {"net_arch": {"choice": [[64, 64], [256, 256]]}, "ortho_init": False},
    "fixed": 7,
}


def space() -> Space:
    return build_space(TRAINER, PARAMS, "f.yaml")


# ---------------------------------------------------------------- discovery and filling


def test_markers_are_found_at_any_depth_with_dotted_names() -> None:
    s = space()
    assert s.names == [
        "trainer.n_envs",
        "trainer.env_kwargs.wrapper.frame_skip",
        "learning_rate",
        "gamma",
        "batch_size",
        "n_steps",
        "policy_kwargs.net_arch",
    ]
    assert s["trainer.n_envs"] == SearchParam("trainer.n_envs", "int", 1, 8, False, None)
    assert s["learning_rate"] == SearchParam("learning_rate", "float", 1e-5, 1e-2, True, None)
    assert s["batch_size"] == SearchParam("batch_size", "int", 32, 256, False, 32)
    assert s["policy_kwargs.net_arch"].choices == ([64, 64], [256, 256])


@pytest.mark.parametrize(
    ("marker", "param"),
    [
        ({"choice": ["a", "b"]}, SearchParam("x", "choice", choices=("a", "b"))),
        ({"grid": [1, 2]}, SearchParam("x", "choice", choices=(1, 2))),
        ({"opt_values": [0.1, 0.2]}, SearchParam("x", "choice", choices=(0.1, 0.2))),
        ({"uniform": [0, 1]}, SearchParam("x", "float", 0.0, 1.0, False, None)),
        ({"uniform": [0, 1], "step": 0.25}, SearchParam("x", "float", 0.0, 1.0, False, 0.25)),
        ({"loguniform": [0.001, 1]}, SearchParam("x", "float", 0.001, 1.0, True, None)),
        ({"int": [2, 10], "step": 2}, SearchParam("x", "int", 2, 10, False, 2)),
        ({"int": [2.0, 10.0]}, SearchParam("x", "int", 2, 10, False, None)),
        ({"logint": [1, 1024]}, SearchParam("x", "int", 1, 1024, True, None)),
    ],
)
def test_each_marker_kind(marker: dict[str, Any], param: SearchParam) -> None:
    assert build_space({}, {"x": marker}).params == [param]


def test_is_marker() -> None:
    assert is_marker({"choice": [1]}) and is_marker({"int": [1, 2], "step": 1})
    assert not is_marker({"net_arch": [64]}) and not is_marker([1, 2]) and not is_marker(3)


def test_no_markers_is_an_empty_space() -> None:
    s = build_space({"kind": "function"}, {"lr": 0.1, "net": [64, 64]})
    assert s.params == [] and s.grid() == [{}]
    assert s.fill({}) == ({"kind": "function"}, {"lr": 0.1, "net": [64, 64]})


def test_fill_puts_values_where_the_markers_stand() -> None:
    s = space()
    values = {
        "trainer.n_envs": 4,
        "trainer.env_kwargs.wrapper.frame_skip": 4,
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "batch_size": 64,
        "n_steps": 512,
        "policy_kwargs.net_arch": [256, 256],
    }
    trainer, hyper = s.fill(values)
    assert trainer == {
        "kind": "function",
        "target": "rlsweep.examples.synthetic:train",
        "timesteps": 1000,
        "n_envs": 4,
        "env_kwargs": {"wrapper": {"frame_skip": 4, "name": "x"}},
    }
    assert hyper == {
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "batch_size": 64,
        "n_steps": 512,
        "policy_kwargs": {"net_arch": [256, 256], "ortho_init": False},
        "fixed": 7,
    }
    # Filled values are copies: changing them changes neither the space nor the caller's values.
    hyper["policy_kwargs"]["net_arch"].append(1)
    assert values["policy_kwargs.net_arch"] == [256, 256]
    assert s.hyperparams["policy_kwargs"]["net_arch"] == {"choice": [[64, 64], [256, 256]]}


def test_build_space_does_not_keep_the_callers_sections() -> None:
    params = {"a": {"choice": [1, 2]}}
    s = build_space({}, params)
    params["a"] = 5
    assert s.fill({"a": 2}) == ({}, {"a": 2})


def test_representative_fills_one_possible_value_each() -> None:
    trainer, hyper = space().representative()
    assert trainer["n_envs"] == 1 and isinstance(trainer["n_envs"], int)
    assert trainer["env_kwargs"]["wrapper"]["frame_skip"] == 1
    assert hyper["learning_rate"] == 1e-5
    assert hyper["batch_size"] == 32 and isinstance(hyper["batch_size"], int)
    assert hyper["policy_kwargs"]["net_arch"] == [64, 64]


# ---------------------------------------------------------------- Optuna distributions and encoding


def test_distributions_have_optunas_types() -> None:
    dists = space().distributions()
    assert dists["trainer.n_envs"] == d.IntDistribution(1, 8, log=False, step=1)
    assert dists["batch_size"] == d.IntDistribution(32, 256, step=32)
    assert dists["learning_rate"] == d.FloatDistribution(1e-5, 1e-2, log=True)
    assert dists["gamma"] == d.FloatDistribution(0.9, 0.9999)
    assert dists["n_steps"] == d.CategoricalDistribution([256, 512])
    # Optuna's categorical holds only scalars: list choices travel JSON-encoded.
    assert dists["policy_kwargs.net_arch"] == d.CategoricalDistribution(["[64, 64]", "[256, 256]"])
    assert build_space({}, {"x": {"uniform": [0, 1], "step": 0.25}}).params[
        0
    ].distribution() == d.FloatDistribution(0, 1, step=0.25)
    assert build_space({}, {"x": {"logint": [1, 64]}}).params[0].distribution() == d.IntDistribution(
        1, 64, log=True
    )


def test_list_choices_round_trip_through_optuna() -> None:
    param = space()["policy_kwargs.net_arch"]
    assert param.encoded
    dist = param.distribution()
    for value in ([64, 64], [256, 256]):
        external = param.encode(value)
        assert external == json.dumps(value)
        internal = dist.to_internal_repr(external)
        assert param.decode(dist.to_external_repr(internal)) == value
    # A stored distribution (as Optuna writes it to the storage) reads back equal.
    assert d.json_to_distribution(d.distribution_to_json(dist)) == dist


def test_mapping_choices_are_encoded_too() -> None:
    param = build_space({}, {"x": {"choice": [{"a": 1}, None]}}).params[0]
    assert param.encoded
    assert param.decode(param.encode({"a": 1})) == {"a": 1}
    assert param.decode(param.encode(None)) is None


@pytest.mark.parametrize("name", ["n_steps", "learning_rate", "batch_size"])
def test_scalar_values_are_not_encoded(name: str) -> None:
    param = space()[name]
    assert not param.encoded
    assert param.encode(512) == 512 and param.decode(512) == 512


def test_mixed_scalar_choices_are_not_encoded() -> None:
    param = build_space({}, {"x": {"choice": [2, "a", None, True]}}).params[0]
    assert not param.encoded
    dist = param.distribution()
    assert dist == d.CategoricalDistribution([2, "a", None, True])
    for value in (2, "a", None, True):  # each comes back as itself (Optuna finds a choice by ==)
        back = param.decode(dist.to_external_repr(dist.to_internal_repr(param.encode(value))))
        assert back == value and type(back) is type(value)


# ---------------------------------------------------------------- grid


def test_grid_values_of_each_kind() -> None:
    s = build_space(
        {},
        {
            "c": {"choice": ["x", "y"]},
            "i": {"int": [1, 3]},
            "j": {"int": [0, 10], "step": 5},
            "f": {"uniform": [0, 0.3], "step": 0.1},
        },
    )
    assert s["c"].grid_values() == ["x", "y"]
    assert s["i"].grid_values() == [1, 2, 3]
    assert s["j"].grid_values() == [0, 5, 10]
    assert s["f"].grid_values() == [0.0, 0.1, 0.2, 0.3]  # rounded: no 0.30000000000000004


def test_grid_order_last_parameter_fastest() -> None:
    s = build_space({"n": {"choice": [1, 2]}}, {"a": {"choice": ["x", "y"]}, "b": {"int": [0, 2]}})
    assert s.grid() == [
        {"trainer.n": 1, "a": "x", "b": 0},
        {"trainer.n": 1, "a": "x", "b": 1},
        {"trainer.n": 1, "a": "x", "b": 2},
        {"trainer.n": 1, "a": "y", "b": 0},
        {"trainer.n": 1, "a": "y", "b": 1},
        {"trainer.n": 1, "a": "y", "b": 2},
        {"trainer.n": 2, "a": "x", "b": 0},
        {"trainer.n": 2, "a": "x", "b": 1},
        {"trainer.n": 2, "a": "x", "b": 2},
        {"trainer.n": 2, "a": "y", "b": 0},
        {"trainer.n": 2, "a": "y", "b": 1},
        {"trainer.n": 2, "a": "y", "b": 2},
    ]


def test_grid_keeps_list_values_plain() -> None:
    s = build_space({}, {"net": {"choice": [[64], [64, 64]]}, "lr": {"choice": [0.1, 0.01]}})
    assert s.grid() == [
        {"net": [64], "lr": 0.1},
        {"net": [64], "lr": 0.01},
        {"net": [64, 64], "lr": 0.1},
        {"net": [64, 64], "lr": 0.01},
    ]


@pytest.mark.parametrize(
    ("index", "n", "expected"),
    [
        (0, 4, (0, 0)),
        (3, 4, (3, 0)),
        (4, 4, (0, 1)),
        (7, 4, (3, 1)),
        (9, 4, (1, 2)),
        (37, 12, (1, 3)),
        (5, 1, (0, 5)),
    ],
)
def test_index_to_run(index: int, n: int, expected: tuple[int, int]) -> None:
    assert index_to_run(index, n) == expected


def test_index_to_run_covers_every_configuration_and_seed_once() -> None:
    n, seeds = 6, 3
    assert sorted(index_to_run(i, n) for i in range(n * seeds)) == [
        (c, s) for c in range(n) for s in range(seeds)
    ]


def test_index_to_run_needs_a_configuration() -> None:
    with pytest.raises(ValueError, match="at least one configuration"):
        index_to_run(0, 0)


# ---------------------------------------------------------------- ids and hashes


def test_config_id_is_stable_and_order_independent() -> None:
    a = {"learning_rate": 0.001, "policy_kwargs.net_arch": [64, 64], "gamma": 0.99}
    b = {"gamma": 0.99, "policy_kwargs.net_arch": [64, 64], "learning_rate": 0.001}
    assert config_id(a) == config_id(b)
    assert len(config_id(a)) == 10
    # Same values on any machine and any run: a fixed digest, not Python's randomised hash.
    assert config_id({"x": 1}) == "c8b0bcdb34"  # sha1('{"x": 1}')
    assert config_id({}) == config_id({})


def test_config_id_differs_between_configurations() -> None:
    ids = {
        config_id(c)
        for c in build_space({}, {"a": {"choice": [1, 2, 3]}, "net": {"choice": [[64], [64, 64]]}}).grid()
    }
    assert len(ids) == 6


def test_space_hash_is_stable() -> None:
    assert space().hash() == space().hash()
    assert len(space().hash()) == 12


@pytest.mark.parametrize(
    "change",
    [
        {"gamma": {"uniform": [0.9, 0.999]}},  # a range bound
        {"gamma": {"loguniform": [0.9, 0.9999]}},  # the scale
        {"batch_size": {"int": [32, 256], "step": 16}},  # the step
        {"n_steps": {"choice": [256, 512, 1024]}},  # a choice
        {"extra": {"choice": [1, 2]}},  # a new parameter
        {"gamma": 0.99},  # a parameter no longer searched
    ],
)
def test_space_hash_changes_with_the_space(change: dict[str, Any]) -> None:
    assert build_space(TRAINER, {**PARAMS, **change}).hash() != space().hash()


def test_space_hash_ignores_plain_values() -> None:
    assert build_space({**TRAINER, "timesteps": 5000}, {**PARAMS, "fixed": 8}).hash() == space().hash()
