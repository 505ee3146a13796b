"""Reading a running program's metrics: TensorBoard event files, a CSV or JSON-lines file, or a
regular expression on its output, each read incrementally (a poll reads only what was appended,
and a half-written record or line waits for the next poll).

Values are merged by step across files and tags; a step is released once a later step appears, once
a poll brings nothing new for it, or when the program has ended, so a step's tags arrive together.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rlsweep.tensorboard import OWN_SUFFIX

Record = tuple[int | None, dict[str, float]]  # (step, values); None: the step of the last record
_HEADER = 12  # uint64 length + uint32 masked CRC of the length
_FOOTER = 4  # uint32 masked CRC of the data
EVENT_GLOB = "events.out.tfevents.*"  # a program's, not rlsweep's own (OWN_SUFFIX)


class RecordReader:
    """One TFRecord file (a TensorBoard event file) read from where the last complete record ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[bytes]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:  # not there (yet), or removed: nothing new
            return []
        records, pos = [], 0
        while len(data) - pos >= _HEADER:
            (length,) = struct.unpack_from("<Q", data, pos)
            end = pos + _HEADER + length + _FOOTER
            if end > len(data):
                break  # the writer has not finished this record: resume here next time
            records.append(data[pos + _HEADER : pos + _HEADER + length])
            pos = end
        self.offset += pos
        return records


def event_values(record: bytes) -> tuple[int, dict[str, float]] | None:
    """(step, tag -> value) of one event's scalar summaries: `simple_value` (tf.summary v1, torch,
    ML-Agents) and one-element tensors (TF2's scalar plugin)."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event.FromString(record)
    if not event.HasField("summary"):
        return None
    values: dict[str, float] = {}
    for value in event.summary.value:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            values[value.tag] = float(value.simple_value)
        elif kind == "tensor":
            from tensorboard.util import tensor_util

            try:
                array = tensor_util.make_ndarray(value.tensor)
            except Exception:  # a string or image tensor: not a scalar
                continue
            if array.size == 1 and array.dtype.kind in "fiub":
                values[value.tag] = float(array.reshape(-1)[0])
    return (int(event.step), values) if values else None


class TensorBoardSource:
    """Every event file under a folder (found anew at each poll), one reader per file.

    A tag of a file in a subfolder is named `<subfolder>/<tag>` (ML-Agents writes one folder per
    behavior); `tags` may name it so or by its bare tag, and then only the named ones are kept."""

    def __init__(self, folder: Path, tags: Mapping[str, str], step_tag: str | None) -> None:
        self.folder = folder
        self.tags = dict(tags)
        if step_tag is not None and self.tags:
            self.tags[step_tag] = step_tag
        self.readers: dict[Path, tuple[RecordReader, str]] = {}

    def poll(self) -> Iterator[Record]:
        if self.folder.is_dir():
            for path in sorted(self.folder.rglob(EVENT_GLOB)):
                if path not in self.readers and not path.name.endswith(OWN_SUFFIX):  # rlsweep's copy
                    sub = path.parent.relative_to(self.folder).as_posix()
                    self.readers[path] = (RecordReader(path), "" if sub == "." else sub + "/")
        for reader, prefix in self.readers.values():
            for record in reader.read():
                found = event_values(record)
                if found is not None:
                    yield found[0], self._names(prefix, found[1])

    def _names(self, prefix: str, values: dict[str, float]) -> dict[str, float]:
        if not self.tags:
            return {prefix + tag: value for tag, value in values.items()}
        out = {}
        for tag, value in values.items():
            name = self.tags.get(prefix + tag, self.tags.get(tag))
            if name is not None:
                out[name] = value
        return out


class LineTail:
    """The complete lines appended to a text file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode("utf-8", "replace").splitlines()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


class TableSource:
    """A CSV (header row first) or JSON-lines file: one row per step, the step in column `step_key`."""

    def __init__(self, path: Path, fmt: str, step_key: str) -> None:
        self.tail = LineTail(path)
        self.fmt = fmt
        self.step_key = step_key
        self.header: list[str] | None = None

    def poll(self) -> Iterator[Record]:
        import csv

        for line in self.tail.lines():
            if not line.strip():
                continue
            if self.fmt == "csv":
                cells = next(csv.reader([line]))
                if self.header is None:
                    self.header = [c.strip() for c in cells]
                    continue
                row: dict[str, Any] = dict(zip(self.header, cells, strict=False))
            else:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue  # a line that is not JSON (a log line in the same file) says nothing
                if not isinstance(data, Mapping):
                    continue
                row = _flat(data)
            yield _row(row, self.step_key)


class RegexSource:
    """Lines of the program's stdout matched by a pattern; its named groups are the values."""

    def __init__(self, path: Path, pattern: str, step_key: str) -> None:
        self.tail = LineTail(path)
        self.pattern = re.compile(pattern)
        self.step_key = step_key

    def poll(self) -> Iterator[Record]:
        for line in self.tail.lines():
            match = self.pattern.search(line)
            if match is not None:
                yield _row({k: v for k, v in match.groupdict().items() if v is not None}, self.step_key)


def _row(row: Mapping[str, Any], step_key: str) -> Record:
    values = {k: v for k, v in ((k, _number(v)) for k, v in row.items()) if v is not None}
    step = values.pop(step_key, None)
    return (int(step) if step is not None else None, values)


class StepMerger:
    """Values by step, released in step order: all steps below the highest, and the highest once a
    poll adds nothing to it (or at the end). `step_tag` names a value that gives the step instead."""

    def __init__(self, tags: Mapping[str, str], step_tag: str | None) -> None:
        self.tags = dict(tags)
        self.step_tag = step_tag
        self.pending: dict[int, dict[str, float]] = {}
        self.last_step: int | None = None  # the step of rows that name none
        self.released: int | None = None

    def add(self, records: Iterator[Record]) -> bool:
        """Take one poll's records; True when any value arrived."""
        fresh: set[int] = set()
        for step, values in records:
            if step is None:
                step = self.last_step
            if step is None:
                continue  # values before any step: nothing to file them under
            self.last_step = step
            self.pending.setdefault(step, {}).update(values)
            fresh.add(step)
        self._fresh = fresh
        return bool(fresh)

    def release(self, final: bool = False) -> list[tuple[int, dict[str, float]]]:
        if not self.pending:
            return []
        top = max(self.pending)
        ready = sorted(s for s in self.pending if s < top or final or s not in getattr(self, "_fresh", set()))
        out = []
        for step in ready:
            values = self.pending.pop(step)
            if self.step_tag is not None:
                real = values.pop(self.step_tag, None)
                step = int(real) if real is not None else step
            if self.tags:
                values = {self.tags[k]: v for k, v in values.items() if k in self.tags}
            if values:
                out.append((step, values))
        return out
