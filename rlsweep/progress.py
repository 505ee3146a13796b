"""Progress of a running study: a rich live panel on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from rlsweep import states
from rlsweep.study import StudyHandle


@dataclass
class Snapshot:
    waiting: int
    running: int
    done: int
    pruned: int
    failed: int
    total: int
    best: float | None
    elapsed: float
    rate: float  # finished runs per minute

    @property
    def finished(self) -> int:
        return self.done + self.pruned + self.failed

    def eta(self) -> str:
        left = self.waiting + self.running
        if not left:
            return "0s"
        if self.rate <= 0:
            return "?"
        return _duration(60.0 * left / self.rate)

    def line(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4g}"
        return (
            f"{self.finished}/{self.total} finished (done {self.done}, pruned {self.pruned}, failed {self.failed}), "
            f"running {self.running}, waiting {self.waiting} | best {best} | {self.rate:.1f} runs/min | "
            f"elapsed {_duration(self.elapsed)} | eta {self.eta()}"
        )


def snapshot(handle: StudyHandle, started: float, finished_at_start: int, planned: int | None = None) -> Snapshot:
    counts = handle.row_counts()
    waiting = counts.get(states.WAITING, 0)
    running = counts.get(states.RUNNING, 0)
    done = counts.get(states.DONE, 0)
    pruned = counts.get(states.PRUNED, 0)
    failed = counts.get(states.FAILED, 0)
    elapsed = time.time() - started
    finished_now = done + pruned + failed - finished_at_start
    rate = 60.0 * finished_now / elapsed if elapsed > 0 else 0.0
    # Requeued copies of lost or interrupted runs are not extra work: the plan caps the total.
    total = max(planned or 0, waiting + running + done + pruned + failed)
    if planned:
        waiting = max(waiting, planned - running - done - pruned - failed)
        total = max(planned, done + pruned + failed + running + waiting)
    return Snapshot(waiting, running, done, pruned, failed, total, best_value(handle), elapsed, rate)


def best_value(handle: StudyHandle) -> float | None:
    try:
        return float(handle.study.best_value)
    except (ValueError, RuntimeError):
        return None


class Progress:
    def __init__(self, handle: StudyHandle, out: TextIO | None = None, every: float = 10.0, planned: int | None = None) -> None:
        self.handle = handle
        self.planned = planned
        self.out = out or sys.stdout
        self.every = every
        self.started = time.time()
        counts = handle.row_counts()
        self.finished_at_start = counts.get(states.DONE, 0) + counts.get(states.PRUNED, 0) + counts.get(states.FAILED, 0)
        self.live: Any = None
        self.last_line = ""
        self.last_print = 0.0

    def __enter__(self) -> Progress:
        if self.out.isatty():
            from rich.live import Live

            self.live = Live(self._render(self.snap()), refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render(self.snap()))
            self.live.__exit__(*exc)

    def snap(self) -> Snapshot:
        return snapshot(self.handle, self.started, self.finished_at_start, self.planned)

    def update(self) -> Snapshot:
        snap = self.snap()
        if self.live is not None:
            self.live.update(self._render(snap))
        else:
            line = snap.line()
            now = time.time()
            if line.split(" | ")[0] != self.last_line.split(" | ")[0] or now - self.last_print > self.every:
                print(f"[{self.handle.name}] {line}", file=self.out, flush=True)
                self.last_line, self.last_print = line, now
        return snap

    def _render(self, snap: Snapshot) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_row(f"[bold]{self.handle.name}[/]", ProgressBar(total=max(snap.total, 1), completed=snap.finished, width=40), f"{snap.finished}/{snap.total}")
        best = "-" if snap.best is None else f"{snap.best:.4g}"
        table.add_row(
            f"done {snap.done}  pruned {snap.pruned}  failed {snap.failed}",
            f"running {snap.running}  waiting {snap.waiting}",
            f"best {best}",
        )
        table.add_row(f"{snap.rate:.1f} runs/min", f"elapsed {_duration(snap.elapsed)}", f"eta {snap.eta()}")
        return table


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
