"""The launcher contract: start n workers for a study, report whether they are still running."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Launcher(ABC):
    @abstractmethod
    def launch(self, study: str, storage_url: str, n_workers: int, resources: dict[str, Any] | None = None) -> None:
        """Start n workers that join the study."""

    @abstractmethod
    def alive(self) -> int:
        """How many of the started workers are still running."""

    def interrupt(self) -> None:
        """Ask every worker to stop cleanly (their runs are marked interrupted and queued again)."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the workers to exit."""
