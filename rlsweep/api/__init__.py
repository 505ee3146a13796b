"""The Python API: the same engine as the command line, returning data instead of printing.

    import rlsweep
    sweep = rlsweep.Sweep.from_file("examples/cartpole-ppo.yaml")
    study = rlsweep.run(sweep, workers=2)
    study.top(10)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from rlsweep.api.engine import Echo, RunResult, silent
from rlsweep.api.markers import choice, grid, int_, integer, logint, loguniform, opt_values, uniform
from rlsweep.api.study import Study
from rlsweep.api.sweep import Sweep, trainer

__all__ = [
    "RunResult", "Study", "Sweep", "choice", "grid", "int_", "integer", "load", "logint", "loguniform",
    "opt_values", "run", "trainer", "uniform",
]  # fmt: skip


def run(
    sweep: Sweep | str | Path,
    *,
    workers: int | None = None,
    storage: str | None = None,
    new: bool = False,
    force: bool = False,
    index: int | None = None,
    overrides: list[str] | None = None,
    progress: bool | TextIO = False,
    echo: Echo | None = None,
) -> Study:
    """Run a sweep to the end (creating or resuming its study) and return the study.

    The same engine and output files as `rlsweep run`: the storage (by default
    `sqlite:///runs/<study>/study.db`), worker logs under `runs/<study>/logs`, artifacts under
    `runs/<study>/artifacts`. `workers` local worker processes (default: the sweep's
    `strategy.workers`, else the number of cores); `index` trains one grid run in this process.
    Nothing is printed unless `progress=True` (progress lines on stdout) or an `echo` function is
    given. Bad input raises rlsweep.ConfigError before any run starts; Ctrl-C stops the workers
    cleanly and raises KeyboardInterrupt. `study.result.code` is the CLI's exit code.

    Example (a few seconds; the synthetic trainer needs no RL library):

    >>> import rlsweep
    >>> sweep = rlsweep.Sweep(
    ...     study="api-demo",
    ...     trainer={"kind": "function", "target": "rlsweep.examples.synthetic:train", "timesteps": 200},
    ...     eval={"every": 50},
    ...     objective={"metric": "eval/mean_return", "mode": "max"},
    ...     strategy={"name": "tpe", "runs": 12},
    ...     params={"learning_rate": rlsweep.loguniform(1e-4, 1e-1), "width": rlsweep.choice(32, 64)},
    ... )
    >>> study = rlsweep.run(sweep, workers=2)          # doctest: +SKIP
    >>> study.top(3)                                    # doctest: +SKIP
    """
    from rlsweep.api.engine import start_sweep
    from rlsweep.threads import limit_threads

    # Before numpy is first imported: forked workers inherit the BLAS thread pools, one thread each.
    limit_threads()
    if not isinstance(sweep, Sweep):
        sweep = Sweep.from_file(sweep, overrides or [])
    elif overrides:
        sweep = sweep.with_overrides(overrides)
    out = sys.stdout if progress is True else (progress or None)
    result = start_sweep(
        sweep.loaded,
        workers=workers,
        storage=storage,
        new=new,
        force=force,
        index=index,
        progress=out if not isinstance(out, bool) else None,
        echo=echo or silent,
    )
    if result.code == 130:
        raise KeyboardInterrupt
    return Study(_open(result.study, result.url), result)


def load(name: str, storage: str | None = None) -> Study:
    """Open a study by name: `storage` (a URL), else $RLSWEEP_STORAGE, else the local runs/*/study.db
    that holds it, as the CLI finds it."""
    import os

    from rlsweep.storage import find_local_study

    return Study(_open(name, storage or os.environ.get("RLSWEEP_STORAGE") or find_local_study(name)))


def _open(name: str, url: str) -> Any:
    from rlsweep.study import StudyHandle

    return StudyHandle.load(name, url)
