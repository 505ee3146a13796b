"""`rlsweep worker --study NAME --storage URL`: join a study from any shell (ssh, SLURM, mpiexec) and train its runs."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, storage_url


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("worker", help="join a study and train its queued runs", description=__doc__)
    add_study_args(p, positional=False)
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    p.add_argument("--id", default=None, help="worker id (default: host-pid-random)")
    return p


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

    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    handle = StudyHandle.load(args.study, storage_url(args, args.study))
    worker = Worker(handle, args.id, echo=lambda m: print(m, flush=True))
    n = worker.loop(max_runs=args.max_runs)
    print(f"worker {worker.id}: {n} run(s) finished; no more work", flush=True)
    return 0
