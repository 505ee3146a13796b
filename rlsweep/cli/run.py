"""`rlsweep run FILE | --algo A --env E`: validate, create or resume the study, start workers, show progress."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run a sweep (search), resuming it if it exists", description=__doc__)
    p.add_argument("file", nargs="?", help="sweep file (YAML or JSON)")
    p.add_argument(
        "--algo", help="quick start without a file: algorithm (e.g. ppo), with its default search space"
    )
    p.add_argument("--env", help="quick start: Gymnasium environment id")
    p.add_argument("--runs", type=int, help="quick start: number of runs (same as --set strategy.runs=N)")
    p.add_argument("--timesteps", type=int, help="quick start: environment steps per run")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a sweep-file value",
    )
    p.add_argument(
        "--workers", type=int, help="local worker processes (default: strategy.workers, else cores)"
    )
    p.add_argument("--storage", help="storage URL (overrides the sweep file)")
    p.add_argument(
        "--index", type=int, help="grid: train exactly this run index in this process (array jobs)"
    )
    p.add_argument(
        "--new",
        action="store_true",
        help="if the study exists with another space, start a new study beside it",
    )
    p.add_argument(
        "--force", action="store_true", help="continue an existing study even if its search space changed"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    g = p.add_argument_group("where workers run")
    g.add_argument(
        "--launcher", choices=("local", "ray", "slurm"), default="local",
        help="local processes (default), Ray tasks, or a SLURM array job (through submitit)",
    )  # fmt: skip
    g.add_argument("--address", metavar="HOST:PORT", help="ray: the cluster to join (default: a private local instance)")
    g.add_argument(
        "--resources", metavar="K=V,...",
        help="per worker: cpu, gpu (fractions share a GPU under Ray), memory (bytes, Ray); e.g. cpu=1,gpu=0.25",
    )  # fmt: skip
    g.add_argument(
        "--slurm", action="append", default=[], metavar="K=V,...",
        help="slurm: partition, time (D-HH:MM:SS), gpus_per_task, cpus_per_task, mem, account, qos, ... "
        "(see README 'On a cluster')",
    )  # fmt: skip
    g.add_argument("--dry-run", action="store_true", help="slurm: print the sbatch script, submit nothing")
    return p


def make_launcher(args: argparse.Namespace, study: str, resources: dict[str, float]) -> Any:
    """The launcher the flags ask for (None: the local default, built by the engine); flags that do
    not belong to it are bad input."""
    from rlsweep.errors import ConfigError

    misplaced = [
        (args.address, "--address", "ray"), (args.slurm, "--slurm", "slurm"), (args.dry_run, "--dry-run", "slurm"),
    ]  # fmt: skip
    for given, flag, launcher in misplaced:
        if given and args.launcher != launcher:
            raise ConfigError(f"{flag} is for --launcher {launcher}, not --launcher {args.launcher}")
    if args.launcher != "local" and args.index is not None:
        raise ConfigError(f"--index trains one run in this process; it takes no --launcher {args.launcher}")
    if args.launcher == "ray":
        from rlsweep.launchers.ray import RayLauncher

        return RayLauncher(args.address)
    if args.launcher == "slurm":
        from rlsweep.launchers import parse_pairs
        from rlsweep.launchers.slurm import SlurmLauncher

        options: dict[str, str] = {}
        for text in args.slurm:
            for key, value in parse_pairs(text, "--slurm").items():
                if key in options:
                    raise ConfigError(f"--slurm: '{key}' given twice")
                options[key] = value
        return SlurmLauncher(study, options, resources)
    return None


def quickstart(args: argparse.Namespace) -> dict[str, Any]:
    from rlsweep.errors import ConfigError

    if not (args.algo and args.env):
        raise ConfigError("give a sweep file, or both --algo and --env")
    from rlsweep.trainers import quickstart_sweep

    return quickstart_sweep(args.algo, args.env, args.timesteps or 50_000, args.runs or 20)


def execute(args: argparse.Namespace) -> int:
    # Before numpy is first imported here: workers forked from this process inherit its BLAS
    # thread pools, and should get one thread each like workers started from a shell.
    from rlsweep.threads import limit_threads

    limit_threads()
    import sys

    from rlsweep.api.engine import start_sweep
    from rlsweep.config import load_sweep
    from rlsweep.errors import ConfigError

    overrides = list(args.overrides)
    flags: dict[str, str] = {}  # an override made from a flag is blamed on the flag
    if args.file:
        if args.algo or args.env:
            raise ConfigError("give either a sweep file or --algo/--env, not both", file=args.file)
        source: Any = args.file
    else:
        source = quickstart(args)
    if args.runs is not None and args.file:
        overrides.append(f"strategy.runs={args.runs}")
        flags[f"--set strategy.runs={args.runs}: "] = f"--runs {args.runs}: "
    if args.timesteps is not None and args.file:
        overrides.append(f"trainer.timesteps={args.timesteps}")
        flags[f"--set trainer.timesteps={args.timesteps}: "] = f"--timesteps {args.timesteps}: "
    if args.workers is not None and args.workers <= 0:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    try:
        loaded = load_sweep(source, overrides, file="<command line>" if not args.file else None)
    except ConfigError as exc:
        for made, flag in flags.items():
            if str(exc).startswith(made):
                raise ConfigError(flag + str(exc).removeprefix(made)) from None
        raise
    from rlsweep.launchers import parse_resources

    resources = parse_resources(args.resources)
    launcher = make_launcher(args, loaded.sweep.study, resources)
    if args.dry_run:
        from rlsweep.api.engine import default_workers

        print(launcher.script(default_workers(loaded.sweep, args.workers)), end="")
        print(launcher.dry_run_note(), file=sys.stderr)
        return 0
    result = start_sweep(
        loaded,
        workers=args.workers,
        launcher=launcher,
        resources=resources or None,
        storage=args.storage,
        new=args.new,
        force=args.force,
        index=args.index,
        progress=None if args.quiet else sys.stdout,
        echo=lambda message: print(message, flush=True),
    )
    if result.started and args.index is None and result.code != 130:
        from rlsweep.api.children import POPULATION

        population = loaded.sweep.strategy.name in POPULATION
        print(f"next: rlsweep {'lineage' if population else 'top'} {result.study}")
    return result.code
