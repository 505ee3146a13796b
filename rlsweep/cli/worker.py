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
    # Used by the local launcher: start, import what the run will need, then wait for one JSON line
    # {"study": ..., "storage": ...} on stdin (EOF: exit without doing anything).
    p.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--warm", action="append", default=[], help=argparse.SUPPRESS)
    return p


def execute(args: argparse.Namespace) -> int:
    from rlsweep.launchers.entry import serve, wait_for_study
    from rlsweep.launchers.local import adopt_import_path

    adopt_import_path()
    if args.standby:
        target = wait_for_study(args.warm)
        if target is None:
            return 0
        args.study, args.storage = target
    serve(args.study, storage_url(args, args.study), worker_id=args.id, max_runs=args.max_runs)
    return 0
