"""PBT building blocks on hand-made configurations and score dicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlsweep.space import SearchParam
from rlsweep.strategies.population import (
    Exploit,
    Param,
    describe_change,
    explore,
    judgeable_generation,
    latest_scores,
    rank,
    scores_at,
    select_donor_async,
    truncation,
    winner_takes_all,
)

SPACE = (
    Param("learning_rate", "float", 1e-5, 1e-2, log=True),
    Param("gamma", "float", 0.9, 0.9999),
    Param("clip", "float", 0.1, 0.3, step=0.05),
    Param("n_epochs", "int", 1, 20),
    Param("batch", "int", 32, 256, step=32),
    Param("n_steps", "choice", choices=(256, 512, 1024, 2048)),
    Param("net_arch", "choice", choices=([64, 64], [256, 256]), mutable=False),
    Param("n_envs", "int", 1, 16, mutable=False),
)
CONFIG = {
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "clip": 0.2,
    "n_epochs": 10,
    "batch": 64,
    "n_steps": 512,
    "net_arch": [64, 64],
    "n_envs": 8,
    "not_searched": "kept",
}


def in_space(param: Param, value: object) -> bool:
    if param.kind == "choice":
        return value in param.choices
    if param.kind == "int" and not isinstance(value, int):
        return False
    ok = param.low <= value <= param.high  # type: ignore[operator]
    if param.step:
        ratio = (value - param.low) / param.step  # type: ignore[operator]
        ok = ok and abs(ratio - round(ratio)) < 1e-9
    return ok


@pytest.mark.parametrize("resample", [0.0, 0.25, 1.0])
def test_explore_stays_in_bounds_and_keeps_immutables(resample: float) -> None:
    rng = np.random.default_rng(0)
    config = dict(CONFIG)
    for _ in range(300):
        config, log = explore(config, SPACE, rng, resample_probability=resample)
        for param in SPACE:
            assert in_space(param, config[param.name]), (param.name, config[param.name])
        assert config["net_arch"] == [64, 64] and config["n_envs"] == 8
        assert config["not_searched"] == "kept"
        assert not any(line.startswith(("net_arch", "n_envs")) for line in log)


def test_explore_log_lines_exact() -> None:
    space = (
        Param("learning_rate", "float", 1e-5, 1e-2, log=True),
        Param("n_epochs", "int", 1, 20),
        Param("n_steps", "choice", choices=(512, 1024)),
    )
    config = {"learning_rate": 3e-4, "n_epochs": 10, "n_steps": 512}
    new, log = explore(config, space, np.random.default_rng(1), factors=(0.8,), resample_probability=0.0)
    assert new == {"learning_rate": pytest.approx(2.4e-4), "n_epochs": 8, "n_steps": 1024}
    assert log == [
        "learning_rate: 0.0003 * 0.8 -> 0.00024",
        "n_epochs: 10 * 0.8 -> 8",
        "n_steps: 512 -> 1024 (neighbour)",
    ]
    assert config == {"learning_rate": 3e-4, "n_epochs": 10, "n_steps": 512}  # input untouched


def test_explore_resample_log_and_unchanged_values_not_logged() -> None:
    space = (Param("gamma", "float", 0.9, 0.9999), Param("ent", "float", 0.0, 0.1))
    new, log = explore(
        {"gamma": 0.99, "ent": 0.1}, space, np.random.default_rng(3), factors=(1.2,), resample_probability=0.0
    )
    assert new["ent"] == 0.1 and new["gamma"] == 0.9999  # clipped to the bound
    assert log == ["gamma: 0.99 * 1.2 -> 0.9999"]  # ent was at its bound already: no change, no line
    new, log = explore({"gamma": 0.99}, space[:1], np.random.default_rng(3), resample_probability=1.0)
    assert log == [f"gamma: 0.99 -> {new['gamma']:.4g} (resampled)"]


def test_explore_small_int_moves_one_step_and_choice_end_moves_inward() -> None:
    space = (Param("n", "int", 1, 20), Param("arch", "choice", choices=("small", "big")))
    for seed in range(10):
        new, log = explore(
            {"n": 2, "arch": "big"},
            space,
            np.random.default_rng(seed),
            factors=(1.2,),
            resample_probability=0.0,
        )
        assert new == {"n": 3, "arch": "small"}
        assert log == ["n: 2 * 1.2 -> 3", "arch: big -> small (neighbour)"]
    new, log = explore(
        {"n": 2}, space[:1], np.random.default_rng(0), factors=(0.8,), resample_probability=0.0
    )
    assert new == {"n": 1} and log == ["n: 2 * 0.8 -> 1"]


def test_explore_is_deterministic_with_a_seeded_generator() -> None:
    a = explore(CONFIG, SPACE, np.random.default_rng(42))
    b = explore(CONFIG, SPACE, np.random.default_rng(42))
    assert a == b


def test_explore_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="config has no value for 'gamma'"):
        explore({}, (Param("gamma", "float", 0.9, 0.99),), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"'a' = 3 is not one of its choices \[1, 2\]"):
        explore(
            {"a": 3},
            (Param("a", "choice", choices=(1, 2)),),
            np.random.default_rng(0),
            resample_probability=0.0,
        )


def test_param_of_search_param_and_unit_round_trip() -> None:
    param = Param.of(SearchParam("lr", "float", 1e-4, 1e-1, log=True), mutable=False)
    assert param == Param("lr", "float", 1e-4, 1e-1, log=True, mutable=False)
    assert param.to_unit(1e-4) == 0.0 and param.to_unit(1e-1) == pytest.approx(1.0)
    assert param.from_unit(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))
    assert Param("b", "int", 32, 256, step=32).from_unit(0.3) == 96
    assert describe_change("a", 1.0, 2.5, "pb2") == "a: 1 -> 2.5 (pb2)"


SCORES = {"a": 10.0, "b": 9.0, "c": 8.0, "d": float("nan"), "e": 5.0, "f": 4.0, "g": 7.0, "h": 6.0}


def test_rank_puts_nan_last_and_breaks_ties_by_id() -> None:
    assert rank(SCORES) == ["a", "b", "c", "g", "h", "e", "f", "d"]
    assert rank(SCORES, "min") == ["f", "e", "h", "g", "c", "b", "a", "d"]
    assert rank({"y": 1.0, "x": 1.0}) == ["x", "y"]


def test_truncation_bottom_quarter_copies_top_quarter() -> None:
    exploits = truncation(SCORES, np.random.default_rng(0))
    assert [e.target for e in exploits] == ["d", "f"]  # NaN is the worst
    assert all(e.donor in ("a", "b") for e in exploits)
    donors = {e.donor for seed in range(20) for e in truncation(SCORES, np.random.default_rng(seed))}
    assert donors == {"a", "b"}
    exploits = truncation(SCORES, np.random.default_rng(0), mode="min")
    assert [e.target for e in exploits] == ["d", "a"] and all(e.donor in ("f", "e") for e in exploits)


def test_truncation_small_and_degenerate_populations() -> None:
    rng = np.random.default_rng(0)
    assert truncation({"a": 1.0}, rng) == []
    assert truncation({"a": 1.0, "b": 2.0}, rng) == [Exploit("a", "b")]
    assert truncation({"a": 1.0, "b": 2.0, "c": 3.0}, rng) == [Exploit("a", "c")]  # ceil(0.75) = 1
    assert truncation({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}, rng) == []  # nothing better to copy
    assert truncation({"a": float("nan"), "b": float("nan")}, rng) == []
    assert truncation({"a": float("nan"), "b": 0.0}, rng) == [Exploit("a", "b")]
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 0.5\], got 0.6"):
        truncation(SCORES, rng, fraction=0.6)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'up'"):
        truncation(SCORES, rng, mode="up")  # type: ignore[arg-type]


def test_truncation_is_deterministic_with_a_seeded_generator() -> None:
    many = {f"m{i}": float(i % 7) for i in range(20)}
    assert truncation(many, np.random.default_rng(5), fraction=0.5) == truncation(
        many, np.random.default_rng(5), fraction=0.5
    )


def test_winner_takes_all() -> None:
    exploits = winner_takes_all(SCORES)
    assert exploits[0] == Exploit("d", "a") and {e.donor for e in exploits} == {"a"}
    assert {e.target for e in exploits} == set(SCORES) - {"a"}
    assert winner_takes_all({"a": 2.0, "b": 2.0, "c": 1.0}) == [Exploit("c", "a")]  # b ties with the best
    assert winner_takes_all({"a": 2.0, "b": 1.0}, mode="min") == [Exploit("a", "b")]
    assert winner_takes_all({"a": 1.0}) == []


def test_select_donor_async() -> None:
    rng = np.random.default_rng(0)
    decision = select_donor_async("f", SCORES, rng)
    assert decision is not None and decision.target == "f" and decision.donor in ("a", "b")
    assert select_donor_async("c", SCORES, rng) is None  # middle of the pack
    assert select_donor_async("a", SCORES, rng) is None
    assert select_donor_async("a", {"a": 1.0}, rng) is None
    with pytest.raises(ValueError, match="latest_scores has no score for 'z'"):
        select_donor_async("z", SCORES, rng)


def test_generation_bookkeeping() -> None:
    assert judgeable_generation({"a": 2, "b": 1}, population=3) is None  # c has finished nothing
    assert judgeable_generation({"a": 2, "b": 1, "c": 3}, population=3) == 1
    assert judgeable_generation({"a": 2, "b": 1, "c": 3}, population=3, judged=1) is None
    assert judgeable_generation({"a": -1}, population=1) is None
    results = {"a": {0: 1.0, 1: 3.0}, "b": {0: 2.0}, "c": {}}
    assert scores_at(results, 1) == {"a": 3.0}
    assert latest_scores(results) == {"a": 3.0, "b": 2.0}
