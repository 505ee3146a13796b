"""`rlsweep lineage` and `rlsweep replay` on a small toy PBT study (SQLite in tmp_path)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

from rlsweep.analysis import lineage
from rlsweep.cli import main
from rlsweep.config import load_sweep
from rlsweep.examples import toy_pbt
from rlsweep.study import StudyHandle
from tests.strategies.test_pbt_storage import run_in_process, toy_sweep

POPULATION, GENERATIONS = 4, 8


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory: pytest.TempPathFactory) -> StudyHandle:
    """A finished PBT study of 4 members x 8 generations, trained in this process."""
    tmp = tmp_path_factory.mktemp("pbt")
    sweep = toy_sweep("toy", tmp, population=POPULATION, generations=GENERATIONS, synchronous=True,
                      selection="winner_takes_all")  # fmt: skip
    sweep.pop("worker")  # default heartbeats
    return run_in_process(sweep)


def _rows(out: str) -> list[list[str]]:
    """The ancestry table's data rows, split into cells (the changes column may hold spaces)."""
    return [line.split() for line in out.splitlines() if re.match(r"^\d+\s+\d+\s+\d+\s+\d+-\d+", line)]


def test_lineage_prints_the_winners_ancestry(
    toy_study: StudyHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lineage", "toy", "--storage", toy_study.url]) == 0
    out = capsys.readouterr().out
    runs = lineage.population_runs(toy_study.study.get_trials(), toy_study.decode)
    best = lineage.winner(runs)
    assert best.generation == GENERATIONS - 1
    assert best.score == max(
        t.value for t in toy_study.study.get_trials() if t.user_attrs["generation"] == GENERATIONS - 1
    )
    chain = lineage.ancestry(runs, best)
    assert out.splitlines()[0].startswith(f"toy: winner: member {best.member}, run {best.number}, Q = ")
    assert (
        f"ancestry of {GENERATIONS} runs, {sum(r.exploited for r in chain)} exploit(s)" in out.splitlines()[0]
    )
    assert out.splitlines()[1].split() == [
        "gen",
        "run",
        "member",
        "steps",
        "Q",
        "from",
        "h0",
        "h1",
        "changes",
    ]
    rows = _rows(out)
    assert [row[:4] for row in rows] == [
        [str(r.generation), str(r.number), str(r.member), f"{r.start_step}-{r.end_step}"] for r in chain
    ]
    exploits = [r for r in chain if r.exploited]
    assert exploits, "winner_takes_all over 8 generations copies the best every generation"
    for r in exploits:
        assert f"copy m{r.donor} (run {r.donor_run})" in out


def test_lineage_of_a_member_with_a_plot(
    toy_study: StudyHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "lineage.png"
    assert main(["lineage", "toy", "--storage", toy_study.url, "--member", "3", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("toy: member 3, run ")
    assert _rows(out)[-1][2] == "3" and _rows(out)[-1][0] == str(GENERATIONS - 1)
    assert f"wrote {png}" in out and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["lineage", "toy", "--storage", toy_study.url, "--member", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["generation"] for r in rows] == list(range(GENERATIONS)) and rows[-1]["member"] == 3
    assert main(["lineage", "toy", "--storage", toy_study.url, "--member", "9"]) == 2
    assert "--member: member 9 has no finished run; members: [0, 1, 2, 3]" in capsys.readouterr().err


def test_lineage_refuses_a_study_without_a_population(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = {
        "study": "grid",
        "trainer": {"kind": "function", "target": "rlsweep.examples.toy_pbt:train", "timesteps": 4},
        "strategy": {"name": "grid"},
        "params": {"h0": {"choice": [0.5]}},
    }
    StudyHandle.create_or_load(load_sweep(sweep), f"sqlite:///{tmp_path}/g.db")
    assert main(["lineage", "grid", "--storage", f"sqlite:///{tmp_path}/g.db"]) == 2
    assert "study 'grid' uses strategy 'grid'; lineage needs pbt, pb2 or pb2_mixed" in capsys.readouterr().err


def test_replay_retrains_the_schedule_on_fresh_seeds(
    toy_study: StudyHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # worker logs and the child's artifacts go under ./runs
    args = ["replay", "toy", "--storage", toy_study.url, "--seeds", "2", "--workers", "1", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    runs = lineage.population_runs(toy_study.study.get_trials(), toy_study.decode)
    best = lineage.winner(runs)
    chain = lineage.ancestry(runs, best)
    assert out.splitlines()[0] == (
        f"replay of 'toy': run {best.number} (member {best.member}, generation {GENERATIONS - 1}, Q = {best.score:.4g}), "
        f"{GENERATIONS} segment(s), {4 * GENERATIONS} steps"
    )
    assert f"2 fresh seeds {POPULATION}..{POPULATION + 1} per arm -> study 'toy-replay'" in out
    child = StudyHandle.load("toy-replay", toy_study.url)
    trials = child.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(t.user_attrs["seed"] for t in trials) == [4, 4, 5, 5]  # the population used seeds 0..3
    schedule = [t.value for t in trials if child.decode(t.params)["arm"] == "schedule"]
    static = [t.value for t in trials if child.decode(t.params)["arm"] == "static"]
    # The toy problem is deterministic: replaying the schedule reproduces the winner's score exactly,
    # and the static arm is the initial configuration trained for all 32 steps.
    assert schedule == pytest.approx([best.score] * 2, abs=1e-12)
    h = np.array([chain[0].values["h0"], chain[0].values["h1"]])
    theta = 0.9 * (1.0 - 0.02 * h) ** (4 * GENERATIONS)
    assert static == pytest.approx([toy_pbt.q(theta)] * 2, abs=1e-12)
    table = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.startswith(("schedule ", "static "))
    }
    assert table["schedule"][1:4] == ["2", f"{best.score:.4g}", "0"]
    assert table["static"][1] == "2"
    assert re.search(
        r"^difference \(schedule - static\): mean [+-]\S+, IQM [+-]\S+ \((schedule|static) better on the mean\)$",
        out,
        re.M,
    )

    # Again: nothing left to train, the same table; other seeds would change the plan: refused.
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "finished:" not in again and table["schedule"] == next(
        line.split() for line in again.splitlines() if line.startswith("schedule ")
    )
    assert main([*args[:5], "3", *args[6:]]) == 2
    assert "study 'toy-replay' exists with another replay plan" in capsys.readouterr().err
    assert toy_study.study.user_attrs.get("rlsweep:children") in (None, ["toy-replay"])


def test_top_ranks_members_by_their_newest_generation(
    toy_study: StudyHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlsweep.analysis.reseed import reseed_sweep
    from rlsweep.space import config_id

    capsys.readouterr()
    assert main(["top", "toy", "--storage", toy_study.url, "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    runs = lineage.population_runs(toy_study.study.get_trials(), toy_study.decode)
    members = lineage.by_member(runs)
    assert sorted(r["member"] for r in ranked) == list(range(POPULATION))  # members, not generations as seeds
    assert all("n" not in r and r["generations"] == GENERATIONS for r in ranked)
    best = lineage.winner(runs)
    assert (ranked[0]["member"], ranked[0]["run"], ranked[0]["value"]) == (best.member, best.number, best.score)
    values = [r["value"] for r in ranked]
    assert values == sorted(values, reverse=True)
    for r in ranked:
        own = members[r["member"]]
        assert r["exploits"] == sum(g.donor_run is not None for g in own)
        assert r["run"] == own[-1].number and r["values"] == own[-1].values
        assert len(r["schedule"]) == len(lineage.ancestry(runs, own[-1]))
    # The table: members with generations, exploits and schedule, within 100 columns when piped.
    assert main(["top", "toy", "--storage", toy_study.url]) == 0
    out = capsys.readouterr().out
    assert "┃ member" in out and "exploits" in out and "seeds" not in out
    assert max(len(line) for line in out.splitlines()) <= 100
    # reseed --top picks the ranking's first members' newest values.
    child = reseed_sweep(toy_study, 2, 1)
    expected = list(dict.fromkeys(config_id(r["values"]) for r in ranked[:2]))
    assert [config_id(c) for c in child.sweep.strategy.configs] == expected
