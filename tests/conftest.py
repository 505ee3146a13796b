"""Shared fixtures: storages (a real SQLite file; PostgreSQL and MariaDB started on 127.0.0.1 by
scripts/servers.sh) and small sweeps on the built-in synthetic trainer."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rlsweep.study import StudyHandle

SERVERS = {
    "postgres": "RLSWEEP_TEST_POSTGRES",
    "mysql": "RLSWEEP_TEST_MYSQL",
    "postgres_secret": "RLSWEEP_TEST_POSTGRES_SECRET",  # a role whose password holds @ and :
}


def server_url(kind: str) -> str:
    url = os.environ.get(SERVERS[kind])
    if not url:
        if os.environ.get("RLSWEEP_REQUIRE_SERVERS"):
            pytest.fail(f"{SERVERS[kind]} is not set but RLSWEEP_REQUIRE_SERVERS is: scripts/servers.sh did not start {kind}")
        pytest.skip(f"{kind} server not available ({SERVERS[kind]} unset; run via scripts/test.sh)")
    return url


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal sends it, whatever started the suite: a shell's background job (`&`
    without job control, `nohup`) starts with SIGINT ignored, every process the tests start would
    inherit that, and Python does not turn an ignored SIGINT into KeyboardInterrupt, so the tests
    that press Ctrl-C on `rlsweep run` would find it ignored. A process that ignores an inherited
    SIGINT is the shell's convention, not something these tests check."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    return server_url(request.param)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/study.db"


@pytest.fixture
def study_name() -> str:
    # Unique per test: server databases are shared by every test of the session.
    return f"t-{uuid.uuid4().hex[:10]}"


def synthetic_sweep(name: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    sweep: dict[str, Any] = {
        "study": name,
        "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 1000},
        "eval": {"every": 250},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "random", "runs": 6, "seeds": 1},
        "params": {
            "learning_rate": {"loguniform": [1e-5, 1e-1]},
            "gamma": {"uniform": [0.9, 0.9999]},
            "policy_kwargs": {"net_arch": {"choice": [[64, 64], [128]]}},
        },
        "artifacts": str(tmp_path / "artifacts"),
        "worker": {"heartbeat": 0.2, "lost_after": 2.0, "requeue": 1},
    }
    for key, value in overrides.items():
        node = sweep
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return sweep


def run_in_process(sweep: dict[str, Any]) -> StudyHandle:
    """Create the study of `sweep` (a dict with its `storage`), queue its first runs and train them
    and whatever follows with one worker in this process; returns the StudyHandle."""
    from rlsweep.config import load_sweep
    from rlsweep.strategies import make_strategy
    from rlsweep.study import StudyHandle
    from rlsweep.worker import Worker

    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, sweep["storage"])
    handle.enqueue(make_strategy(loaded).initial_runs())
    Worker(handle).loop(poll=0.05)
    return handle
