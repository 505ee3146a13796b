"""Reading a running program's metrics incrementally: TensorBoard event files (a half-written record
waits for the next poll; tensor summaries; several files merged by step), CSV and JSON lines, and
the release of steps in order."""

from __future__ import annotations

import time
from pathlib import Path

from rlsweep.trainers.command.metrics import (
    RecordReader,
    StepMerger,
    TableSource,
    TensorBoardSource,
    event_values,
)


def write_events(folder: Path, rows: list[tuple[int, dict[str, float]]], tensor: bool = False) -> Path:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(folder))
    for step, values in rows:
        if tensor:
            value = [summary_pb2.Summary.Value(tag=k, tensor=tensor_util.make_tensor_proto(v)) for k, v in values.items()]
        else:
            value = [summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=value)))
    writer.close()
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def test_a_half_written_record_is_read_once_it_is_complete(tmp_path: Path) -> None:
    rows = [(i * 10, {"r": float(i)}) for i in range(1, 7)]
    full = write_events(tmp_path / "full", rows).read_bytes()
    growing = tmp_path / "growing" / "events.out.tfevents.1.host"
    growing.parent.mkdir()
    reader = RecordReader(growing)
    assert reader.read() == []  # not there yet
    seen = []
    for cut in (37, 38, 120, 121, 200, len(full)):  # cuts inside headers, data and footers
        growing.write_bytes(full[:cut])
        seen += [event_values(r) for r in reader.read()]
    assert [s for s in seen if s is not None] == rows
    assert reader.offset == len(full)


def test_tensor_summaries_are_read_as_scalars(tmp_path: Path) -> None:
    path = write_events(tmp_path, [(5, {"loss": 0.25}), (6, {"loss": 0.5})], tensor=True)
    values = [event_values(r) for r in RecordReader(path).read()]
    assert [v for v in values if v is not None] == [(5, {"loss": 0.25}), (6, {"loss": 0.5})]


def test_files_in_subfolders_are_merged_by_step(tmp_path: Path) -> None:
    write_events(tmp_path / "a", [(1, {"x": 1.0}), (2, {"x": 2.0})])
    write_events(tmp_path / "b", [(1, {"y": 10.0}), (2, {"y": 20.0})])
    merger = StepMerger({}, None)
    merger.add(TensorBoardSource(tmp_path, {}, None).poll())
    assert merger.release(final=True) == [(1, {"a/x": 1.0, "b/y": 10.0}), (2, {"a/x": 2.0, "b/y": 20.0})]
    # tags name a tag bare or with its folder; only those are kept, renamed
    merger = StepMerger({}, None)
    merger.add(TensorBoardSource(tmp_path, {"x": "eval/x", "b/y": "eval/y"}, None).poll())
    assert merger.release(final=True) == [(1, {"eval/x": 1.0, "eval/y": 10.0}), (2, {"eval/x": 2.0, "eval/y": 20.0})]


def test_the_highest_step_waits_for_a_quiet_poll() -> None:
    merger = StepMerger({"a": "A", "b": "B"}, None)
    merger.add(iter([(100, {"a": 1.0}), (200, {"a": 2.0})]))
    assert merger.release() == [(100, {"A": 1.0})]  # 200 may still get its other tags
    merger.add(iter([(200, {"b": 5.0})]))
    assert merger.release() == []
    merger.add(iter([]))
    assert merger.release() == [(200, {"A": 2.0, "B": 5.0})]


def test_a_step_tag_gives_the_step() -> None:
    merger = StepMerger({}, "global_step")
    merger.add(iter([(3, {"global_step": 3000.0, "r": 1.0})]))
    assert merger.release(final=True) == [(3000, {"r": 1.0})]


def test_csv_rows_are_read_as_they_are_completed(tmp_path: Path) -> None:
    path = tmp_path / "progress.csv"
    source = TableSource(path, "csv", "step")
    assert list(source.poll()) == []
    path.write_text("step,return,name\n10,1.5,a\n20,2.")
    assert list(source.poll()) == [(10, {"return": 1.5})]
    with path.open("a") as fh:
        fh.write("5,b\n")
    assert list(source.poll()) == [(20, {"return": 2.5})]


def test_json_lines_without_a_step_take_the_last_one(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "a": {"b": 2}}\nnot json\n{"c": 3}\n')
    merger = StepMerger({}, None)
    merger.add(TableSource(path, "jsonl", "step").poll())
    assert merger.release(final=True) == [(1, {"a/b": 2.0, "c": 3.0})]
