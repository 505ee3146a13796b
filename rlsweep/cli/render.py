"""`rlsweep render STUDY --mature | --top N | --run N [--checkpoints]`: record seeded episodes of saved
policies as GIF or MP4 under runs/<study>/render/, each with a JSON sidecar (run, configuration,
seed, return, behaviour descriptor)."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, fmt, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("render", help="record episodes of trained policies as GIF/MP4", description=__doc__)
    add_study_args(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--mature", action="store_true", help="every policy in runs/<study>/mature/index.json")
    which.add_argument(
        "--top", type=int, metavar="N", help="final models of the best N configurations, all their seeds"
    )
    which.add_argument("--run", type=int, metavar="N", help="one run, by its number")
    p.add_argument(
        "--checkpoints",
        action="store_true",
        help="with --run: every saved checkpoint and the final model, as a timeline",
    )
    p.add_argument("--episodes", type=int, default=1, help="episodes per policy, one file each (default 1)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the first episode; the others use seed+1, ... (default 0)",
    )
    p.add_argument("--format", choices=("gif", "mp4"), default="gif", help="file format (default gif)")
    p.add_argument("--fps", type=float, default=30, help="frames per second (default 30)")
    p.add_argument("--size", metavar="WxH", help="frame size, e.g. 300x200 (default: the environment's own)")
    p.add_argument(
        "--no-overlay", dest="overlay", action="store_false", help="no run/config/return text on the frames"
    )
    p.add_argument(
        "--max-steps", type=int, default=1000, help="cut episodes after this many steps (default 1000)"
    )
    p.add_argument("--workers", type=int, help="render processes (default: cores)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<study>/render)")
    return p


def parse_size(text: str | None) -> tuple[int, int] | None:
    from rlsweep.errors import ConfigError

    if text is None:
        return None
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 8 or int(height) < 8:
        raise ConfigError(f"--size must be WIDTHxHEIGHT with both at least 8, e.g. 300x200; got {text!r}")
    return int(width), int(height)


def execute(args: argparse.Namespace) -> int:
    import os
    import time
    from pathlib import Path

    from rlsweep.errors import ConfigError
    from rlsweep.render import study as select
    from rlsweep.render.pool import render_many

    if args.checkpoints and args.run is None:
        raise ConfigError("--checkpoints needs --run N (the run whose checkpoints to render)")
    for name, value in (
        ("--episodes", args.episodes),
        ("--max-steps", args.max_steps),
        ("--workers", args.workers or 1),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if not args.fps > 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")
    render = {
        "episodes": args.episodes,
        "seed": args.seed,
        "fmt": args.format,
        "fps": args.fps,
        "size": parse_size(args.size),
        "overlay": args.overlay,
        "max_steps": args.max_steps,
    }
    handle = open_handle(args)
    select.require_policies(handle)
    root = Path("runs")
    out_dir = Path(args.out) if args.out else root / handle.name / "render"
    if args.mature:
        jobs = select.policy_jobs(select.mature_policies(handle, root), out_dir, handle.name, **render)
    elif args.top is not None:
        jobs = select.policy_jobs(select.top_policies(handle, args.top), out_dir, handle.name, **render)
    elif args.checkpoints:
        jobs = select.timeline(handle, args.run, out_dir, **render)
    else:
        policy = select.policy_of(handle, select.find_run(handle, args.run))
        jobs = select.policy_jobs([policy], out_dir, handle.name, **render)
    workers = min(args.workers or os.cpu_count() or 1, len(jobs))
    print(
        f"rendering {len(jobs)} polic{'y' if len(jobs) == 1 else 'ies'} x {args.episodes} episode(s) on {workers} process(es)"
    )
    t0 = time.perf_counter()
    outcomes = render_many(jobs, workers)
    failed = 0
    for outcome in outcomes:
        if not outcome.ok:
            failed += 1
            print(f"failed: {outcome.job.model_path}: {outcome.error}")
            continue
        for r in outcome.results:
            print(f"wrote {r.path} (return {fmt(r.episode_return)}, {r.length} steps, seed {r.seed})")
    print(
        f"{len(outcomes) - failed} of {len(outcomes)} rendered in {time.perf_counter() - t0:.1f}s; see 'rlsweep report {handle.name}'"
    )
    return 1 if failed else 0
