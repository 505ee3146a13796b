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
    from pathlib import Path

    from rlsweep.analysis.export import export_study

    handle = open_handle(args)
    out = Path(args.out or f"runs/{handle.name}/export")
    for path in export_study(handle, out, args.format):
        print(f"wrote {path}")
    return 0
