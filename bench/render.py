"""Time rendering a 500-frame CartPole episode to GIF: recording the frames, then rlsweep's
write_gif (one shared Pillow palette) against imageio's default GIF writer on the same frames.
Target: recording + write_gif under 3 s.

    python bench/render.py [--frames 500] [--skip-imageio]

The last line printed is the write_gif time in seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlsweep.render import record_episode, write_gif


def lean_policy(obs: np.ndarray) -> int:
    # Push toward the pole's lean, with a little cart-position feedback so the cart stays on the
    # track for the whole episode.
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--skip-imageio", action="store_true", help="time write_gif only")
    args = parser.parse_args()

    env = gym.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=args.frames * 2)
    t0 = time.perf_counter()
    episode = record_episode(env, lean_policy, seed=0, max_steps=args.frames - 1)  # reset frame + steps
    env.close()
    record_s = time.perf_counter() - t0
    frames = episode.frames
    if len(frames) != args.frames:
        raise SystemExit(f"the episode ended early: {len(frames)} frames, wanted {args.frames}")
    h, w = frames[0].shape[:2]
    print(f"recorded {len(frames)} frames of {w}x{h} (env.render) in {record_s:.3f} s")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ours = write_gif(frames, Path(tmp) / "pillow.gif", fps=args.fps)
        pillow_s = time.perf_counter() - t0
        print(f"write_gif (shared 64-colour palette): {pillow_s:.3f} s, {ours.stat().st_size / 1e3:.0f} kB")
        if not args.skip_imageio:
            import imageio.v2 as imageio

            t0 = time.perf_counter()
            imageio.mimsave(Path(tmp) / "imageio.gif", frames, duration=1000 / args.fps, loop=0)
            imageio_s = time.perf_counter() - t0
            size = (Path(tmp) / "imageio.gif").stat().st_size
            print(f"imageio.mimsave (default writer):     {imageio_s:.3f} s, {size / 1e3:.0f} kB")
            print(f"speedup: {imageio_s / pillow_s:.1f}x")
    total = record_s + pillow_s
    print(
        f"episode -> GIF end to end (record + write_gif): {total:.3f} s; target < 3 s: {'met' if total < 3 else 'MISSED'}"
    )
    print(f"{pillow_s:.3f}")


if __name__ == "__main__":
    main()
