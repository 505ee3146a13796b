"""A database server that goes away for a moment (a restart, a failover) does not end a sweep: the
supervisor and its workers wait for it and go on, no run fails and every configuration ends done. A
server never reached fails at once. The outage is a real one between real processes and the real
server: a relay (netcut.Relay) drops their connections and refuses new ones."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import server_url, synthetic_sweep
from tests.faults.helpers import rlsweep_env, wait_for
from tests.faults.netcut import Relay


def _upstream(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return str(parsed.host), int(parsed.port or (5432 if parsed.get_backend_name() == "postgresql" else 3306))


@pytest.fixture(params=["postgres", "mysql"])
def server(request: pytest.FixtureRequest) -> str:
    return server_url(request.param)


@pytest.fixture
def relay(server: str):  # type: ignore[no-untyped-def]
    r = Relay(_upstream(server))
    yield r
    r.close()


def _outage_sweep(study_name: str, tmp_path: Path, url: str, sleep: float, **overrides: Any) -> None:
    """A sweep through the relay, written to sweep.yaml: 2 workers, runs of 10 evaluations `sleep`
    s apart (training when the server goes)."""
    sweep = synthetic_sweep(
        study_name,
        tmp_path,
        storage=url,
        trainer__timesteps=2000,
        trainer__sleep=sleep,
        eval__every=200,
        strategy__workers=2,
        worker__heartbeat=0.5,
        **overrides,
    )
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))


class _Done:
    """How many of the study's runs are done, read past the relay: the outage is between the sweep
    and the server, not the test. One handle once the study exists (each load opens a connection
    of its own)."""

    def __init__(self, study_name: str, server: str) -> None:
        self.study_name, self.server = study_name, server
        self.handle: Any = None

    def __call__(self) -> int:
        from rlsweep import states
        from rlsweep.study import StudyHandle

        time.sleep(0.2)
        if self.handle is None:
            try:
                self.handle = StudyHandle.load(self.study_name, self.server)
            except Exception:  # the study is not created yet
                return 0
        return int(self.handle.row_counts().get(states.DONE, 0))


def test_a_sweep_rides_out_a_storage_outage(tmp_path: Path, study_name: str, server: str, relay: Relay) -> None:
    from optuna.trial import TrialState

    from rlsweep import states
    from rlsweep.study import StudyHandle

    _outage_sweep(study_name, tmp_path, relay.url(server), 0.15, strategy__runs=12, worker__lost_after=5.0)
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlsweep", "run", "sweep.yaml"], cwd=tmp_path, env=rlsweep_env(), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        done = _Done(study_name, server)
        wait_for(lambda: done() >= 3 or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, out.read_text()
        relay.cut(4.0)  # every connection of the supervisor and both workers dropped; new ones refused
        assert proc.wait(timeout=180) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert relay.dropped >= 1
    assert "unreachable" in text and "waiting up to" in text and "reachable again" in text, text
    handle = StudyHandle.load(study_name, server)
    rows = handle.rows()
    # Every configuration done once; nothing failed. A worker cut off in the middle of a write that
    # cannot be repeated safely exits and its run is queued again (lost, then done as a retry): at
    # most once per worker, and only as "worker lost".
    done = sorted(r.key.partition("/retry:")[0] for r in rows if r.state == states.DONE)
    assert done == sorted({r.key.partition("/retry:")[0] for r in rows}) and len(done) == 12, [(r.key, r.state) for r in rows]
    again = [r for r in rows if r.state != states.DONE]
    assert all(r.state == states.LOST for r in again) and len(again) <= 2, [(r.key, r.state, r.attrs) for r in again]
    trials = handle.get_trials(deepcopy=False)
    assert 12 <= len(trials) <= 12 + len(again), [t.state for t in trials]  # a run lost before its trial has none
    lost = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.FAIL and states.WORKER_LOST in str(t.user_attrs.get("failure_reason")) for t in lost), [
        (t.state, t.user_attrs) for t in lost
    ]
    logs = "".join(p.read_text() for p in (tmp_path / "runs" / study_name / "logs").glob("*.log"))
    assert "unreachable" in logs, logs  # the workers, too, met the outage and waited


def test_an_outage_longer_than_the_wait_fails_the_query(server: str, relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa
    from sqlalchemy.exc import OperationalError

    from rlsweep import storage

    monkeypatch.setattr(storage, "_OUTAGE", [0.0])  # this test's outage is not one for the later tests' reapers
    url = relay.url(server)
    engine = sa.create_engine(url, **storage._engine_kwargs(url))
    storage.wait_for_server(engine)
    try:
        with engine.connect() as con:
            assert con.execute(sa.text("SELECT 1")).scalar() == 1
        cut = threading.Thread(target=relay.cut, args=(3.0,))

        monkeypatch.setenv("RLSWEEP_STORAGE_WAIT", "0.5")
        cut.start()
        time.sleep(0.3)
        began = time.monotonic()
        with pytest.raises(OperationalError):
            with engine.connect() as con:
                con.execute(sa.text("SELECT 1"))
        assert time.monotonic() - began < 2.5  # gave up after its wait, before the server came back
        cut.join()

        cut = threading.Thread(target=relay.cut, args=(2.0,))
        monkeypatch.setenv("RLSWEEP_STORAGE_WAIT", "30")
        cut.start()
        time.sleep(0.3)
        with engine.connect() as con:  # waits out the rest of the cut
            assert con.execute(sa.text("SELECT 1")).scalar() == 1
        cut.join()
    finally:
        engine.dispose()


def test_an_outage_longer_than_the_wait_stops_the_sweep_with_a_clear_error_and_loses_nothing(
    tmp_path: Path, study_name: str, server: str, relay: Relay
) -> None:
    """The server stays away longer than $RLSWEEP_STORAGE_WAIT: `rlsweep run` stops with exit 1
    and says so (not "internal error"), and the same command, run again once the server is back,
    finishes the study with every run recorded before the outage kept."""
    from rlsweep import states
    from rlsweep.study import StudyHandle

    _outage_sweep(study_name, tmp_path, relay.url(server), 0.1, strategy__runs=8, worker__lost_after=3.0)
    env = rlsweep_env(RLSWEEP_STORAGE_WAIT="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", "sweep.yaml"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        done = _Done(study_name, server)
        wait_for(lambda: done() >= 3 or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, proc.communicate()
        relay.cut(120.0, wait=False)  # far longer than the 1 s the processes wait: until they have stopped
        before = done()
        out, err = proc.communicate(timeout=120)
        # Its workers, told to stop, cannot record that either: they too give up and exit, their
        # runs left for the next run to queue again (a worker still settling when the server comes
        # back would record its run as interrupted, as after Ctrl-C).
        time.sleep(4.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        relay.back.set()
    assert proc.returncode == 1, out + err
    assert "internal error" not in err, err
    assert "unreachable for more than 1 s" in err and "RLSWEEP_STORAGE_WAIT" in err and "run the same command again" in err, err
    assert f"***@127.0.0.1:{relay.port}/" in err, err  # the storage named, its password masked
    kept = {r.key for r in done.handle.rows([states.DONE])}
    assert len(kept) >= before >= 3
    wait_for(lambda: relay.listener is not None, timeout=10)  # the server is back
    again = subprocess.run([sys.executable, "-m", "rlsweep", "run", "sweep.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = StudyHandle.load(study_name, server).rows()
    finished = {r.key for r in rows if r.state == states.DONE}
    assert kept <= finished, "a run recorded before the outage was trained again"
    assert {r.key.partition("/retry:")[0] for r in rows if r.state == states.DONE} == {r.key.partition("/retry:")[0] for r in rows}
    assert len({r.key.partition("/retry:")[0] for r in rows}) == 8
    # No run failed for the outage: those cut off were queued again (as lost or interrupted).
    assert all(r.state in (states.DONE, states.LOST, states.INTERRUPTED) for r in rows), [(r.key, r.state, r.attrs) for r in rows]
    for trial in StudyHandle.load(study_name, server).get_trials(deepcopy=False):
        reason = str(trial.user_attrs.get("failure_reason"))
        assert trial.state.name == "COMPLETE" or reason.startswith(states.REQUEUED_REASONS), (trial.number, trial.state, reason)
    logs = "".join(p.read_text() for p in (tmp_path / "runs" / study_name / "logs").glob("*.log"))
    assert "internal error" not in logs and "unreachable for more than 1 s" in logs, logs  # the workers said it too


def test_a_server_never_reached_fails_at_once(tmp_path: Path, study_name: str, server: str) -> None:
    """Nothing listens on the port: a wrong URL is the user's to fix, and is said before any run,
    not waited for."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = Relay(("127.0.0.1", port))  # only for its URL rewriting
    url = relay.url(server).replace(f":{relay.port}", f":{port}")
    relay.close()
    sweep = synthetic_sweep(study_name, tmp_path, storage=url)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rlsweep", "run", "sweep.yaml"], cwd=tmp_path, env=rlsweep_env(), capture_output=True, text=True, timeout=120
    )
    took = time.monotonic() - began
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot open storage" in proc.stderr and f":{port}" in proc.stderr, proc.stderr
    assert "waiting up to" not in proc.stderr
    assert took < 60, took  # far below the 120 s a known server is waited for


def test_a_result_cut_off_while_recorded_ends_the_worker_and_is_settled(
    tmp_path: Path, study_name: str, server: str, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops in the middle of recording a run's result: the worker cannot know
    whether it was recorded, so it exits (its launcher replaces it) instead of going on while the
    run's row stays running under it, which kept a sweep from ever ending. The next worker's reaper
    settles the run. The drop is made at the statement that ends the trial, once."""
    import sqlalchemy as sa

    from rlsweep import states, storage
    from rlsweep.config import load_sweep
    from rlsweep.strategies import make_strategy
    from rlsweep.study import StudyHandle
    from rlsweep.worker import Worker

    monkeypatch.setattr(storage, "_OUTAGE", [0.0])  # this test's outage is not one for the later tests' reapers
    url = relay.url(server)
    loaded = load_sweep(synthetic_sweep(study_name, tmp_path, storage=url, strategy__runs=3, worker__lost_after=1.0))
    handle = StudyHandle.create_or_load(loaded, url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    cuts: list[str] = []

    def cut_at_the_end_of_a_trial(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if not cuts and statement.startswith("UPDATE trials SET state") and "datetime_complete" in statement:
            cuts.append(statement)
            relay.cut(1.0, wait=False)  # this statement's connection is gone when it is sent

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", cut_at_the_end_of_a_trial)
    try:
        with pytest.raises(Exception) as err:
            Worker(handle).loop(max_runs=1)  # (one run: a worker that went on would wait on it for good)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", cut_at_the_end_of_a_trial)
    assert cuts and storage.is_dropped(err.value), err.value
    held = [r for r in handle.rows() if r.state == states.RUNNING]
    assert len(held) == 1, [(r.key, r.state) for r in handle.rows()]
    assert Worker(handle).loop() >= 2  # the replacement reaps the held run, then trains what is left
    rows = handle.rows()
    assert sorted({r.key.partition("/retry:")[0] for r in rows if r.state == states.DONE}) == sorted(
        {r.key.partition("/retry:")[0] for r in rows}
    ), [(r.key, r.state) for r in rows]
    assert not [r for r in rows if r.state in (states.RUNNING, states.WAITING)]
