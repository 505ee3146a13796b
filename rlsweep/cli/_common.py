"""Arguments and helpers several commands share."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_study_args(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        p.add_argument("study", help="study name")
    else:
        p.add_argument("--study", required=True, help="study name")
    p.add_argument(
        "--storage",
        default=None,
        help="storage URL (default: $RLSWEEP_STORAGE, else sqlite:///runs/<study>/study.db)",
    )


def storage_url(args: argparse.Namespace, study: str) -> str:
    from rlsweep.storage import find_local_study

    return args.storage or os.environ.get("RLSWEEP_STORAGE") or find_local_study(study)


def open_handle(args: argparse.Namespace, *, trainer_checks: bool = True) -> Any:
    """The study the command names; `trainer_checks=False` for a command that only reads results
    (it then does not import the trainer's libraries: `status` on an SB3 study took 4.3 s, now 1.3 s)."""
    from rlsweep.study import StudyHandle

    return StudyHandle.load(args.study, storage_url(args, args.study), trainer_checks=trainer_checks)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
