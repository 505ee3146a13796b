"""Seed racing: the decision on hand-computed intervals, the settings' exact errors, and a racing
sweep end to end through `rlsweep run` on examples/toy-racing.yaml (a real SQLite study)."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from rlsweep.cli import main
from rlsweep.config import load_sweep
from rlsweep.errors import ConfigError
from rlsweep.strategies.racing import RaceCall, RaceEntry, interval, overlaps, race
from rlsweep.strategies.settings import SeedRange
from tests.conftest import synthetic_sweep

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "toy-racing.yaml"


def test_two_seeds_give_the_interval_between_them() -> None:
    # Resampling two values gives the mean a (1/4), (a+b)/2 (1/2) or b (1/4): the 2.5th and 97.5th
    # percentiles are a and b.
    assert interval([100.0, 110.0]) == (100.0, 110.0)
    assert interval([7.0]) is None and interval([]) is None
    assert interval([5.0, 5.0, 5.0]) == (5.0, 5.0)


def test_overlap_and_a_missing_interval() -> None:
    assert overlaps((0.0, 10.0), (10.0, 20.0)) and not overlaps((0.0, 9.9), (10.0, 20.0))
    assert overlaps(None, (10.0, 20.0))  # one seed has no interval: not separated


def test_the_race_adds_to_what_overlaps_the_leader() -> None:
    entries = [
        RaceEntry("lead", (105.0, 115.0), 2),  # mean 110, [105, 115]: the leader
        RaceEntry("close", (100.0, 110.0), 2),  # [100, 110] overlaps it
        RaceEntry("far", (0.0, 10.0), 2),  # [0, 10]: separated
        RaceEntry("one", (50.0,), 1),  # no interval yet
        RaceEntry("full", (104.0, 106.0, 105.0), 3),  # overlaps, but at max
        RaceEntry("busy", (104.0,), 2, pending=1),  # its second seed still running
        RaceEntry("cut", (1.0, 2.0), 2, pruned=True),
    ]
    calls = race(entries, max_seeds=3, mode="max")
    assert calls["lead"] == RaceCall(True, "leader, [105, 115] still overlapped by 4")
    assert calls["close"] == RaceCall(True, "overlaps the leader: [100, 110] vs the leader's [105, 115]")
    assert calls["far"] == RaceCall(
        False, "separated from the leader at 2 seeds: [0, 10] vs the leader's [105, 115]"
    )
    assert calls["one"] == RaceCall(
        True, "overlaps the leader: no interval (1 seed) vs the leader's [105, 115]"
    )
    assert calls["full"].add is False and calls["full"].reason.startswith(
        "reached max (3 seeds), still overlaps"
    )
    assert calls["busy"] == RaceCall(False, "seeds still running")
    assert calls["cut"] == RaceCall(False, "pruned as a whole")


def test_a_separated_leader_stops_and_min_mode_flips_the_leader() -> None:
    entries = [RaceEntry("a", (10.0, 12.0), 2), RaceEntry("b", (20.0, 22.0), 2)]
    assert race(entries, max_seeds=10, mode="max")["b"] == RaceCall(
        False, "leader, separated from every other configuration at 2 seeds"
    )
    low = race(entries, max_seeds=10, mode="min")
    assert low["a"].reason.startswith("leader, separated") and low["b"].reason.startswith(
        "separated from the leader"
    )


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ({"min": 0, "max": 4, "race": True}, "seeds.min must be at least 1, got 0"),
        ({"min": 3, "max": 2, "race": True}, "seeds.max must be at least seeds.min (3), got 2"),
        (
            {"min": 2, "max": 4},
            "a range of seeds is for racing: add race: true, or give one number (seeds: 2)",
        ),
        ({"min": 2, "maxx": 4, "race": True}, "unknown key 'maxx' in seeds (did you mean 'max'?)"),
        ({"max": 4, "race": True}, "racing needs seeds.min, e.g. seeds: {min: 2, max: 10, race: true}"),
        ({"min": 2.5, "max": 4, "race": True}, "seeds.min must be a whole number, got 2.5"),
        ({"min": 2, "max": 4, "race": "yes"}, "seeds.race must be true or false, got 'yes'"),
    ],
)
def test_bad_racing_settings_exit_2_with_the_fix(
    seeds: dict,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.yaml").write_text(
        yaml.safe_dump(synthetic_sweep("r", tmp_path, strategy={"name": "grid", "seeds": seeds}))
    )
    assert main(["run", "r.yaml", "--quiet"]) == 2
    assert capsys.readouterr().err == f"rlsweep: error: r.yaml: strategy.seeds: {message}\n"
    assert not Path("runs").exists()


def test_racing_is_refused_for_a_population(tmp_path: Path) -> None:
    strategy = {"name": "pbt", "interval": 250, "seeds": {"min": 2, "max": 4, "race": True}}
    with pytest.raises(ConfigError) as err:
        load_sweep(synthetic_sweep("p", tmp_path, strategy=strategy), file="p.yaml")
    assert str(err.value) == (
        "p.yaml: strategy.seeds: racing seeds is for grid, random, tpe, cmaes, gp, qmc, not pbt; give one number of seeds"
    )


def test_racing_settings_round_trip_and_a_number_still_works(tmp_path: Path) -> None:
    loaded = load_sweep(
        synthetic_sweep("r", tmp_path, strategy={"name": "tpe", "seeds": {"min": 2, "max": 6, "race": True}})
    )
    s = loaded.sweep.strategy
    assert s.seeds == SeedRange(2, 6) and (s.first_seeds, s.max_seeds, s.racing) == (2, 6, SeedRange(2, 6))
    assert loaded.to_dict()["strategy"]["seeds"] == {"min": 2, "max": 6, "race": True}
    assert load_sweep(loaded.to_dict()).sweep.strategy.seeds == SeedRange(2, 6)
    plain = load_sweep(synthetic_sweep("r", tmp_path, strategy={"name": "tpe", "seeds": 3})).sweep.strategy
    assert (plain.seeds, plain.first_seeds, plain.racing) == (3, 3, None)


def cli(*args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


def test_a_racing_sweep_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLE, "toy-racing.yaml")
    assert main(["run", "toy-racing.yaml", "--quiet"]) == 0
    ranked = json.loads(cli("top", "toy-racing", "--json", "-n", "100"))
    assert len(ranked) == 8  # every configuration's seeds are over
    seeds = {r["config_id"]: r["n"] for r in ranked}
    assert all(2 <= n <= 8 for n in seeds.values())
    assert max(seeds.values()) > 2 and min(seeds.values()) == 2  # seeds went where the race was close
    for r in ranked:
        reason = r["race_reason"]
        assert reason.startswith(("leader", "separated from the leader", "reached max")), reason
        if r["n"] < 8:
            assert reason.startswith(("separated", "leader, separated")), reason
    assert ranked[0]["race_reason"].startswith("leader")

    import rlsweep

    study = rlsweep.load("toy-racing")
    rows = study.handle.rows()
    raced = [row for row in rows if "race_reason" in row.attrs]
    assert len(raced) == sum(n - 2 for n in seeds.values())  # every added seed says why
    assert all(row.attrs["race_reason"].startswith(("overlaps the leader", "leader,")) for row in raced)
    assert {t.user_attrs.get("race_reason") for t in study.handle.study.get_trials()} >= {
        row.attrs["race_reason"] for row in raced
    }
    assert len({row.key for row in rows}) == len(rows) == sum(seeds.values())

    # The report's top table (built from the same ranking) says how many seeds each got and why.
    from rlsweep.report.html import _group, _top_table

    table = _top_table(_group([], "max", 0, study.ranking()), 10)
    assert "why these seeds (race)" in table
    assert all(r["race_reason"].replace("'", "&#x27;") in table for r in ranked)
