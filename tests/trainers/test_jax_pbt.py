"""PBT inside a JAX batch: exploit is an array copy of the donor's slice of the training state (taken
from this process's memory when the donor was trained here, else from its file), explore rewrites the
learning rate in the optimizer state, and a population trained through the worker is recorded
generation by generation like any other. Same tiny shapes as test_jax.py, so the compiled program is
shared within one pytest process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rejax")

import jax  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from rlsweep.cli import main  # noqa: E402
from rlsweep.trainers._base import Decision, RunContext  # noqa: E402
from rlsweep.trainers.jax import JaxTrainer, batch, build  # noqa: E402
from rlsweep.trainers.jax.settings import algo_settings, shape_key  # noqa: E402
from tests.conftest import run_in_process  # noqa: E402
from tests.trainers.test_jax import TINY  # noqa: E402

CONFIG = {"kind": "jax", "algo": "ppo", "env": "CartPole-v1", "timesteps": 128, **TINY}


def context(
    tmp_path: Path, number: int, lr: float, *, start: Path | None = None, seed: int = 0
) -> RunContext:
    folder = tmp_path / str(number)
    folder.mkdir()
    hyper = {"learning_rate": lr}
    recorded: dict[str, Any] = {}
    ctx = RunContext(
        "pbt", number, CONFIG, hyper, hyper, seed, 128, 128, 4, "eval/mean_return", folder,
        lambda step, metrics: Decision.CONTINUE, start_checkpoint=start, start_step=0 if start is None else 128,
        extra=recorded, record=lambda key, value: recorded.__setitem__(key, value),
    )  # fmt: skip
    return ctx


def params_of(state: Any) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(state["actor_ts"]["params"])]


@pytest.mark.slow
def test_exploit_copies_the_donors_slice_and_explore_changes_the_learning_rate(tmp_path: Path) -> None:
    # generation 0: four members; generation 1: two runs continue member 0 (one exploits it), with
    # learning rates 10x apart, on the same seed, so their rollouts start identical
    donors = [context(tmp_path, i, 1e-3, seed=i) for i in range(4)]
    JaxTrainer(CONFIG).train_batch(donors)
    donor = Path(donors[0].extra["model"])
    donor_state = build.from_bytes(donor.read_bytes())["state"]
    lrs = [1e-4, 1e-3, 1e-4, 1e-3]  # four runs: the batch width test_jax.py compiled
    values = [{"learning_rate": lr, "max_grad_norm": 0.5} for lr in lrs]
    copies = [context(tmp_path, 4 + i, lr, start=donor, seed=5) for i, lr in enumerate(lrs)]
    full = [algo_settings(CONFIG, v) for v in values]
    grp = build.group(shape_key(CONFIG, {}), CONFIG, full[0], 4)
    for where in ("memory", "file"):
        if where == "file":
            batch._MEMORY.clear()
        state, sources = batch._start_states(grp, copies, full)
        assert sources == [where] * 4
        for lane in range(4):
            start = build.run_slice(state, lane)
            for got, want in zip(params_of(start), params_of(donor_state), strict=True):
                np.testing.assert_array_equal(got, want)  # the copy is exact
            hyper = start["actor_ts"]["opt_state"]["hyperparams"]
            assert float(hyper["learning_rate"]) == pytest.approx(values[lane]["learning_rate"])
            # the optimizer's moments come with the copy (not reset)
            assert jax.tree.leaves(start["actor_ts"]["opt_state"]) != []
    JaxTrainer(CONFIG).train_batch(copies)
    assert [c.extra["start_from"] for c in copies] == ["file"] * 4
    after = [build.from_bytes(Path(c.extra["model"]).read_bytes())["state"] for c in copies]
    assert [
        float(s["actor_ts"]["opt_state"]["hyperparams"]["learning_rate"]) for s in after
    ] == pytest.approx(lrs)
    moved = [
        sum(float(np.abs(a - b).sum()) for a, b in zip(params_of(s), params_of(donor_state), strict=True))
        for s in after
    ]
    # Adam's steps scale with the learning rate: 10x the rate moves the weights about 10x as far
    assert 8 < moved[1] / moved[0] < 12  # measured: 10.002
    assert moved[2] == pytest.approx(moved[0]) and moved[3] == pytest.approx(
        moved[1]
    )  # same seed, same rate: same run


@pytest.mark.slow
def test_a_population_trains_generation_by_generation_in_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = {
        "study": "pbt-jax",
        "trainer": {**CONFIG, "timesteps": 3 * 512, "batch": 4},
        "eval": {"every": 256, "episodes": 4},
        "objective": {"metric": "eval/mean_return", "mode": "max", "reduce": "last"},
        "strategy": {
            "name": "pbt",
            "population": 4,
            "interval": 512,
            "synchronous": True,
            "selection": "truncation",
        },
        "params": {"learning_rate": {"loguniform": [1e-5, 3e-3]}},
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
    }
    handle = run_in_process(sweep)
    trials = handle.study.get_trials(deepcopy=False)
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    by_generation: dict[int, list[Any]] = {}
    for t in trials:
        by_generation.setdefault(int(t.user_attrs["generation"]), []).append(t)
    assert sorted(by_generation) == [0, 1, 2]
    for generation, runs in by_generation.items():
        assert len({t.user_attrs["batch"]["id"] for t in runs}) == 1  # each generation is one batch
        assert {t.user_attrs["start_from"] for t in runs} == ({"fresh"} if generation == 0 else {"memory"})
        assert all(
            Path(t.user_attrs["model"]).is_file() for t in runs
        )  # every generation's checkpoint is written
        if generation:
            assert all(
                sorted(t.intermediate_values) == [512 * generation + 256, 512 * (generation + 1)]
                for t in runs
            )
    exploited = [t for t in trials if "donor" in t.user_attrs]
    assert exploited  # truncation: the worst member copied the best at each generation
    assert main(["lineage", "pbt-jax", "--storage", sweep["storage"], "--json"]) == 0
    assert '"member"' in capsys.readouterr().out
