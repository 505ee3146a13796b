"""`rlsweep export STUDY --format csv|json|parquet [--trajectories]`: runs, values, attributes and
learning curves; with --trajectories also the per-step data runs recorded (trajectories.parquet)."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="write runs and learning curves as CSV, JSON or Parquet", description=__doc__)
    add_study_args(p)
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    p.add_argument("--out", default=None, help="output folder (default runs/<study>/export)")
    p.add_argument(
        "--trajectories",
        action="store_true",
        help="also gather the runs' recorded per-step data (record: in the sweep) into trajectories.parquet",
    )
    return p


def execute(args: argparse.Namespace) -> int:
    from rlsweep.api import Study

    for path in Study(open_handle(args, trainer_checks=False)).export(args.format, args.out, trajectories=args.trajectories):
        print(f"wrote {path}")
    return 0
