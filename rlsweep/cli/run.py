"""`rlsweep run FILE | --algo A --env E`: validate, create or resume the study, start workers, show progress."""

from __future__ import annotations

import argparse
import os
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
    return p


def quickstart(args: argparse.Namespace) -> dict[str, Any]:
    from rlsweep.errors import ConfigError

    if not (args.algo and args.env):
        raise ConfigError("give a sweep file, or both --algo and --env")
    from rlsweep.trainers.sb3_spaces import default_space

    algo = args.algo
    timesteps = args.timesteps or 50_000
    return {
        "study": f"{args.env.split(':')[-1]}-{algo}".lower().replace("/", "-"),
        "trainer": {"kind": "sb3", "algo": algo, "env": args.env, "timesteps": timesteps},
        "eval": {"every": max(timesteps // 10, 1000), "episodes": 5},
        "objective": {"metric": "eval/mean_return", "mode": "max", "reduce": "mean_last", "k": 2},
        "strategy": {"name": "tpe", "runs": args.runs or 20, "pruner": "median"},
        "params": default_space(algo),
    }


def execute(args: argparse.Namespace) -> int:
    # Before numpy is first imported here: workers forked from this process inherit its BLAS
    # thread pools, and should get one thread each like workers started from a shell.
    from rlsweep.threads import limit_threads

    limit_threads()
    from rlsweep.config import load_sweep
    from rlsweep.errors import ConfigError

    overrides = list(args.overrides)
    if args.file:
        if args.algo or args.env:
            raise ConfigError("give either a sweep file or --algo/--env, not both", file=args.file)
        source: Any = args.file
    else:
        source = quickstart(args)
    if args.runs is not None and args.file:
        overrides.append(f"strategy.runs={args.runs}")
    if args.timesteps is not None and args.file:
        overrides.append(f"trainer.timesteps={args.timesteps}")
    if args.workers is not None and args.workers <= 0:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    loaded = load_sweep(source, overrides, file="<command line>" if not args.file else None)
    return run_loaded(loaded, args)


def run_loaded(loaded: Any, args: argparse.Namespace) -> int:
    from pathlib import Path

    from rlsweep import storage
    from rlsweep.errors import ConfigError
    from rlsweep.launchers.local import LocalLauncher
    from rlsweep.strategies import make_strategy
    from rlsweep.study import StudyHandle

    sweep = loaded.sweep
    url = args.storage or sweep.storage or storage.default_url(sweep.study)
    if args.index is not None and sweep.strategy.name != "grid":
        raise ConfigError(
            f"--index needs the grid strategy, the sweep uses '{sweep.strategy.name}'",
            file=loaded.file,
            key="strategy.name",
        )
    if args.new:
        loaded = _fresh_name(loaded, url)
        sweep = loaded.sweep
    if args.index is not None:
        handle = StudyHandle.create_or_load(loaded, url, force=args.force)
        return _run_index(handle, make_strategy(loaded), args.index)
    n_workers = args.workers or sweep.strategy.workers or os.cpu_count() or 1
    # Workers start now and import their libraries while the study is created; they begin only
    # when `supervise` names the study, and simply exit if anything below fails (bad input: exit 2).
    launcher = LocalLauncher(Path("runs") / sweep.study / "logs")
    launcher.prestart(n_workers, warm_modules(sweep.trainer))
    try:
        handle = StudyHandle.create_or_load(loaded, url, force=args.force)
        strategy = make_strategy(loaded)
        handle.enqueue(strategy.initial_runs())
        handle.reap_lost()
        handle.enqueue(strategy.recover(handle))
        counts = handle.row_counts()
        if not counts.get("waiting", 0) and not counts.get("running", 0):
            print(
                f"study '{sweep.study}': nothing left to run ({_counts(counts)}); see 'rlsweep top {sweep.study}'"
            )
            return 1 if counts.get("failed", 0) else 0
        print(
            f"study '{sweep.study}' in {storage.redact(url)}: {_counts(counts)}; starting {n_workers} worker(s)",
            flush=True,
        )
        return supervise(handle, n_workers, quiet=args.quiet, launcher=launcher)
    finally:
        launcher.discard()


def warm_modules(trainer: dict[str, Any]) -> list[str]:
    """What a worker of this trainer imports first (imported by standby workers ahead of time)."""
    from rlsweep.trainers import TRAINERS

    kind = str(trainer.get("kind"))
    modules = [TRAINERS[kind].partition(":")[0]] if kind in TRAINERS else []
    if kind == "sb3":
        modules += ["stable_baselines3", "gymnasium"]
    target = trainer.get("target")
    if kind == "function" and isinstance(target, str) and ":" in target:
        modules.append(target.partition(":")[0])
    return modules


def supervise(handle: Any, n_workers: int, *, quiet: bool = False, launcher: Any = None) -> int:
    """Start local workers, show progress until they exit; Ctrl-C stops them cleanly (exit 130)."""
    import time
    from pathlib import Path

    from rlsweep.launchers.local import LocalLauncher
    from rlsweep.progress import Progress

    log_dir = Path("runs") / handle.name / "logs"
    launcher = launcher or LocalLauncher(log_dir)
    launcher.launch(handle.name, handle.url, n_workers)
    from rlsweep.strategies import make_strategy

    progress = Progress(
        handle, every=10.0 if not quiet else 1e9, planned=make_strategy(handle.loaded).planned()
    )
    try:
        with progress:
            last = time.monotonic()
            while launcher.alive():
                time.sleep(0.05)  # notice the end at once; refresh the counts once a second
                if time.monotonic() - last >= 1.0:
                    progress.update()
                    last = time.monotonic()
        snap = progress.update()
    except KeyboardInterrupt:
        print(
            "\ninterrupting: running runs are marked interrupted and will resume on the next 'rlsweep run'",
            flush=True,
        )
        launcher.interrupt()
        launcher.wait(timeout=60)
        return 130
    codes = launcher.exit_codes()
    crashed = [c for c in codes if c not in (0, None)]
    if crashed:
        print(f"{len(crashed)} worker(s) exited with an error (codes {codes}); logs in {log_dir}")
    counts = handle.row_counts()
    unfinished = counts.get("waiting", 0) + counts.get("running", 0)
    print(f"finished: {snap.line()}")
    if unfinished:
        print(f"{unfinished} run(s) not finished; 'rlsweep run' again resumes them")
    print(f"next: rlsweep top {handle.name}")
    return 1 if (snap.failed or crashed or unfinished) else 0


def _run_index(handle: Any, strategy: Any, index: int) -> int:
    from rlsweep.errors import ConfigError
    from rlsweep.worker import Worker

    total = strategy.total()
    if not 0 <= index < total:
        raise ConfigError(
            f"--index {index} is outside the grid: 0..{total - 1} ({total} runs); see 'rlsweep grid'"
        )
    spec = strategy.run_spec(index)
    handle.enqueue([spec])
    handle.reap_lost()
    rows = {r.key: r for r in handle.rows()}
    row = rows[spec.key]
    if row.state in ("done", "pruned"):
        print(f"index {index} already finished as run {row.trial_number} ({row.state}); not re-running it")
        return 0
    retry = [r for k, r in rows.items() if k.startswith(spec.key + "/retry:") and r.state == "waiting"]
    key = retry[0].key if row.state != "waiting" and retry else spec.key
    if rows.get(key) is None or rows[key].state != "waiting":
        print(f"index {index} is {row.state} (worker {row.worker}); not starting it twice")
        return 1 if row.state == "failed" else 0
    worker = Worker(handle, echo=print)
    worker.loop(only_key=key, max_runs=1)
    final = {r.key: r for r in handle.rows()}[key]
    return 0 if final.state in ("done", "pruned") else 1


def _fresh_name(loaded: Any, url: str) -> Any:
    """--new: the first free name study-2, study-3 … in this storage."""
    import optuna

    from rlsweep import storage
    from rlsweep.config import load_sweep

    try:
        existing = {
            s.study_name
            for s in optuna.get_all_study_summaries(storage.open_optuna_storage(url, create=True))
        }
    except Exception:
        existing = set()
    name = loaded.sweep.study
    if name not in existing:
        return loaded
    n = 2
    while f"{name}-{n}" in existing:
        n += 1
    data = loaded.to_dict()
    data["study"] = f"{name}-{n}"
    print(f"study '{name}' exists; starting '{name}-{n}'")
    return load_sweep(data, file=loaded.file)


def _counts(counts: dict[str, int]) -> str:
    order = ("waiting", "running", "done", "pruned", "failed", "lost", "interrupted")
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k)) or "no runs yet"
