"""Frames (H x W x 3 uint8 arrays) -> GIF or MP4 files, written atomically.

GIFs are fast because the palette is computed once, on a few representative frames, and every frame
is mapped onto it; imageio's default writer computes a palette per frame and is many times slower
(see bench/render.py). A file appears under its final name only once it is complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rlsweep.errors import RlsweepError

if TYPE_CHECKING:
    from PIL import Image

Frames = Sequence[np.ndarray] | Iterable[np.ndarray]

#: GIF delays are whole centiseconds and browsers slow any delay under 2 cs to 10 cs.
MAX_GIF_FPS = 50


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 arrays, got dtype {arr.dtype}")
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return arr[:, :, :3]
    raise ValueError(f"frames must be H x W, H x W x 3 or H x W x 4 arrays, got shape {arr.shape}")


def _to_image(frame: np.ndarray, size: tuple[int, int] | None) -> Image.Image:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(_as_rgb(frame)), "RGB")
    if size is not None and im.size != size:
        im = im.resize(size, Image.Resampling.BILINEAR)
    return im


def _temp_path(path: Path) -> Path:
    # Same folder (so os.replace is atomic), hidden, and keeping the suffix for writers that need it.
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def _frame_delays_ms(n: int, fps: float) -> list[int]:
    """Per-frame delays in whole centiseconds (as ms) whose running total tracks n / fps exactly, so
    30 fps plays as 30, 30, 40, 30, 30, 40 ms rather than drifting 10% fast at a flat 30 ms."""
    edges = np.round(np.arange(n + 1) * 100.0 / fps).astype(int)
    return [int(d) * 10 for d in np.diff(edges)]


def _split_sample(frames: Frames) -> tuple[list[np.ndarray], Iterator[np.ndarray]]:
    """Frames to build the palette from (first, middle, last of a sequence; the first of an iterator),
    and an iterator over all frames."""
    if isinstance(frames, np.ndarray) or isinstance(frames, Sequence):
        n = len(frames)
        if n == 0:
            raise ValueError("no frames to write")
        picks = sorted({0, n // 2, n - 1})
        return [frames[i] for i in picks], iter(frames)
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError("no frames to write") from None

    def chained() -> Iterator[np.ndarray]:
        yield first
        yield from it

    return [first], chained()


def write_gif(
    frames: Frames,
    path: str | os.PathLike[str],
    fps: float = 30,
    *,
    size: tuple[int, int] | None = None,
    colors: int = 64,
) -> Path:
    """Write frames as a looping GIF and return its path.

    `size` is (width, height); by default the first frame's size. `colors` (2..256) bounds the
    shared palette. Consecutive identical frames are merged by Pillow into one longer frame, so a
    reader may count fewer frames than were given; the playing time is unchanged.
    """
    from PIL import Image

    if not 0 < fps <= MAX_GIF_FPS:
        raise ValueError(
            f"GIF fps must be in (0, {MAX_GIF_FPS}], got {fps}: browsers slow faster frames to 10 fps; "
            "use a lower fps or MP4"
        )
    if not 2 <= colors <= 256:
        raise ValueError(f"colors must be between 2 and 256, got {colors}")
    path = Path(path)
    sample, all_frames = _split_sample(frames)
    first = _to_image(sample[0], size)
    size = first.size
    # One palette for the whole clip, from the sample frames stacked vertically.
    stacked = Image.new("RGB", (size[0], size[1] * len(sample)))
    for i, frame in enumerate(sample):
        stacked.paste(first if i == 0 else _to_image(frame, size), (0, i * size[1]))
    palette = stacked.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)

    indexed = [_to_image(f, size).quantize(palette=palette, dither=Image.Dither.NONE) for f in all_frames]
    tmp = _temp_path(path)
    try:
        indexed[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=indexed[1:],
            duration=_frame_delays_ms(len(indexed), fps),
            loop=0,
            optimize=False,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_mp4(
    frames: Frames,
    path: str | os.PathLike[str],
    fps: float = 30,
    *,
    size: tuple[int, int] | None = None,
    quality: float = 7,
) -> Path:
    """Write frames as an H.264 MP4 (yuv420p, plays in browsers) through imageio-ffmpeg.

    `size` is (width, height); odd sizes are padded by one black pixel because yuv420p needs even
    dimensions. `quality` is imageio-ffmpeg's 0..10 scale.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RlsweepError(
            "MP4 output needs imageio-ffmpeg: pip install imageio-ffmpeg (or rlsweep[render]), or write a GIF"
        ) from None
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    _, all_frames = _split_sample(frames)
    tmp = _temp_path(path)
    writer = None
    try:
        for frame in all_frames:
            arr = np.asarray(_to_image(frame, size)) if size is not None else _as_rgb(frame)
            if writer is None:
                height, width = arr.shape[:2]
                even = (width + width % 2, height + height % 2)
                writer = imageio_ffmpeg.write_frames(
                    str(tmp),
                    even,
                    fps=fps,
                    codec="libx264",
                    quality=quality,
                    macro_block_size=2,
                    output_params=["-movflags", "+faststart"],
                )
                writer.send(None)
            if arr.shape[:2] != (height, width):
                raise ValueError(f"all frames must be {width}x{height}, got {arr.shape[1]}x{arr.shape[0]}")
            if (width, height) != even:
                arr = np.pad(arr, ((0, even[1] - height), (0, even[0] - width), (0, 0)))
            writer.send(np.ascontiguousarray(arr))
        assert writer is not None  # _split_sample rejects an empty clip
        writer.close()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return path
