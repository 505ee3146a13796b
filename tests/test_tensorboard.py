"""rlsweep's own TensorBoard event writer: records TensorBoard's reader accepts (its checksums
verified), each one on disk as soon as it is written."""

from __future__ import annotations

import os
from pathlib import Path

from rlsweep.tensorboard import OWN_SUFFIX, EventWriter, masked_crc32c, read_scalars


def test_checksums_are_tensorboards() -> None:
    from tensorboard.summary.writer.record_writer import masked_crc32c as reference

    for size in (0, 1, 7, 8, 9, 100, 4096):
        data = os.urandom(size)
        assert masked_crc32c(data) == reference(data), size


def test_events_are_readable_at_once_and_a_bad_checksum_is_refused(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path)
    writer.add_scalars(1, {"eval/mean_return": 1.5, "loss": 2.0})
    writer.add_scalars(2, {"eval/mean_return": 3.0})
    # not closed: every event is flushed as it is written
    assert read_scalars(tmp_path) == {"eval/mean_return": [(1, 1.5), (2, 3.0)], "loss": [(1, 2.0)]}
    writer.close()
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("events.out.tfevents.") and path.name.endswith(OWN_SUFFIX)
    # TensorBoard's reader checks each record's CRC: flip the last byte (the last record's data
    # checksum) and that record is dropped, so a wrong checksum would have shown above.
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert read_scalars(tmp_path)["eval/mean_return"] == [(1, 1.5)]
