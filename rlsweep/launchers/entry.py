"""A worker process's life, shared by every way a worker starts: `rlsweep worker` from a shell, a
standby worker forked by the local launcher, a Ray task or an array job. It loads the study from
its storage, trains runs until none is left, and turns the first SIGINT/SIGTERM into a clean stop."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Sequence

# Imported ahead of need by standby workers while `rlsweep run` creates the study.
PRELOAD = ("rlsweep.study", "rlsweep.worker", "rlsweep.strategies", "optuna.storages._rdb.models",
           "alembic.migration", "alembic.command", "alembic.script", "alembic.config")  # fmt: skip


def preload(modules: Sequence[str] = PRELOAD) -> None:
    """Import modules ahead of need; best effort (the real import reports a missing package properly)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass


def wait_for_study(warm: Sequence[str] = ()) -> tuple[str, str] | None:
    """Standby: import what the run will need, then read one JSON line {"study", "storage"} from
    stdin. None when the launcher went away without sending it (nothing to do)."""
    preload((*PRELOAD, *warm))
    line = sys.stdin.readline()
    if not line.strip():
        return None
    message = json.loads(line)
    return str(message["study"]), str(message["storage"])


def serve(
    study: str, url: str, *, worker_id: str | None = None, max_runs: int | None = None, echo: Callable[[str], None] | None = None
) -> int:
    """Join the study and train its runs until none is left; returns how many this worker finished."""
    import logging

    from rlsweep.study import StudyHandle
    from rlsweep.worker import Worker, handle_interrupts

    logging.getLogger("rlsweep").setLevel(logging.INFO)
    say = echo or (lambda message: print(message, flush=True))

    handle_interrupts()  # the first SIGINT/SIGTERM stops the run cleanly; later ones are ignored
    handle = StudyHandle.load(study, url)
    worker = Worker(handle, worker_id, echo=say)
    worker.own_process = True
    n = worker.loop(max_runs=max_runs)
    say(f"worker {worker.id}: {n} run(s) finished; no more work")
    return n


def standby_main(warm: Sequence[str]) -> int:
    """The body of a forked standby worker: wait for the study, then serve it. Exit codes as the CLI's."""
    import logging

    from rlsweep.errors import RlsweepError

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        target = wait_for_study(warm)
        if target is None:
            return 0
        serve(*target)
        return 0
    except RlsweepError as exc:
        print(f"rlsweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rlsweep: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI's one line where the storage stayed away; a traceback otherwise
        from rlsweep.storage import outlasted_wait

        outage = outlasted_wait(exc)
        if outage is None:
            raise
        print(f"rlsweep: error: {outage}", file=sys.stderr)
        return 1
