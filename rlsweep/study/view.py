"""A read-only view of a study, for analysis/, render/ and report/: every read they need, no write.

`StudyHandle.view()` makes one; `open_view(name, url)` loads a study (a reseed or replay child) as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class StudyView:
    """The reads of a `StudyHandle`; nothing here writes to the storage."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.loaded = handle.loaded
        self.sweep = handle.sweep
        self.space = handle.space
        self.name: str = handle.name
        self.url: str = handle.url

    def __repr__(self) -> str:
        return f"StudyView({self.name!r})"

    # ---------------------------------------------------------------- trials
    def get_trials(self, deepcopy: bool = False, states: Iterable[Any] | None = None) -> list[Any]:
        return list(self._handle.study.get_trials(deepcopy=deepcopy, states=None if states is None else tuple(states)))

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._handle.study.user_attrs)

    def param_importances(self, evaluator: Any, params: list[str]) -> dict[str, float]:
        """Optuna's importance of `params` over the finished trials (reads the study only)."""
        from optuna.importance import get_param_importances

        return dict(get_param_importances(self._handle.study, evaluator=evaluator, params=params))

    def trial(self, number: int) -> Any:
        return self._handle.trials.trial(number)

    def trial_id(self, trial: Any) -> int:
        from rlsweep.study.trials import trial_id

        return trial_id(trial)

    def config_id(self, trial: Any) -> str:
        return str(self._handle.config_id(trial))

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._handle.decode(params))

    def seed_for(self, seed_number: int) -> int:
        return int(self._handle.seed_for(seed_number))

    def artifact_root(self) -> Path:
        return Path(self.sweep.artifacts or f"runs/{self.name}/artifacts")

    # ---------------------------------------------------------------- queue, metrics, workers
    def rows(self, states: Iterable[str] | None = None) -> list[Any]:
        return list(self._handle.queue.rows(states))

    def row_counts(self) -> dict[str, int]:
        return dict(self._handle.queue.row_counts())

    def metrics(self, trial_numbers: Iterable[int] | None = None, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return list(self._handle.metrics_store.read(trial_numbers, names))

    def workers(self) -> list[dict[str, Any]]:
        return list(self._handle.workers_registry.all())

    def view(self) -> StudyView:
        return self


def open_view(name: str, url: str) -> StudyView:
    """Load a study by name as a read-only view (its reseed and replay children)."""
    from rlsweep.study import StudyHandle

    return StudyHandle.load(name, url).view()
