"""`--shard K/N` for mature and render: the split (disjoint, complete, balanced), the exit-2 errors,
and three real `rlsweep mature --shard k/3` (then `rlsweep render --mature --shard k/3`) processes
at once on one SQLite study: every policy evaluated exactly once, every result visible afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlsweep.analysis.shards import Shard, parse_shard
from rlsweep.cli import main
from rlsweep.errors import ConfigError

BAD = (
    "{flag} must be K/N, shard K of N counted from 0 (0 <= K < N), e.g. {flag} 0/8 ... {flag} 7/8 "
    "or {flag} $SLURM_ARRAY_TASK_ID/8 with --array=0-7; got {got!r}"
)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_are_disjoint_complete_and_balanced(n: int) -> None:
    items = [("b", 4), ("a", 9), ("a", 1), ("c", 0), ("a", 3), ("b", 2), ("c", 5)]
    parts = [Shard(k, n).take(items, key=lambda item: item) for k in range(n)]
    taken = [item for part in parts for item in part]
    assert sorted(taken) == sorted(items)  # every item once
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # the given order is kept inside a shard, and a reordered input gives the same shards
    for part in parts:
        assert part == [item for item in items if item in part]
    again = [Shard(k, n).take(list(reversed(items)), key=lambda item: item) for k in range(n)]
    assert [sorted(p) for p in again] == [sorted(p) for p in parts]


def test_parse_shard() -> None:
    assert parse_shard("2/8") == Shard(2, 8)
    assert parse_shard(" 0 / 1 ") == Shard(0, 1)
    assert parse_shard((1, 3)) == Shard(1, 3)
    assert parse_shard(None) is None
    assert str(Shard(3, 8)) == "3/8"
    for text in ("3/3", "x", "1", "-1/3", "1/0", "1/2/3", "a/b", ""):
        with pytest.raises(ConfigError) as excinfo:
            parse_shard(text)
        assert str(excinfo.value) == BAD.format(flag="--shard", got=text)


@pytest.mark.parametrize("command", [["mature", "nowhere", "--threshold", "1"], ["render", "nowhere", "--mature"]])
@pytest.mark.parametrize("value", ["3/3", "x"])
def test_a_bad_shard_is_exit_2_before_the_study_is_opened(
    command: list[str], value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--shard", value]) == 2
    err = capsys.readouterr().err
    assert BAD.format(flag="--shard", got=value) in err
    assert "nowhere" not in err  # the shard is judged first: no "study not found"
    assert not Path("runs").exists()


# ------------------------------------------------------------------ real processes, one study
SWEEP = {
    "study": "sh",
    "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 128, "n_envs": 1},
    "eval": {"every": 128, "episodes": 1},
    "strategy": {"name": "grid", "seeds": 2},
    "params": {"n_steps": {"choice": [64]}, "batch_size": {"choice": [32, 64]}, "gamma": {"choice": [0.9, 0.99]}},
}
POLICIES = 8  # 4 configurations x 2 seeds
EPISODES = 2


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rlsweep", *args], cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _all_at_once(commands: list[list[str]], cwd: Path) -> list[str]:
    """Start every command before waiting for any; each must exit 0. Returns their outputs."""
    procs = [_cli(*c, cwd=cwd) for c in commands]
    outputs = []
    for proc, command in zip(procs, commands, strict=True):
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{out}"
        outputs.append(out)
    return outputs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny SB3 study (8 saved policies) in runs/sh/study.db under its own folder."""
    folder = tmp_path_factory.mktemp("shards")
    (folder / "s.yaml").write_text(yaml.safe_dump(SWEEP))
    proc = _cli("run", "s.yaml", "--workers", "2", "--quiet", cwd=folder)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    return folder


@pytest.mark.slow
def test_three_mature_shards_at_once_evaluate_every_policy_exactly_once(
    trained: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlsweep.api import Study
    from rlsweep.study import StudyHandle

    args = ["--threshold", "15", "--episodes", str(EPISODES), "--workers", "1"]
    outputs = _all_at_once([["mature", "sh", *args, "--shard", f"{k}/3"] for k in range(3)], trained)
    for k, out in enumerate(outputs):
        assert f"shard {k}/3: {3 if k < 2 else 2} of {POLICIES} policies" in out, out
        assert "all shards so far:" in out

    handle = StudyHandle.load("sh", f"sqlite:///{trained}/runs/sh/study.db")
    rows = handle.metrics(names=["mature/return"])
    per_run: dict[int, list[int]] = {}
    for r in rows:
        per_run.setdefault(r["trial_number"], []).append(r["step"])
    # exactly once: one evaluation's episodes per policy, no policy's written by two shards
    assert {run: sorted(steps) for run, steps in per_run.items()} == {run: [0, 1] for run in range(POLICIES)}
    stored = {key: value for key, value in handle.study.user_attrs.items() if key.startswith("rlsweep:mature:")}
    assert len(stored) == POLICIES and all(v["evaluated"] for v in stored.values())
    by_shard: dict[str, set[int]] = {}
    for v in stored.values():
        by_shard.setdefault(v["shard"], set()).add(v["run"])
    assert sorted(by_shard) == ["0/3", "1/3", "2/3"]
    assert sorted(run for runs in by_shard.values() for run in runs) == list(range(POLICIES))

    # every shard's verdicts together, wherever they were judged
    results = Study(handle).mature_results()
    assert sorted(results["run"]) == list(range(POLICIES))
    assert results.attrs["request"] == {"threshold": 15.0, "statistic": "mean", "episodes": EPISODES, "source": "auto"}
    for v in stored.values():
        assert v["score"] == pytest.approx(sum(v["returns"]) / EPISODES)
        assert v["mature"] == (v["score"] >= 15)
    mature_runs = sorted(int(v["run"]) for v in stored.values() if v["mature"])

    # the report lists every shard's mature policies
    monkeypatch.chdir(trained)
    assert main(["report", "sh"]) == 0
    text = (trained / "runs/sh/report/index.html").read_text()
    assert f"{len(mature_runs)} of {POLICIES} policies (3 shards) have mean return &gt;= 15.0" in text

    # asked again unsharded: nothing is evaluated, the same verdicts, a complete index
    capsys.readouterr()
    assert main(["mature", "sh", *args]) == 0
    out = capsys.readouterr().out
    assert "evaluating" not in out
    assert f"{len(mature_runs)} of {POLICIES} policies mature" in out
    assert len(handle.metrics(names=["mature/return"])) == POLICIES * EPISODES
    index = json.loads((trained / "runs/sh/mature/index.json").read_text())
    assert sorted(v["run"] for v in index["mature"]) == mature_runs
    assert len(index["evaluated"]) == POLICIES

    # more shards than policies: a shard with none has nothing to do, and says so
    assert main(["mature", "sh", *args, "--shard", "9/10"]) == 0
    out = capsys.readouterr().out
    assert f"shard 9/10: 0 of {POLICIES} policies" in out
    assert f"shard 9/10: none of the {POLICIES} policies of 'sh' is evaluated by this shard" in out


@pytest.mark.slow
def test_three_render_shards_record_every_file_in_the_study(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlsweep.api import Study
    from rlsweep.study import StudyHandle

    # all 4 configurations' 8 policies, split between 3 shards (one writes elsewhere); `--top`, not
    # `--mature`, so this test does not depend on the one above
    small = ["--size", "64x48", "--max-steps", "20", "--workers", "1"]
    commands = [["render", "sh", "--top", "4", *small, "--shard", f"{k}/3"] for k in range(3)]
    commands[2] += ["--out", "elsewhere"]
    outputs = _all_at_once(commands, trained)
    for k, out in enumerate(outputs):
        assert f"shard {k}/3: {3 if k < 2 else 2} of {POLICIES} render jobs" in out, out

    handle = StudyHandle.load("sh", f"sqlite:///{trained}/runs/sh/study.db")
    files = Study(handle).rendered()
    assert sorted(files["run"]) == list(range(POLICIES))  # each policy rendered once, by one shard
    assert sorted(files["shard"].value_counts().items()) == [("0/3", 3), ("1/3", 3), ("2/3", 2)]
    for path, shard in zip(files["path"], files["shard"], strict=True):
        assert Path(path).is_file() and Path(path + ".json").is_file()
        assert (Path(path).parent == (trained / "elsewhere").resolve()) == (shard == "2/3")

    # the report's gallery shows all 8, the files outside runs/sh/render included
    monkeypatch.chdir(trained)
    assert main(["report", "sh"]) == 0
    text = (trained / "runs/sh/report/index.html").read_text()
    assert "8 rendered episodes, best configuration first." in text
