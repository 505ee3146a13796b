"""A small TensorBoard event-file writer and reader (tensorboard's protobufs, no TensorFlow, no torch)."""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The end of the names of rlsweep's own event files (TensorBoard reads them as any other), so a
#: command trainer that tails a program's event files in the same folder never reads them back.
OWN_SUFFIX = ".rlsweep"


class EventWriter:
    """Appends one event per call and flushes it, in the calling thread: an evaluation is on disk
    when it is reported (tensorboard's EventFileWriter queues events for a writer thread and flushes
    them up to 2 minutes later)."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.compat.proto import event_pb2

        logdir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}{OWN_SUFFIX}"
        self._file = open(logdir / name, "ab")  # noqa: SIM115 (closed by close())
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add_scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in metrics.items()])
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event: Any) -> None:
        self._file.write(record(event.SerializeToString()))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


_FILES = itertools.count()  # event files opened by this process (a part of each file's name)


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C (little-endian).
    Written here rather than with tensorboard.summary's RecordWriter, whose package import takes
    0.2 s of every worker's CPU (it loads TensorBoard's TensorFlow stub)."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli's polynomial, reflected
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a constant."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `logdir`: tag -> [(step, value)] (used by tests and gates on
    TensorBoard output of command trainers)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags().get("scalars", [])}
