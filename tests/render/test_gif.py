"""GIF/MP4 writing: frame count and size read back, timing, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from rlsweep.render.gif import write_gif, write_mp4


def _frames(n: int, h: int = 24, w: int = 32) -> list[np.ndarray]:
    # A moving square on a grey background: every frame differs from the one before.
    frames = []
    for t in range(n):
        f = np.full((h, w, 3), 200, dtype=np.uint8)
        x = t % (w - 4)
        f[8:12, x : x + 4] = (200, 30, 30)
        f[0, t % w] = (0, 0, 255)
        frames.append(f)
    return frames


def _read(path: Path) -> tuple[int, tuple[int, int], list[int]]:
    with Image.open(path) as im:
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(im)]
        return im.n_frames, im.size, durations


def test_gif_has_every_frame_and_the_size(tmp_path: Path) -> None:
    out = write_gif(_frames(17), tmp_path / "ep.gif", fps=20)
    assert out == tmp_path / "ep.gif"
    n, size, durations = _read(out)
    assert (n, size) == (17, (32, 24))
    assert durations == [50] * 17


def test_gif_resize_and_iterator_input(tmp_path: Path) -> None:
    out = write_gif(iter(_frames(9)), tmp_path / "small.gif", fps=10, size=(16, 12))
    n, size, _ = _read(out)
    assert (n, size) == (9, (16, 12))


def test_gif_delays_keep_the_frame_rate(tmp_path: Path) -> None:
    # 30 fps cannot be a whole number of centiseconds: delays alternate so 30 frames last 1 s.
    _, _, durations = _read(write_gif(_frames(30), tmp_path / "a.gif", fps=30))
    assert sum(durations) == 1000
    assert set(durations) == {30, 40}


def test_identical_frames_merge_but_keep_their_time(tmp_path: Path) -> None:
    frames = _frames(3)
    frames = [frames[0], frames[0], frames[1], frames[2]]
    n, _, durations = _read(write_gif(frames, tmp_path / "m.gif", fps=10))
    assert n == 3 and sum(durations) == 400


def test_gif_palette_is_small(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8) for _ in range(3)]
    with Image.open(write_gif(noisy, tmp_path / "p.gif", colors=16)) as im:
        assert len(im.getcolors()) <= 16


def test_gif_is_atomic(tmp_path: Path) -> None:
    write_gif(_frames(5), tmp_path / "ok.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.gif"]
    bad = _frames(4) + [np.zeros((24, 32, 3), dtype=np.float32)]
    with pytest.raises(ValueError, match="uint8"):
        write_gif(bad, tmp_path / "bad.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.gif"]


def test_gif_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "e.gif")
    with pytest.raises(ValueError, match="GIF fps must be in"):
        write_gif(_frames(2), tmp_path / "f.gif", fps=60)


def test_mp4(tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = write_mp4(_frames(12, h=23, w=31), tmp_path / "ep.mp4", fps=12)  # odd size: padded to even
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (32, 24) and meta["fps"] == 12
    assert sum(1 for _ in reader) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.mp4"]
