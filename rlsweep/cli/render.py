"""`rlsweep render STUDY --mature | --top N | --run N [--checkpoints]`: record seeded episodes of saved
policies as GIF or MP4 under runs/<study>/render/, each with a JSON sidecar (run, configuration,
seed, return, behaviour descriptor). With --shard K/N, N commands each render their share; every
file is recorded in the study, so the report shows them all."""

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
    p.add_argument(
        "--shard", metavar="K/N", help="render only shard K of N (0 <= K < N) of the files, e.g. $SLURM_ARRAY_TASK_ID/8"
    )
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
    import time

    from rlsweep.analysis.shards import parse_shard
    from rlsweep.api import Study
    from rlsweep.api.study import render_options

    options = dict(
        mature=args.mature, top=args.top, run=args.run, checkpoints=args.checkpoints, episodes=args.episodes,
        seed=args.seed, format=args.format, fps=args.fps, size=parse_size(args.size), overlay=args.overlay,
        max_steps=args.max_steps, workers=args.workers,
    )  # fmt: skip
    render_options(**options)  # bad options are reported before the study is opened
    shard = parse_shard(args.shard)
    study = Study(open_handle(args))
    t0 = time.perf_counter()
    outcomes = study.render(**options, out=args.out, shard=shard, echo=lambda message: print(message, flush=True))
    handle = study.handle
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
