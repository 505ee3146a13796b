"""The command line. One module per command, each with `add_parser(subparsers)` and `execute(args) -> int`.

Command modules import only argparse at the top, so `rlsweep --help` stays fast; the work they do
imports what it needs.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from rlsweep import __version__
from rlsweep.errors import RlsweepError

# Order is the order of `rlsweep --help`.
COMMANDS = (
    "run", "worker", "status", "top", "grid", "space", "export", "reseed", "mature",
    "render", "report", "dashboard", "lineage", "replay", "import",
)  # fmt: skip
EXIT_CODES = "exit codes: 0 done, 1 runs failed, 2 bad input (before any run starts), 130 interrupted"
LOG_FILE = Path("runs") / "rlsweep.log"
# The extra (pyproject.toml) that installs each optional package a command may import.
EXTRA_OF = {
    "stable_baselines3": "sb3", "sb3_contrib": "sb3", "gymnasium": "sb3", "tensorboard": "sb3",
    "cmaes": "samplers", "sklearn": "samplers", "psycopg2": "postgres", "pymysql": "mysql",
    "ray": "ray", "submitit": "slurm", "jax": "jax", "jaxlib": "jax", "rejax": "jax", "gymnax": "jax",
    "PIL": "render", "imageio": "render", "imageio_ffmpeg": "render", "pygame": "render",
    "matplotlib": "report", "pandas": "report", "pyarrow": "report", "optuna_dashboard": "report",
    "mujoco": "mujoco", "ale_py": "atari", "cv2": "atari",
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsweep",
        description="Tune reinforcement-learning agents and look at what they learned.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"rlsweep {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = "import_" if name == "import" else name
        try:
            module = importlib.import_module(f"rlsweep.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"rlsweep.cli.{module_name}":
                continue  # a command not built yet is simply not offered
            raise
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(execute=module.execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "execute", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    restore = _terminate_as_interrupt()
    try:
        return int(args.execute(args))
    except RlsweepError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"rlsweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rlsweep: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected error: one line here, the traceback in the log file
        if args.debug:
            raise
        top = (getattr(exc, "name", None) or "").partition(".")[0]
        extra = EXTRA_OF.get(top)
        if isinstance(exc, ModuleNotFoundError) and extra and exc.name == top:  # an optional package this command needs
            print(
                f"rlsweep: error: '{args.command}' needs {exc.name}, which is not installed: "
                f"pip install 'rlsweep[{extra}]' (or bash scripts/setup.sh all)", file=sys.stderr,
            )  # fmt: skip
            return 2
        if isinstance(exc, ImportError) and extra:  # installed, but part of it is missing (a full disk during setup)
            print(
                f"rlsweep: error: '{args.command}' could not import {top}, which is installed but broken ({exc}); "
                f"reinstall it: pip install --force-reinstall --no-deps {_distribution(top)}", file=sys.stderr,
            )  # fmt: skip
            return 2
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        with LOG_FILE.open("a") as fh:
            fh.write(traceback.format_exc())
        from rlsweep import storage

        outage = storage.outlasted_wait(exc)
        if outage:  # not a bug: the server stayed away longer than we wait for it
            print(f"rlsweep: error: {outage}", file=sys.stderr)
            return 1
        print(f"rlsweep: internal error: {type(exc).__name__}: {exc} (traceback in {LOG_FILE}; --debug shows it)", file=sys.stderr)
        return 1
    finally:
        restore()


def _distribution(module: str) -> str:
    """The pip package that installs `module` (its own name where nothing installed says so)."""
    from importlib.metadata import packages_distributions

    known = {"PIL": "pillow", "cv2": "opencv-python", "sklearn": "scikit-learn"}
    return (packages_distributions().get(module) or [known.get(module, module)])[0]


def _terminate_as_interrupt() -> Callable[[], None]:
    """SIGTERM (what `timeout`, `kill` and a SLURM time limit send) stops a command like Ctrl-C:
    running runs are marked interrupted and resume on the next `rlsweep run` (exit code 130).
    Returns a function that puts the previous handler back (main() called from a program)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    before = signal.getsignal(signal.SIGTERM)

    def once(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not break the cleanup
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, once)

    def restore() -> None:
        signal.signal(signal.SIGTERM, before)

    return restore


def run_main() -> None:
    code = main()
    # The process ends here: close the database connections, then leave the objects Optuna,
    # SQLAlchemy and alembic made out of the interpreter's last garbage collection, which took
    # 0.3 s of every command's wall time on a 2-core machine (bench/command_overhead.py).
    from rlsweep import storage

    storage.dispose_engines()
    sys.stdout.flush()
    gc.freeze()
    sys.exit(code)
