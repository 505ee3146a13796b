"""Progress: the one set of counts the start line and the display show, and the time-left estimate
from finished runs' durations, on hand-made durations."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from optuna.trial import TrialState

from rlsweep.cli import main
from rlsweep.config import load_sweep
from rlsweep.progress import (
    Counts,
    Pruning,
    RunTime,
    Snapshot,
    Work,
    busy_share,
    counts,
    eta_seconds,
    fit_pace,
    pruning_of,
    reports_of,
    run_times,
    snapshot,
    stops,
    time_left,
)
from rlsweep.study import StudyHandle
from tests.conftest import synthetic_sweep


def test_counts_fill_the_plan_with_waiting_runs_and_skip_requeued_history() -> None:
    rows = {"waiting": 12, "done": 3, "lost": 2, "interrupted": 1, "running": 2}
    assert counts(rows, planned=24) == Counts(waiting=19, running=2, done=3, pruned=0, failed=0)
    assert counts(rows) == Counts(waiting=12, running=2, done=3, pruned=0, failed=0)
    assert counts({"waiting": 30}, planned=24).total == 30  # more queued than planned: shown as queued


def test_start_line_and_display_show_the_same_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A sampler with seeds queues the first seeds before the others: the plan is 8, the queue 4.
    monkeypatch.chdir(tmp_path)
    sweep = synthetic_sweep("c", tmp_path, strategy={"name": "tpe", "runs": 8, "seeds": 2})
    Path("s.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["run", "s.yaml", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    start = re.search(r"study 'c' in \S+: (\d+) waiting; starting 1 worker", out)
    shown = re.findall(r"\[c\] (\d+)/(\d+) finished .*running (\d+), waiting (\d+)", out)
    assert start and shown, out
    assert int(start.group(1)) == 8  # not the 4 runs TPE has queued so far
    assert all(
        int(total) == 8 == int(done) + int(running) + int(waiting) for done, total, running, waiting in shown
    )


# ---------------------------------------------------------------- time left

TEN = RunTime(10.0, 1000)  # a run that took 10 s for its 1000 steps


def test_no_estimate_before_a_run_has_finished() -> None:
    assert eta_seconds([], [RunTime(3.0, 0)], 5, 2) is None
    assert eta_seconds([], [], 0, 2) == 0.0
    assert Snapshot(Counts(5, 1, 0, 0, 0), None, 3.0, 0.0, None).eta() == "?"
    assert Snapshot(Counts(0, 0, 6, 0, 0), 1.0, 3.0, 0.0, None).eta() == "0s"


def test_waiting_runs_are_shared_by_the_workers() -> None:
    assert eta_seconds([TEN] * 4, [], 4, 2) == pytest.approx(20.0)
    assert eta_seconds([TEN] * 4, [], 4, 1) == pytest.approx(40.0)
    assert eta_seconds([TEN] * 4, [], 5, 2) == pytest.approx(30.0)  # the odd run ends alone


def test_running_runs_count_what_they_have_left() -> None:
    # Two runs 4 s in (6 s left each), then one more run of 10 s on the first worker free.
    assert eta_seconds([TEN] * 2, [RunTime(4.0, 400)] * 2, 1, 2) == pytest.approx(16.0)
    # A run past the usual duration is expected to end soon: a tenth of a run.
    assert eta_seconds([TEN] * 2, [RunTime(30.0, 900)], 0, 2) == pytest.approx(1.0)


def test_a_success_gate_shortens_runs() -> None:
    # Runs stopped by a gate at 500 of 1000 steps: the next ones are expected to stop there too.
    early = RunTime(5.0, 500)
    assert eta_seconds([early] * 3, [], 2, 2, budget=1000) == pytest.approx(5.0)


def test_where_the_pruning_prior_stops_runs() -> None:
    # Checks at 200, 400, 600, 800; half the runs pass each; the rest go to 1000.
    pruning = Pruning((200, 400, 600, 800), 0.5, startup=5)
    assert stops(pruning, 1000) == [(200, 0.5), (400, 0.25), (600, 0.125), (800, 0.0625), (1000, 0.0625)]
    assert stops(pruning, 500) == [(200, 0.5), (400, 0.25), (500, 0.25)]  # a gate stops runs at 500
    assert stops(Pruning((), 0.5), 1000) == [(1000, 1.0)]


def test_the_longest_run_drawn_decides_the_end() -> None:
    # Runs took 1 s or 3 s; two to come on two workers end with the longer: 3 s unless both
    # take 1 s (a quarter of draws), 2.5 s expected. A mean duration (2 s) would say 2 s.
    assert eta_seconds([RunTime(1.0, 100), RunTime(3.0, 100)], [], 2, 2) == pytest.approx(2.5, abs=0.2)
    # One run in ten took 10 s: two runs to come end at 10 s in 19% of draws.
    finished = [RunTime(1.0, 100)] * 9 + [RunTime(10.0, 100)]
    assert eta_seconds(finished, [], 2, 2) == pytest.approx(0.19 * 10 + 0.81 * 1, abs=0.5)


def test_a_running_run_is_drawn_from_the_durations_longer_than_its_own() -> None:
    # 6 s in: of the runs seen (5 s, 8 s, 12 s) it is one of the last two, 2 s or 6 s left.
    finished = [RunTime(5.0, 100), RunTime(8.0, 100), RunTime(12.0, 100)]
    assert eta_seconds(finished, [RunTime(6.0, 0)], 0, 2) == pytest.approx(4.0, abs=0.5)


def test_a_running_run_goes_on_at_its_own_pace() -> None:
    # Finished runs took 10 s for 1000 steps. A run of a costlier configuration reported step 200
    # 8 s in and is now 9 s in: at 4 s per 100 steps it has 800 steps (32 s) to go from its
    # report, 31 s from now. Drawn from durations alone it would be past them all: 1 s left.
    assert eta_seconds([TEN] * 2, [RunTime(9.0, 200, reported=8.0)], 0, 2) == pytest.approx(31.0)
    assert eta_seconds([TEN] * 2, [RunTime(9.0, 200)], 0, 2) == pytest.approx(1.0)
    # Its last step is drawn from the runs that went past its step: a gate stopped one run at
    # 500; a run at step 600 goes on to 1000 like the other (400 steps at 1 s per 100, less the
    # 0.5 s since its report).
    finished = [RunTime(5.0, 500), TEN]
    assert eta_seconds(finished, [RunTime(6.5, 600, reported=6.0)], 0, 2) == pytest.approx(3.5)
    # At step 200 it stops at 500 or 1000 as they did: 3 s or 8 s left, from 2 s in.
    left = eta_seconds(finished, [RunTime(2.0, 200, reported=2.0)], 0, 2)
    assert left == pytest.approx(5.5, abs=0.6)


def test_configurations_that_cost_more_per_update_make_the_runs_to_come_longer() -> None:
    # Two finished runs of 1000 steps: 0.1 updates per step took 10 s, 0.3 took 20 s, so a step
    # costs 5 ms + 50 ms per update. The pruner's start-up holds 4 runs, drawn at random from a
    # space whose configurations all make 0.5 updates per step (30 ms a step): the two waiting
    # start-up runs take 30 s each, not the 10 or 20 s seen so far.
    cheap, dear = RunTime(10.0, 1000, work=0.1), RunTime(20.0, 1000, work=0.3)
    pace = fit_pace([cheap, dear], [])
    assert pace is not None and pace(0.1) == pytest.approx(0.01) and pace(0.5) == pytest.approx(0.03)
    startup = Pruning((), 1.0, startup=4)
    assert eta_seconds([cheap, dear], [], 2, 2, pruning=startup, unseen=[0.5]) == pytest.approx(30.0)
    # A space of cheap configurations: the dear run's 20 s is taken at the cheap cost.
    assert eta_seconds([cheap, dear], [], 1, 1, pruning=startup, unseen=[0.1]) == pytest.approx(10.0)
    # After the start-up the sampler chooses from what it saw: 10 or 20 s again (15 s on average),
    # as without the costs.
    assert eta_seconds([cheap, dear], [], 1, 1, unseen=[0.5]) == pytest.approx(15.0, abs=1.0)
    assert eta_seconds([cheap, dear], [], 1, 1) == pytest.approx(15.0, abs=1.0)
    # A running run without a report goes at its own configuration's cost: 30 s in all, 5 s in.
    assert eta_seconds([cheap, dear], [RunTime(5.0, 0, work=0.5)], 0, 2, unseen=[0.1]) == pytest.approx(25.0)


def test_costs_are_used_only_where_the_runs_show_them() -> None:
    same = [RunTime(10.0, 1000, work=0.1), RunTime(12.0, 1000, work=0.1)]
    assert fit_pace(same, []) is None  # one kind of configuration: no slope to see
    falling = [RunTime(20.0, 1000, work=0.1), RunTime(10.0, 1000, work=0.3)]
    assert fit_pace(falling, []) is None  # more updates, less time: not a cost of the updates
    unknown = [RunTime(10.0, 1000, work=0.1), RunTime(20.0, 1000)]
    assert fit_pace(unknown, []) is None
    # A running run's pace to its last report counts: 0.3 updates per step at 20 ms a step.
    assert fit_pace([same[0]], [RunTime(5.0, 200, reported=4.0, work=0.3)]) is not None
    # Nothing unseen to weigh (a trainer that does not say): the estimate is the plain one.
    sized = [RunTime(10.0, 1000, work=0.1), RunTime(20.0, 1000, work=0.3)]
    assert eta_seconds(sized, [], 1, 1) == eta_seconds([replace(r, work=None) for r in sized], [], 1, 1)


def test_the_cost_of_a_configuration_comes_from_its_trainer(tmp_path: Path) -> None:
    # The README demo's space (PPO, 8 environments): 10 or 20 epochs of 64 to 256-step batches of
    # 256 to 1024-step rollouts. Trials hold Optuna's encoded params (net_arch as JSON).
    sweep = load_sweep(str(Path(__file__).resolve().parent.parent / "examples" / "cartpole-ppo.yaml"))
    handle = StudyHandle.create_or_load(sweep, f"sqlite:///{tmp_path}/s.db")
    work = Work(handle)
    assert min(work.unseen) == pytest.approx(10 / 256) and max(work.unseen) == pytest.approx(20 / 64)
    params = {"learning_rate": 1e-3, "n_steps": 128, "batch_size": 64, "n_epochs": 20, "gamma": 0.99,
              "gae_lambda": 0.9, "clip_range": 0.2, "ent_coef": 0.0, "policy_kwargs.net_arch": "[64, 64]"}  # fmt: skip
    assert work.of(params) == pytest.approx(20 * 16 / 1024)
    assert work.of({**params, "policy_kwargs.net_arch": "not json"}) is None  # another space's trial
    # A trainer that does not say what a configuration costs: nothing is weighed.
    synthetic = Work(StudyHandle.create_or_load(load_sweep(synthetic_sweep("w", tmp_path)), f"sqlite:///{tmp_path}/w.db"))
    assert synthetic.unseen == [] and synthetic.of({}) is None


def test_pruned_runs_make_the_estimate_shorter() -> None:
    # 5 start-up runs of 10 s (1000 steps), then 3 pruned at step 200 after 2 s each.
    pruning = Pruning((200, 400, 600, 800), 0.5, startup=5)
    finished = [TEN] * 5 + [RunTime(2.0, 200, pruned=True)] * 3
    # A run to come is a judged run (2 s) or, weighed as two runs, the prior: a 10 s run cut at
    # 2, 4, 6 or 8 s (half of them at each check) or not: 2.75 s on average, 5.5 s for 4 runs on
    # 2 workers if all were average, more as the longest decides.
    pruned = eta_seconds(finished, [], 4, 2, budget=1000, pruning=pruning)
    assert pruned is not None and 5.5 < pruned < 10.0
    # Without a pruner every finished run is a sample: 10 s runs are drawn 5 times in 8.
    plain = eta_seconds(finished, [], 4, 2, budget=1000)
    assert plain is not None and plain > 2 * pruned


def test_the_prior_weighs_as_two_configurations() -> None:
    # 5 start-up runs, then one configuration's 2 seeds went to the budget (10 s each). The prior
    # is a 10 s run cut at 2, 4, 6 or 8 s (half at each check) or not: 3.875 s on average. With
    # one seed it weighs as two runs, beside the two judged runs: (2 x 10 + 2 x 3.875) / 4. With 2
    # seeds, the two runs are one configuration's, which the pruner stopped together: one sign of
    # where it stops, not two; the prior weighs as two configurations, 4 runs: (20 + 4 x 3.875) / 6.
    pruning = Pruning((200, 400, 600, 800), 0.5, startup=5)
    finished = [TEN] * 7
    one = eta_seconds(finished, [], 1, 1, budget=1000, pruning=pruning, draws=20000)
    two = eta_seconds(finished, [], 1, 1, budget=1000, pruning=replace(pruning, seeds=2), draws=20000)
    assert one == pytest.approx((20 + 2 * 3.875) / 4, rel=0.03)
    assert two == pytest.approx((20 + 4 * 3.875) / 6, rel=0.03)


def test_before_any_pruning_the_prior_expects_runs_to_be_cut() -> None:
    # Three start-up runs finished, two running (the last start-up runs, 10 s each), four to come
    # that the pruner can stop: 10 s, then 2 x (2 to 10 s) on each worker.
    pruning = Pruning((200, 400, 600, 800), 0.5, startup=5)
    eta = eta_seconds([TEN] * 3, [RunTime(0.0, 0)] * 2, 4, 2, budget=1000, pruning=pruning)
    assert eta is not None and 10.0 + 2 * 3.875 <= eta < 10.0 + 2 * 10.0 - 5
    assert eta_seconds([TEN] * 3, [RunTime(0.0, 0)] * 2, 4, 2, budget=1000) == pytest.approx(30.0)


def test_the_pruning_prior_of_a_sweep() -> None:
    def sweep(pruner: str, seeds: int = 1, **kwargs: float) -> SimpleNamespace:
        return SimpleNamespace(
            strategy=SimpleNamespace(pruner=pruner, pruner_kwargs=kwargs, first_seeds=seeds, max_seeds=seeds),
            eval=SimpleNamespace(every=5000),
            trainer={"timesteps": 40000},
        )

    checks = (5000, 10000, 15000, 20000, 25000, 30000, 35000)
    assert pruning_of(sweep("none")) is None
    assert pruning_of(sweep("median")) == Pruning(checks, 0.5, 5)
    # With seeds the pruner judges configurations: it waits for 5 configurations' seeds, and a run
    # passes a check only if the judgment at each seed's report passes (bench/eta.py on the demo).
    assert pruning_of(sweep("median", seeds=2)) == Pruning(checks, 0.25, 10, seeds=2)
    assert pruning_of(sweep("percentile", seeds=3, percentile=10.0)) == Pruning(
        checks, pytest.approx(0.729), 15, seeds=3
    )
    assert pruning_of(sweep("percentile", percentile=10.0, n_startup_trials=2)) == Pruning(checks, 0.9, 2)
    assert pruning_of(sweep("asha")) == Pruning((5000, 20000), 0.25)
    assert pruning_of(sweep("asha", seeds=2)) == Pruning((5000, 20000), 0.25, seeds=2)
    assert pruning_of(sweep("hyperband", min_resource=1000)) == Pruning((1000, 3000, 9000, 27000), 1 / 3)


def test_time_left_replayed_at_an_earlier_moment() -> None:
    # Two runs started at 0 s and ended at 10 s and 20 s. At 15 s the second is still running:
    # past every duration seen, so a tenth of a run (1 s) is left; the waiting run takes 10 s on
    # the free worker. The workers spent 25 of their 30 s in runs: 10 s / (25/30).
    t0 = dt.datetime(2026, 1, 1)
    trials = [
        SimpleNamespace(
            number=number, datetime_start=t0, datetime_complete=t0 + dt.timedelta(seconds=end),
            state=TrialState.COMPLETE, intermediate_values={1000: 1.0},
        )
        for number, end in enumerate((10, 20))
    ]  # fmt: skip
    sweep = SimpleNamespace(
        strategy=SimpleNamespace(pruner="none", pruner_kwargs={}), eval=SimpleNamespace(every=500), trainer={}
    )
    at = t0 + dt.timedelta(seconds=15)
    assert time_left(trials, sweep, 1, 2, since=t0, now=at) == pytest.approx(12.0)
    # With its evaluations' wall times: at 15 s the second run had reported step 500 at 12 s (the
    # report at 20 s had not come); at 2.4 s per 100 steps it has 12 s to go from then, 9 s from
    # now, and its 1000 steps end at 24 s.
    stamp = t0.timestamp()
    reports = {1: [(500, stamp + 12.0), (1000, stamp + 20.0)]}
    assert time_left(trials, sweep, 0, 2, since=t0, now=at, reports=reports) == pytest.approx(9.0 / (25 / 30))
    assert time_left(trials, sweep, 0, 2, since=t0, now=at) == pytest.approx(1.0 / (25 / 30))
    assert time_left(trials, sweep, 0, 2, since=t0, now=t0 + dt.timedelta(seconds=25)) == 0.0


def test_the_display_reads_the_running_runs_evaluations(tmp_path: Path) -> None:
    # A real SQLite study: one run finished at step 1000, one running has reported steps 100 and
    # 200 (and a metric that is not the objective), one running has reported nothing.
    handle = StudyHandle.create_or_load(load_sweep(synthetic_sweep("p", tmp_path)), f"sqlite:///{tmp_path}/s.db")
    done = handle.create_trial({}, {"seed": 0})
    handle.record_evaluation(done, 1000, {"eval/mean_return": 3.0}, 3.0)
    handle.finish(done, TrialState.COMPLETE, 3.0)
    before = dt.datetime.now().timestamp()
    running, quiet = handle.create_trial({}, {"seed": 1}), handle.create_trial({}, {"seed": 2})
    for step in (100, 200):
        handle.record_evaluation(running, step, {"eval/mean_return": 1.0, "train/loss": 0.5}, 1.0)
    reports = reports_of(handle, [running.number, quiet.number])
    assert list(reports) == [running.number] and [s for s, _ in reports[running.number]] == [100, 200]
    assert all(before <= wall <= dt.datetime.now().timestamp() for _, wall in reports[running.number])
    assert reports_of(handle, []) == {}
    assert len(reports_of(handle)[done.number]) == 1  # all runs
    finished, (at_200, silent) = run_times(handle.get_trials(), reports=reports)
    assert [r.steps for r in finished] == [1000] and (at_200.steps, silent.steps) == (200, 0)
    assert 0.0 < at_200.reported <= at_200.seconds and silent.reported == 0.0
    # The display's snapshot reads them itself (a failing read would raise here).
    shot = snapshot(handle, started=before - 1.0, finished_at_start=0, planned=3, workers=2)
    assert shot.eta_s is not None and shot.eta_s >= 0.0


def test_time_between_runs_stretches_the_estimate() -> None:
    # Two workers for 10 s, runs inside them for 5 s each: half their time went between runs.
    assert busy_share([RunTime(3.0, 100), RunTime(2.0, 100)], [RunTime(5.0, 50)], 2, 10.0) == pytest.approx(
        0.5
    )
    assert busy_share([], [], 2, 10.0) == 1.0
    assert busy_share([RunTime(30.0, 100)], [], 2, 10.0) == 1.0  # never above 1
    assert eta_seconds([TEN] * 4, [], 4, 2, busy=0.5) == pytest.approx(40.0)


def test_quiet_prints_no_progress_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(yaml.safe_dump(synthetic_sweep("q", tmp_path)))
    assert main(["run", "s.yaml", "--workers", "1", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "study 'q' in sqlite:///runs/q/study.db: 6 waiting; starting 1 worker(s)"
    assert (
        lines[1].startswith("finished: 6/6 finished (done 6, pruned 0, failed 0)")
        and lines[2] == "next: rlsweep top q"
    )
    assert len(lines) == 3


def test_a_display_that_cannot_read_the_study_does_not_end_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real SQLite study whose queue table is out of reach for a while (renamed): each refresh in
    # that time fails inside the database, is said once on stderr and skipped; then lines come back.
    import sqlite3

    from rlsweep.progress import Progress

    db = tmp_path / "s.db"
    handle = StudyHandle.create_or_load(load_sweep(synthetic_sweep("v", tmp_path)), f"sqlite:///{db}")
    display = Progress(handle, every=0.0, planned=6, workers=1)
    display.update()
    assert "[v] 0/6 finished" in capsys.readouterr().out
    table = handle.runs_table.name
    with sqlite3.connect(db) as con:
        con.execute(f"ALTER TABLE {table} RENAME TO hidden")
    with display:
        display.update()
        display.update()
    shown = capsys.readouterr()
    assert shown.out == ""
    assert shown.err.count("[v] progress not shown (OperationalError: no such table") == 1, shown.err
    assert "the runs go on" in shown.err
    with sqlite3.connect(db) as con:
        con.execute(f"ALTER TABLE hidden RENAME TO {table}")
    display.update()
    assert "[v] 0/6 finished" in capsys.readouterr().out
