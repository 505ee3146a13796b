"""The strategy contract: which runs to queue, how to propose a configuration, how to judge reports.

Strategies decide; workers act. A strategy returns run specifications and decisions and never
reaches into the worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from rlsweep.strategies.settings import StrategySettings

if TYPE_CHECKING:
    from rlsweep.config import LoadedSweep
    from rlsweep.study import QueueRow, RunSpec, StudyHandle


class Strategy(ABC):
    """Proposes runs. Only `initial_runs` is required; the other hooks have working defaults."""

    # The settings model this strategy reads (the registry in rlsweep.strategies pairs them).
    settings_model: ClassVar[type[StrategySettings]] = StrategySettings

    def __init__(self, loaded: LoadedSweep) -> None:
        self.loaded = loaded
        self.sweep = loaded.sweep
        self.space = loaded.space
        if not isinstance(loaded.sweep.strategy, self.settings_model):
            raise TypeError(
                f"{type(self).__name__} reads {self.settings_model.__name__}, got {type(loaded.sweep.strategy).__name__}"
            )
        self.settings: StrategySettings = loaded.sweep.strategy

    @abstractmethod
    def initial_runs(self) -> list[RunSpec]:
        """The runs to queue when the study is created or resumed (queueing is idempotent by key)."""

    def propose(self, handle: StudyHandle, row: QueueRow, attrs: dict[str, Any]) -> Any:
        """Create the trial of a queued run that has no configuration yet (a sampler's turn)."""
        raise NotImplementedError(f"{type(self).__name__} queues every run with its configuration")

    def on_start(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        """Runs to queue once this run has its configuration (e.g. the other seeds)."""
        return []

    def on_finish(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        """Runs to queue once this run has finished (e.g. a member's next generation)."""
        return []

    def on_fail(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        """Runs to queue once this run has failed (a population replaces a diverged member)."""
        return []

    def recover(self, handle: StudyHandle) -> list[RunSpec]:
        """Runs missing after a crash between one run's end and its successor's queueing."""
        return []

    def budget(self, row: QueueRow) -> int | None:
        """Environment steps for this run; None: the trainer's own budget."""
        return None

    def start_from(self, handle: StudyHandle, row: QueueRow) -> tuple[str | None, int]:
        """Checkpoint to continue from and the steps already trained (population strategies)."""
        return None, 0

    def planned(self) -> int | None:
        """How many runs the study will have in all (for progress and ETA); None if unknown."""
        return None

    def expect_more(self, handle: StudyHandle) -> bool:
        """Whether runs may still be queued while others are running (workers then wait)."""
        return True

