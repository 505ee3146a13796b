"""Batch trainers for tests/trainers/test_batch.py: a batch interrupted by Ctrl-C, and a trainer class
that trains runs of different widths in separate groups (as the JAX trainer splits shape changes)."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from typing import Any

from rlsweep.examples.batch_synthetic import train_batch
from rlsweep.trainers._base import RunContext
from rlsweep.trainers.function import FunctionTrainer


def interrupted(runs: list[RunContext]) -> None:
    """Ctrl-C mid-batch: a real SIGINT to this process (a KeyboardInterrupt the trainer raised by
    itself would fail its runs instead)."""
    for run in runs:
        run.report(run.eval_every, {"eval/mean_return": 1.0})
    signal.raise_signal(signal.SIGINT)
    time.sleep(10)  # the handler raises before this ends


class GroupedTrainer(FunctionTrainer):
    """The batch function trainer, with runs of one width per `train_batch` call."""

    @classmethod
    def batch_group(cls, config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> Any:
        return hyperparams.get("width")

    def train_batch(self, runs: list[RunContext]) -> None:
        assert len({run.hyperparams.get("width") for run in runs}) == 1, "a group mixes widths"
        train_batch(runs)
