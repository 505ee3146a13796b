"""PBT/PB2 through the real storage and workers, on the PBT paper's toy problem (SQLite in tmp_path).

Checks the population's bookkeeping (each generation of each member exactly once), who copied whom
against that generation's stored scores, that every exploited run restored exactly its donor's
checkpoint, and that Ctrl-C or a SIGKILLed worker mid-generation loses and repeats nothing.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from rlsweep.examples import toy_pbt
from rlsweep.strategies import make_strategy
from rlsweep.strategies.population import rank
from rlsweep.study import StudyHandle
from rlsweep.trainers._base import RunContext
from rlsweep.worker import Worker
from tests.conftest import run_in_process
from tests.faults.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
# Exploits seen by the tests of this module, all checked against their donors (see the last test).
EXPLOITS: list[int] = []


_RUNS_STARTED: list[int] = []


def slow_train(run: RunContext) -> None:
    """The toy trainer, slowed so that a signal lands inside a run (faults tests). In a process
    started with TOY_HANG_AT=n, the n-th run writes its trial number to TOY_HANG_FILE and hangs, so
    a test kills that worker at a known point: mid-training, its trial existing and RUNNING."""
    _RUNS_STARTED.append(run.number)
    if len(_RUNS_STARTED) == int(os.environ.get("TOY_HANG_AT", "0")):
        marker = Path(os.environ["TOY_HANG_FILE"])
        marker.with_suffix(".tmp").write_text(str(run.number))
        marker.with_suffix(".tmp").rename(marker)  # whole, so the test reads the number it waited for
        time.sleep(3600)
    time.sleep(float(run.config.get("sleep", 0.0)))
    toy_pbt.train(run)


def toy_sweep(
    study: str, tmp_path: Path, *, population: int, generations: int, **strategy: Any
) -> dict[str, Any]:
    return {
        "study": study,
        "seed": 0,
        "trainer": {
            "kind": "function",
            "target": "rlsweep.examples.toy_pbt:train",
            "timesteps": 4 * generations,
            "lr": 0.01,
        },
        "eval": {"every": 4},
        "objective": {"metric": "Q", "mode": "max"},
        "strategy": {"name": "pbt", "population": population, "interval": 4, **strategy},
        "params": {"h0": {"uniform": [0.0, 1.0]}, "h1": {"uniform": [0.0, 1.0]}},
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
        "worker": {"heartbeat": 0.2, "lost_after": 2.0},
    }


def run_with_workers(sweep: dict[str, Any], tmp_path: Path, n: int) -> StudyHandle:
    """Queue the population and train it with `n` `rlsweep worker` processes (the local launcher)."""
    from rlsweep.launchers.local import LocalLauncher

    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, sweep["storage"])
    handle.enqueue(make_strategy(loaded).initial_runs())
    launcher = LocalLauncher(tmp_path / "logs")
    launcher.launch(handle.name, handle.url, n)
    launcher.wait(timeout=120)
    assert launcher.exit_codes() == [0] * n, [p.read_text()[-2000:] for p in (tmp_path / "logs").iterdir()]
    return handle


def finished(handle: StudyHandle) -> dict[tuple[int, int], Any]:
    """(member, generation) -> its one COMPLETE trial; fails if any generation completed twice."""
    complete = handle.study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    keys = Counter(t.user_attrs["key"].split("/")[0] for t in complete)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    return {(t.user_attrs["member"], t.user_attrs["generation"]): t for t in complete}


def check_population(handle: StudyHandle, population: int, generations: int) -> dict[tuple[int, int], Any]:
    runs = finished(handle)
    assert sorted(runs) == [(m, g) for m in range(population) for g in range(generations)]
    trials = handle.study.get_trials(deepcopy=False)
    lost = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.user_attrs.get("failure_reason") in ("worker lost", "interrupted") for t in lost)
    assert len(trials) == population * generations + len(lost)
    by_number = {t.number: t for t in trials}
    for (_, g), t in runs.items():
        # Nobody restarted: each run continues its parent's clock (asynchronously a donor's clock
        # may differ from the member's own generation count).
        start = by_number[t.user_attrs["parent"]].user_attrs["start_step"] + 4 if g else 0
        assert t.user_attrs["start_step"] == start
        assert sorted(t.intermediate_values) == [start + 4]
    return runs


def check_checkpoints(handle: StudyHandle, runs: dict[tuple[int, int], Any]) -> int:
    """Every continued run restored exactly the checkpoint it names, which is its parent's (the donor's
    on exploit) and still exists. Returns the number of exploits checked."""
    by_number = {t.number: t for t in handle.study.get_trials(deepcopy=False)}
    exploits = 0
    for (m, g), t in runs.items():
        attrs = t.user_attrs
        if g == 0:
            assert "start_checkpoint" not in attrs and "restored_hash" not in attrs
            continue
        parent = by_number[attrs["parent"]]
        assert parent.state == TrialState.COMPLETE
        assert parent.user_attrs["generation"] == g - 1 or (
            "donor" in attrs and not handle.sweep.strategy.synchronous
        )
        checkpoint = attrs["start_checkpoint"]
        assert checkpoint == parent.user_attrs["checkpoint"] and Path(checkpoint).exists()
        assert attrs["restored_hash"] == toy_pbt.checkpoint_hash(checkpoint)
        if "donor_run" in attrs:
            exploits += 1
            assert attrs["donor_run"] == attrs["parent"]
            assert parent.user_attrs["member"] == attrs["donor"] != m
            assert attrs["changes"][0] == f"exploit: copy member {attrs['donor']} (run {parent.number})"
        else:
            assert parent.user_attrs["member"] == m
            assert handle.decode(t.params) == handle.decode(parent.params)  # no exploit, no explore
    return exploits


def test_toy_population_reaches_the_optimum(tmp_path: Path) -> None:
    """Population 10, 40 ready intervals, 2 worker processes: the PBT paper's toy result."""
    sweep = toy_sweep("toy", tmp_path, population=10, generations=40, synchronous=True)
    handle = run_with_workers(sweep, tmp_path, 2)
    runs = check_population(handle, 10, 40)
    best = max(t.value for t in runs.values())
    assert best >= 1.19
    EXPLOITS.append(check_checkpoints(handle, runs))
    assert EXPLOITS[-1] >= 30


def _scores(runs: dict[tuple[int, int], Any], generation: int) -> dict[str, float]:
    return {str(m): t.value for (m, g), t in runs.items() if g == generation}


def _check_sync(runs: dict[tuple[int, int], Any], population: int, generations: int, selection: str) -> None:
    """Each generation's copies follow from that generation's stored scores."""
    k = min(math.ceil(0.25 * population), population // 2)
    for g in range(generations - 1):
        scores = _scores(runs, g)
        order = rank(scores)
        for m in range(population):
            child = runs[(m, g + 1)].user_attrs
            donor = child.get("donor")
            if selection == "winner_takes_all":
                best = order[0]
                expected = int(best) if scores[best] > scores[str(m)] else None
                assert donor == expected, (g, m, scores)
            else:
                bottom, top = order[-k:], order[:k]
                better = [d for d in top if scores[d] > scores[str(m)]]
                if str(m) in bottom and better:
                    assert str(donor) in better, (g, m, scores)
                else:
                    assert donor is None, (g, m, scores)
            if donor is not None:
                assert child["donor_run"] == runs[(donor, g)].number


def _check_async(
    handle: StudyHandle, runs: dict[tuple[int, int], Any], population: int, selection: str
) -> None:
    """One worker runs one trial at a time and decides right after it, so the scores a decision saw
    are, per member, its newest run numbered up to the deciding run."""
    complete = sorted(runs.values(), key=lambda t: t.number)
    for (m, g), child_trial in runs.items():
        if g == 0:
            continue
        child = child_trial.user_attrs
        deciding = runs[(m, g - 1)]
        latest: dict[str, Any] = {}
        for t in complete:
            if t.number <= deciding.number:
                latest[str(t.user_attrs["member"])] = t
        scores = {mm: t.value for mm, t in latest.items()}
        order = rank(scores)
        donor = child.get("donor")
        if selection == "winner_takes_all":
            best = order[0]
            expected = int(best) if scores[best] > scores[str(m)] else None
            assert donor == expected, (m, g, scores)
        else:
            n = len(order)
            k = min(math.ceil(0.25 * n), n // 2)
            bottom, top = order[n - k :] if k else [], order[:k]
            better = [d for d in top if scores[d] > scores[str(m)]]
            if str(m) in bottom and better:
                assert str(donor) in better, (m, g, scores)
            else:
                assert donor is None, (m, g, scores)
        if donor is not None:
            assert child["donor_run"] == latest[str(donor)].number


@pytest.mark.parametrize("synchronous", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("selection", ["truncation", "winner_takes_all"])
def test_selection_follows_the_stored_scores(tmp_path: Path, synchronous: bool, selection: str) -> None:
    population, generations = 8, 10
    sweep = toy_sweep(
        "sel",
        tmp_path,
        population=population,
        generations=generations,
        synchronous=synchronous,
        selection=selection,
    )
    handle = run_in_process(sweep)
    runs = check_population(handle, population, generations)
    if synchronous:
        _check_sync(runs, population, generations, selection)
    else:
        _check_async(handle, runs, population, selection)
    EXPLOITS.append(check_checkpoints(handle, runs))
    assert EXPLOITS[-1] > 0


def test_explore_only_and_exploit_only_baselines(tmp_path: Path) -> None:
    explore_only = run_in_process(
        toy_sweep("explore", tmp_path / "a", population=6, generations=6, synchronous=True, exploit=False)
    )
    runs = check_population(explore_only, 6, 6)
    assert not any("donor" in t.user_attrs for t in runs.values())
    changed = [t for (m, g), t in runs.items() if g > 0 and t.user_attrs.get("changes")]
    assert len(changed) >= 20  # nearly every member perturbs its own values every interval
    for t in changed:
        parent = explore_only.trial(t.user_attrs["parent"])
        assert parent.user_attrs["member"] == t.user_attrs["member"]
        assert explore_only.decode(t.params) != explore_only.decode(parent.params)

    exploit_only = run_in_process(
        toy_sweep("exploit", tmp_path / "b", population=6, generations=6, synchronous=True, explore=False)
    )
    runs = check_population(exploit_only, 6, 6)
    copied = [t for t in runs.values() if "donor" in t.user_attrs]
    assert copied
    for t in copied:
        assert t.user_attrs["changes"] == [
            f"exploit: copy member {t.user_attrs['donor']} (run {t.user_attrs['donor_run']})"
        ]
        assert exploit_only.decode(t.params) == exploit_only.decode(
            exploit_only.trial(t.user_attrs["donor_run"]).params
        )


@pytest.mark.parametrize("strategy", ["pb2", "pb2_mixed"])
def test_pb2_runs_to_completion_and_logs_its_changes(tmp_path: Path, strategy: str) -> None:
    population, generations = 6, 8
    sweep = toy_sweep(
        "pb2", tmp_path, population=population, generations=generations, synchronous=True, name=strategy
    )
    if strategy == "pb2_mixed":
        sweep["params"]["h_scale"] = {"choice": [0.5, 1.0]}  # the toy trainer ignores it: a bandit arm
    handle = run_in_process(sweep)
    runs = check_population(handle, population, generations)
    EXPLOITS.append(check_checkpoints(handle, runs))
    lines = [
        c for t in runs.values() for c in t.user_attrs.get("changes", []) if not c.startswith("exploit:")
    ]
    assert any(c.endswith("(pb2)") for c in lines), lines
    assert all(c.endswith(("(pb2)", "(bandit)")) for c in lines), lines
    if strategy == "pb2_mixed":
        assert any(c.startswith("h_scale:") and c.endswith("(bandit)") for c in lines), lines
    for t in runs.values():
        values = handle.decode(t.params)
        assert 0.0 <= values["h0"] <= 1.0 and 0.0 <= values["h1"] <= 1.0


# ---------------------------------------------------------------------------------------- faults
def _slow_sweep_file(name: str, tmp_path: Path, population: int, generations: int, sleep: float) -> Path:
    sweep = toy_sweep(
        name, tmp_path, population=population, generations=generations, synchronous=True, workers=2
    )
    sweep["trainer"].update(target="tests.strategies.test_pbt_storage:slow_train", sleep=sleep)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _rlsweep(*args: str, cwd: Path, **env_vars: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env_vars)
    return subprocess.Popen(
        [sys.executable, "-m", "rlsweep", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )




def _load_when_created(name: str, url: str) -> StudyHandle:
    """The study a `rlsweep run` subprocess is creating, once it exists."""
    from rlsweep.errors import RlsweepError

    deadline = time.time() + 60
    while True:
        try:
            return StudyHandle.load(name, url)
        except (RlsweepError, Exception):
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def _complete(handle: StudyHandle) -> int:
    return len(handle.study.get_trials(deepcopy=False, states=[TrialState.COMPLETE]))


def test_ctrl_c_mid_population_then_run_resumes(tmp_path: Path) -> None:
    population, generations = 4, 8
    file = _slow_sweep_file("resume", tmp_path, population, generations, sleep=0.1)
    proc = _rlsweep("run", str(file), "--workers", "2", "--quiet", cwd=tmp_path)
    handle = _load_when_created("resume", f"sqlite:///{tmp_path}/study.db")
    wait_for(lambda: _complete(handle) >= 10, timeout=60.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out.decode()
    before = {
        t.number: t.user_attrs["key"]
        for t in handle.study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    }
    assert 10 <= len(before) < population * generations
    assert not handle.study.get_trials(deepcopy=False, states=[TrialState.RUNNING])

    resumed = _rlsweep("run", str(file), "--workers", "2", "--quiet", cwd=tmp_path)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out.decode()
    runs = check_population(handle, population, generations)  # each generation COMPLETE exactly once
    by_key = {t.user_attrs["key"]: t.number for t in runs.values()}
    for number, key in before.items():  # what finished before Ctrl-C was kept, not repeated
        assert by_key[key] == number
    EXPLOITS.append(check_checkpoints(handle, runs))


def test_sigkilled_worker_mid_generation_loses_nothing(tmp_path: Path) -> None:
    population, generations = 4, 6
    file = _slow_sweep_file("kill", tmp_path, population, generations, sleep=0.25)
    loaded = load_sweep(file)
    handle = StudyHandle.create_or_load(loaded, loaded.sweep.storage or "")
    handle.enqueue(make_strategy(loaded).initial_runs())
    # The victim hangs inside its 4th run (mid-population) and is killed there: no race between
    # looking at the queue and the kill landing.
    marker = tmp_path / "hanging"
    victim = _rlsweep("worker", "--study", "kill", "--storage", handle.url, cwd=tmp_path, TOY_HANG_AT="4", TOY_HANG_FILE=str(marker))
    survivor = _rlsweep("worker", "--study", "kill", "--storage", handle.url, cwd=tmp_path)
    wait_for(marker.exists, timeout=60.0)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    runs = check_population(handle, population, generations)
    failed = handle.study.get_trials(deepcopy=False, states=[TrialState.FAIL])
    assert [t.user_attrs["failure_reason"] for t in failed] == ["worker lost"]
    assert failed[0].number == int(marker.read_text())
    retried = runs[(failed[0].user_attrs["member"], failed[0].user_attrs["generation"])]
    assert retried.user_attrs["key"] == failed[0].user_attrs["key"] + "/retry:1"
    assert retried.user_attrs["seed"] == failed[0].user_attrs["seed"]
    EXPLOITS.append(check_checkpoints(handle, runs))


def test_worker_killed_after_recording_its_result_is_settled_not_rerun(tmp_path: Path) -> None:
    """The window between a run's trial becoming COMPLETE and its queue row becoming done: the
    reaper must settle the row as done (never queue the run again) and queue the next generation
    the dead worker did not get to queue."""
    population, generations = 3, 3
    file = _slow_sweep_file("window", tmp_path, population, generations, sleep=0.0)
    loaded = load_sweep(file)
    handle = StudyHandle.create_or_load(loaded, loaded.sweep.storage or "")
    handle.enqueue(make_strategy(loaded).initial_runs())
    victim = _rlsweep("worker", "--study", "window", "--storage", handle.url, cwd=tmp_path, RLSWEEP_TEST_EXIT_AT="finished")
    victim.wait(timeout=60)
    assert victim.returncode == 137, victim.communicate()[0].decode()
    [row] = handle.rows(["running"])  # its trial ended, its row left behind
    assert handle.trial(row.trial_number).state == TrialState.COMPLETE
    survivor = _rlsweep("worker", "--study", "window", "--storage", handle.url, cwd=tmp_path)
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    runs = check_population(handle, population, generations)  # each generation COMPLETE exactly once
    assert not handle.study.get_trials(deepcopy=False, states=[TrialState.FAIL])
    settled = {r.key: r for r in handle.rows()}
    assert settled[row.key].state == "done" and settled[row.key].trial_number == row.trial_number
    assert not [k for k in settled if "/retry:" in k]
    assert runs[(row.attrs["member"], 0)].number == row.trial_number


def test_at_least_100_exploits_checked_without_a_mismatch() -> None:
    """The tests above check every exploit's restored checkpoint against its donor's (any mismatch
    fails them); together they must have exercised at least 100 exploits."""
    if len(EXPLOITS) < 9:
        pytest.skip("needs the other tests of this module to have run")
    print(f"exploits checked against their donors' checkpoints: {sum(EXPLOITS)} {EXPLOITS}")
    assert sum(EXPLOITS) >= 100, EXPLOITS


@pytest.mark.parametrize("synchronous", [True, False], ids=["sync", "async"])
def test_work_stays_visible_while_a_generation_ends(tmp_path: Path, synchronous: bool) -> None:
    """A worker with nothing to claim leaves when nothing is waiting or running. So when a run
    leaves "running", its successors must already be queued: otherwise another worker polling at
    that moment leaves, and the population finishes on fewer workers (seen with 2 workers)."""
    sweep = toy_sweep("visible", tmp_path, population=3, generations=4, synchronous=synchronous)
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, sweep["storage"])
    handle.enqueue(make_strategy(loaded).initial_runs())
    set_row = handle.set_row
    seen: list[dict[str, int]] = []

    def watched(row_id: int, **values: Any) -> bool:
        changed = set_row(row_id, **values)
        if values.get("state") in ("done", "pruned", "failed"):
            seen.append(handle.row_counts())  # what any other worker would see right now
        return changed

    handle.set_row = watched  # type: ignore[method-assign]
    Worker(handle).loop(poll=0.05)
    assert handle.row_counts() == {"done": 3 * 4}
    assert len(seen) == 3 * 4
    # Until the last generation, every moment a run ends shows work still waiting or running.
    for counts in seen[: -3]:
        assert counts.get("waiting", 0) + counts.get("running", 0) > 0, seen
