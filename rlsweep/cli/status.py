"""`rlsweep status STUDY`: runs by state, best so far, running workers."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rlsweep import states
from rlsweep.cli._common import add_study_args, fmt, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("status", help="counts by state, best so far, running workers", description=__doc__)
    add_study_args(p)
    return p


def execute(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rlsweep.progress import best_value
    from rlsweep.storage import redact

    handle = open_handle(args, trainer_checks=False)
    sweep = handle.sweep
    counts = handle.row_counts()
    console = Console()
    console.print(f"[bold]{handle.name}[/] in {redact(handle.url)}")
    console.print(f"strategy {sweep.strategy.name}, trainer {sweep.trainer.get('kind')}, objective {sweep.objective.metric} ({sweep.objective.mode})")
    console.print("runs: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in states.STATES))
    best = best_value(handle)
    if best is not None:
        trial = handle.study.best_trial
        console.print(f"best: {fmt(best)} (run {trial.number}, {', '.join(f'{k}={fmt(v)}' for k, v in handle.decode(trial.params).items())})")
    now = time.time()
    alive = [w for w in handle.workers() if w["state"] == "alive" and now - w["heartbeat"] < sweep.worker.lost_after]
    table = Table(title=f"workers alive: {len(alive)}")
    for col in ("worker", "host", "pid", "last heartbeat", "running"):
        table.add_column(col)
    running = {r.worker: r for r in handle.rows([states.RUNNING])}
    for w in alive:
        row = running.get(w["id"])
        table.add_row(w["id"], w["host"], str(w["pid"]), f"{now - w['heartbeat']:.0f}s ago", f"run {row.trial_number} ({row.key})" if row else "-")
    if alive:  # no empty table when no worker is running
        console.print(table)
    else:
        console.print("workers alive: 0")
    return 0
