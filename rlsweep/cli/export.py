"""`rlsweep export STUDY --format csv|json|parquet`: runs, values, attributes and learning curves."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="write runs and learning curves as CSV, JSON or Parquet", description=__doc__)
    add_study_args(p)
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    p.add_argument("--out", default=None, help="output folder (default runs/<study>/export)")
    return p


def execute(args: argparse.Namespace) -> int:
    from rlsweep.api import Study

    for path in Study(open_handle(args)).export(args.format, args.out):
        print(f"wrote {path}")
    return 0
