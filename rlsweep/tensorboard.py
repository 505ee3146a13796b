"""A small TensorBoard event-file writer and reader (tensorboard's protobufs, no TensorFlow, no torch)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

#: The end of the names of rlsweep's own event files (TensorBoard reads them as any other), so a
#: command trainer that tails a program's event files in the same folder never reads them back.
OWN_SUFFIX = ".rlsweep"


class EventWriter:
    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        logdir.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(logdir), filename_suffix=OWN_SUFFIX)

    def add_scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in metrics.items()])
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def close(self) -> None:
        self._writer.close()


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `logdir`: tag -> [(step, value)] (used by tests and gates on
    TensorBoard output of command trainers)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags().get("scalars", [])}
