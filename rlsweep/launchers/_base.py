"""The launcher contract: everything the supervisor calls to start workers for a study, watch them,
read their exit codes and clean up. A launcher only starts `rlsweep worker` processes (or tasks
running the same loop, rlsweep.launchers.entry.serve) and makes sure none outlives the command."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any


class Launcher(ABC):
    """Required: `launch`, `alive`, `exit_codes`. The rest are hooks with working defaults."""

    def prestart(self, n_workers: int, warm: Sequence[str] = ()) -> None:
        """Optionally start workers in standby while the study is created (`warm`: modules to import
        meanwhile). `launch` then hands them the study; `discard` lets unused ones exit."""

    @abstractmethod
    def launch(self, study: str, storage_url: str, n_workers: int, resources: dict[str, Any] | None = None) -> None:
        """Start n workers that join the study. `resources` (e.g. {"cpu": 1, "gpu": 0.25}) are what
        each worker asked for; a launcher that cannot place them raises ConfigError."""

    @abstractmethod
    def alive(self) -> int:
        """How many of the started workers are still running."""

    @abstractmethod
    def exit_codes(self) -> list[int | None]:
        """One entry per started worker: its exit code, None while it runs."""

    def interrupt(self) -> None:
        """Ask every worker to stop cleanly (their runs are marked interrupted and queued again)."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the workers to exit; past `timeout`, end them."""

    def discard(self) -> None:
        """Release what `prestart` started and `launch` did not use; called on every way out."""

    def worker_prefix(self, i: int) -> str | None:
        """The prefix of the worker id that started worker i registers under, where the launcher
        knows it (local processes: "host-pid-"; Ray tasks: the slot it gave the task); the
        supervisor then settles a dead worker's runs at once instead of after `lost_after`."""
        return None

    def respawn(self, study: str, storage_url: str, count: int) -> int:
        """Start `count` more workers to replace dead ones; returns how many it started (0: this
        launcher cannot, e.g. a fixed array job)."""
        return 0

    def log_location(self) -> str:
        """Where the workers' output can be read (shown when a worker crashed)."""
        return "the workers' own logs"
