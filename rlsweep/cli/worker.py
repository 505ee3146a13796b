"""`rlsweep worker --study NAME --storage URL`: join a study from any shell (ssh, SLURM, mpiexec) and train its runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rlsweep.cli._common import add_study_args, storage_url


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("worker", help="join a study and train its queued runs", description=__doc__)
    add_study_args(p, positional=False)
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    p.add_argument("--id", default=None, help="worker id (default: host-pid-random)")
    # Used by the local launcher: start, import what the run will need, then wait for one JSON line
    # {"study": ..., "storage": ...} on stdin (EOF: exit without doing anything).
    p.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--warm", action="append", default=[], help=argparse.SUPPRESS)
    return p


PRELOAD = ("rlsweep.study", "rlsweep.worker", "rlsweep.strategies", "optuna.storages._rdb.models",
           "alembic.migration", "alembic.command", "alembic.script", "alembic.config")  # fmt: skip


def preload(modules: Sequence[str] = PRELOAD) -> None:
    """Import modules ahead of need; best effort (the real import reports a missing package properly)."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass


def standby(args: argparse.Namespace) -> bool:
    """Import the heavy modules while `rlsweep run` is still creating the study, then wait for it.
    Returns False when the launcher went away without sending the study (nothing to do)."""
    import json
    import sys

    preload((*PRELOAD, *args.warm))
    line = sys.stdin.readline()
    if not line.strip():
        return False
    message = json.loads(line)
    args.study, args.storage = message["study"], message["storage"]
    return True


def execute(args: argparse.Namespace) -> int:
    import logging
    import signal

    from rlsweep.study import StudyHandle
    from rlsweep.worker import Worker

    logging.getLogger("rlsweep").setLevel(logging.INFO)

    def _interrupt_once(signum: int, frame: Any) -> None:
        # The first Ctrl-C stops the run cleanly; later ones must not break that cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    if args.standby and not standby(args):
        return 0
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    handle = StudyHandle.load(args.study, storage_url(args, args.study))
    worker = Worker(handle, args.id, echo=lambda m: print(m, flush=True))
    n = worker.loop(max_runs=args.max_runs)
    print(f"worker {worker.id}: {n} run(s) finished; no more work", flush=True)
    return 0
