"""A run stopped by a signal (preemption, a time limit, Ctrl-C) continues from its last periodic
checkpoint when it is trained again, with its learning curve so far, instead of starting over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from rlsweep.strategies import make_strategy
from rlsweep.study import StudyHandle
from rlsweep.worker import Worker

pytest.importorskip("stable_baselines3")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_interrupted_sb3_run_resumes_from_its_last_checkpoint(tmp_path: Path, study_name: str) -> None:
    url = f"sqlite:///{tmp_path}/study.db"
    sweep = {
        "study": study_name,
        "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 6000},
        "eval": {"every": 192, "episodes": 2},
        "strategy": {"name": "grid"},
        "params": {"n_steps": 96, "batch_size": 48, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}},
        "checkpoint": {"every": 384},
        "storage": url,
        "artifacts": str(tmp_path / "artifacts"),
    }
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "worker", "--study", study_name, "--storage", url],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline:
        trials = handle.study.get_trials(deepcopy=False)
        if trials and len(trials[0].user_attrs.get("checkpoints") or []) >= 2:
            break
        time.sleep(0.2)
    else:
        worker.kill()
        raise AssertionError(worker.communicate()[0].decode())
    worker.send_signal(signal.SIGINT)  # what a preemption's SIGTERM does too
    out = worker.communicate(timeout=120)[0].decode()
    assert worker.returncode == 130, out
    first = handle.trial(0)
    assert (first.state, first.user_attrs["failure_reason"]) == (TrialState.FAIL, "interrupted")
    last_checkpoint = first.user_attrs["checkpoints"][-1]
    step = int(Path(last_checkpoint).stem.removeprefix("step_"))
    assert step >= 768

    Worker(handle).loop(poll=0.05)
    retry = handle.trial(1)
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed_from"] == {"run": 0, "checkpoint": last_checkpoint, "step": step}
    before = {s: v for s, v in first.intermediate_values.items() if s <= step}
    assert {s: v for s, v in retry.intermediate_values.items() if s <= step} == before  # the curve so far, carried
    after = sorted(s for s in retry.intermediate_values if s > step)
    assert after and after[0] <= step + 192 + 96 and 6000 <= after[-1] < 6000 + 96  # continued to the same budget (whole rollouts)
