"""SLURM launcher, through submitit: one array job whose tasks are workers.

Each array task runs the ordinary worker loop (`entry.serve`) until no run is left. Near its time
limit (or when preempted, where the cluster sends the signal) SLURM sends USR2: the worker settles its
run as interrupted, which queues it again in the storage (to resume from its last checkpoint where
the trainer records them), and submitit requeues the task, which then goes on claiming runs. SIGTERM
(scancel, Ctrl-C of `rlsweep run`) settles the run the same way and ends the task.

The storage URL reaches the tasks through the environment sbatch exports from this process
(RLSWEEP_STORAGE), never the script, the pickled job or a command line. `cluster=local` runs the array
with submitit's local executor (real processes on this machine), to try a setup without SLURM.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shlex
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError, closest
from rlsweep.launchers import absolute_url
from rlsweep.launchers._base import Launcher

log = logging.getLogger("rlsweep")

INTERRUPTED = 130
# How long a SLURM task that ended without a result file is given for the file to show (a shared
# file system can be late) before it counts as dead: submitit's own wait.
RESULT_GRACE_S = 15.0

# --slurm keys: what each takes and means (README "On a cluster" lists them too).
KEYS: dict[str, tuple[str, str]] = {
    "partition": ("text", "the partition to submit to"),
    "time": ("duration", "each task's time limit, as SLURM writes it (MM, HH:MM:SS, D-HH:MM:SS)"),
    "gpus_per_task": ("count", "GPUs per worker"),
    "gpus_per_node": ("count", "GPUs per node"),
    "cpus_per_task": ("count", "CPU cores per worker"),
    "mem": ("size", "memory per node (e.g. 16G)"),
    "mem_per_cpu": ("size", "memory per CPU core"),
    "mem_per_gpu": ("size", "memory per GPU"),
    "account": ("text", "the account to charge"),
    "qos": ("text", "quality of service"),
    "constraint": ("text", "node features (--constraint)"),
    "exclude": ("text", "nodes not to use"),
    "comment": ("text", "the job's comment"),
    "job_name": ("text", "the job's name (default rlsweep-<study>)"),
    "array_parallelism": ("count", "at most this many tasks run at once (default: all)"),
    "signal_delay_s": ("count", "seconds before the time limit at which workers stop and requeue (default 90)"),
    "max_timeouts": ("count", "how often a task may reach its time limit and be requeued (default 10)"),
    "cluster": ("text", "slurm (default), or local: submitit's local executor on this machine"),
}
_SIZE = re.compile(r"^\d+(\.\d+)?[KMGT]?B?$", re.IGNORECASE)
_DURATION = re.compile(r"^(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$")


def duration_minutes(text: str) -> float:
    """A SLURM time limit in minutes: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ConfigError(f"--slurm time: expected MM, HH:MM:SS or D-HH:MM:SS, got '{text}'")
    d, a, b, c = (int(x) if x is not None else None for x in m.group("d", "a", "b", "c"))
    if d is not None:  # D-H, D-H:M, D-H:M:S
        minutes = d * 1440 + a * 60 + (b or 0) + (c or 0) / 60  # type: ignore[operator]
    elif c is not None:  # H:M:S
        minutes = a * 60 + b + c / 60  # type: ignore[operator]
    elif b is not None:  # M:S
        minutes = a + b / 60  # type: ignore[operator]
    else:
        minutes = float(a)  # type: ignore[arg-type]
    if minutes <= 0:
        raise ConfigError(f"--slurm time: must be more than 0, got '{text}'")
    return minutes


def slurm_parameters(study: str, options: dict[str, str], resources: dict[str, float] | None = None) -> dict[str, Any]:
    """Validated --slurm options (+ --resources cpu/gpu) -> submitit SlurmExecutor parameters, plus
    `cluster` and `max_timeouts`. Every mistake names the key."""
    for key in options:
        if key not in KEYS:
            raise ConfigError(f"--slurm: unknown key '{key}'{closest(key, KEYS)}; known: {', '.join(KEYS)}")
    params: dict[str, Any] = {"job_name": f"rlsweep-{study}", "ntasks_per_node": 1, "stderr_to_stdout": True}
    for key, value in options.items():
        kind = KEYS[key][0]
        if kind == "count":
            if not value.isdigit() or (int(value) == 0 and key not in ("gpus_per_task", "gpus_per_node", "signal_delay_s")):
                raise ConfigError(f"--slurm {key}: needs a whole number >= 1, got '{value}'")
            params[key] = int(value)
        elif kind == "size":
            if not _SIZE.match(value):
                raise ConfigError(f"--slurm {key}: expected a size such as 16G or 4000M, got '{value}'")
            params[key] = value.upper()
        elif kind == "duration":
            params[key] = duration_minutes(value)
        else:
            params[key] = value
    if "time" not in params:
        raise ConfigError("--slurm: give time=HH:MM:SS (each task's time limit; workers requeue before it)")
    if params.get("cluster", "slurm") not in ("slurm", "local"):
        raise ConfigError(f"--slurm cluster: slurm or local, got '{params['cluster']}'")
    for name, key in (("cpu", "cpus_per_task"), ("gpu", "gpus_per_task")):
        amount = (resources or {}).get(name)
        if amount is None:
            continue
        if amount != int(amount):
            raise ConfigError(f"--resources {name}={amount:g}: SLURM allocates whole {name.upper()}s; to share a GPU use --launcher ray")
        if key in params and params[key] != int(amount):
            raise ConfigError(f"--resources {name}={amount:g} and --slurm {key}={params[key]} disagree; give one")
        if amount:
            params[key] = int(amount)
    for name in resources or {}:
        if name not in ("cpu", "gpu"):
            raise ConfigError(f"--resources: the slurm launcher knows cpu and gpu, got '{name}' (memory: --slurm mem=16G)")
    return params


class SlurmWorker:
    """What each array task runs (submitit pickles it): join the study, train until no run is left.
    Holds the study's name and the launch's token; the URL comes from the task's environment. Task
    i's worker id starts with `task_prefix(launch, i)`, so the launcher knows whose runs to
    settle if the task dies."""

    def __init__(self, study: str, launch: str = "") -> None:
        self.study = study
        self.launch = launch

    def __call__(self, task: int) -> int:
        from rlsweep.launchers.entry import serve

        url = os.environ.get("RLSWEEP_STORAGE")
        if not url:
            raise RuntimeError("RLSWEEP_STORAGE is not in the job's environment: sbatch must export it (--export=ALL)")
        usr = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))
        requeue = signal.getsignal(usr)  # submitit's: checkpoint this object and requeue the task
        stopped: list[int] = []

        def stop(signum: int, frame: Any) -> None:
            stopped.append(signum)
            signal.signal(usr, signal.SIG_IGN)
            # Stop as on SIGTERM, through the worker's own handler: it settles the run as interrupted
            # (queued again). Already ignored: a stop is under way, and its end requeues the task.
            on_term = signal.getsignal(signal.SIGTERM)
            if callable(on_term):
                on_term(signal.SIGTERM, frame)

        signal.signal(usr, stop)
        job = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SUBMITIT_LOCAL_JOB_ID", "job"))
        array_task = os.environ.get("SLURM_ARRAY_TASK_ID", task)
        worker_id = f"{task_prefix(self.launch, task)}{socket.gethostname()}-{os.getpid()}-job{job}_{array_task}"
        try:
            serve(self.study, url, worker_id=worker_id)
        except KeyboardInterrupt:
            # The run is settled and queued again. On USR2 the task itself is requeued (submitit
            # exits the process); on SIGTERM/SIGINT (scancel, Ctrl-C) it ends here.
            if stopped and callable(requeue):
                signal.signal(usr, requeue)
                requeue(usr, None)
            return INTERRUPTED
        return 0

    def checkpoint(self, task: int) -> Any:
        """submitit's requeue hook: the requeued task runs the same worker (its runs are in the storage)."""
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmWorker(self.study, self.launch), task)


def task_prefix(launch: str, task: int) -> str:
    """The start of the worker id of task `task` of launch `launch` (requeued or not)."""
    return f"slurm{launch}.{task}@"


class SlurmLauncher(Launcher):
    def __init__(self, study: str, options: dict[str, str], resources: dict[str, float] | None = None, folder: Path | None = None) -> None:
        params = slurm_parameters(study, options, resources)
        self.cluster = params.pop("cluster", "slurm")
        self.max_timeouts = params.pop("max_timeouts", 10)
        self.params = params
        self.folder = (folder or Path("runs") / study / "slurm").resolve() / "%j"
        self.jobs: list[Any] = []
        self._submit: Any = None  # submits task i (set by launch; respawn submits more)
        self.launch_token = os.urandom(3).hex()
        self._alive = (0.0, 0)
        self._codes: tuple[float, list[int | None]] = (0.0, [])
        self._no_result: dict[str, float] = {}  # job id -> when it was first seen ended without a result file
        self._ended: dict[str, int] = {}  # job id -> its exit code, once known (it does not change)

    # -- the script ------------------------------------------------------------------------------

    def sbatch_parameters(self) -> dict[str, Any]:
        """submitit SlurmExecutor parameters (time in whole minutes, as SLURM counts it)."""
        return {**self.params, "time": math.ceil(self.params["time"])}

    def executor_parameters(self) -> dict[str, Any]:
        if self.cluster == "local":
            return {"timeout_min": self.params["time"], "signal_delay_s": self.params.get("signal_delay_s", 90),
                    "gpus_per_node": self.params.get("gpus_per_task", 0), "stderr_to_stdout": True}  # fmt: skip
        return self.sbatch_parameters()

    def script(self, n_workers: int) -> str:
        """The sbatch script of an array of n workers, as submitit writes it when it submits."""
        from submitit.slurm.slurm import _make_sbatch_string

        command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(self.folder))])
        return _make_sbatch_string(command=command, folder=self.folder, map_count=n_workers, **self.sbatch_parameters())

    def dry_run_note(self) -> str:
        return ("dry run: nothing submitted. Submitting pickles the job beside the script in "
                f"{self.folder.parent}; the workers read the storage URL from RLSWEEP_STORAGE, which sbatch "
                "exports from the submitting shell")  # fmt: skip

    # -- the contract ----------------------------------------------------------------------------

    def launch(self, study: str, storage_url: str, n_workers: int, resources: dict[str, Any] | None = None) -> None:
        import submitit

        url = absolute_url(storage_url)
        if url.startswith("sqlite") and self.cluster == "slurm":
            log.warning(
                "rlsweep: warning: SLURM tasks on other nodes will open %s over a shared file system, where "
                "SQLite's locking is unreliable; use a PostgreSQL or MySQL server, or an Optuna journal file "
                "(README 'On a cluster')", url)  # fmt: skip
        executor: Any
        if self.cluster == "local":
            executor = submitit.LocalExecutor(self.folder, max_num_timeout=self.max_timeouts)
        else:
            executor = submitit.SlurmExecutor(self.folder, max_num_timeout=self.max_timeouts)
        executor.update_parameters(**self.executor_parameters())
        worker = SlurmWorker(study, self.launch_token)
        with _environment(RLSWEEP_STORAGE=url):  # sbatch (and the local executor) export it to the tasks
            self.jobs = executor.map_array(worker, range(n_workers))

        def submit(i: int) -> None:
            with _environment(RLSWEEP_STORAGE=url):
                self.jobs.append(executor.submit(worker, i))

        self._submit = submit

    def respawn(self, study: str, storage_url: str, count: int) -> int:
        """A job of one task for each worker that died (its node failed, it was killed): its runs
        were settled, and the array keeps its size."""
        if self._submit is None:
            return 0
        for _ in range(count):
            self._submit(len(self.jobs))
        self._alive, self._codes = (0.0, 0), (0.0, [])  # look again
        return max(0, count)

    def worker_prefix(self, i: int) -> str | None:
        return task_prefix(self.launch_token, i)

    def alive(self) -> int:
        # Each look may read a file per job on a shared file system (or ask sacct): once a second at most.
        now = time.monotonic()
        if now - self._alive[0] >= 1.0:
            self._alive = (now, sum(not job.done() for job in self.jobs))
        return self._alive[1]

    def exit_codes(self) -> list[int | None]:
        # The supervisor asks often; each answer may read files on a shared file system: once a second.
        now = time.monotonic()
        if now - self._codes[0] < 1.0:
            return self._codes[1]
        codes = [self._exit_code(job, now) for job in self.jobs]
        self._codes = (now, codes)
        return codes

    def _exit_code(self, job: Any, now: float) -> int | None:
        """The job's exit code (None: still running), read once: a finished job's result file is
        not loaded again at every look."""
        key = str(job.job_id)
        if key in self._ended:
            return self._ended[key]
        if not job.done():
            return None
        if not job.paths.result_pickle.exists():
            # Ended without a word (killed, or its node failed). submitit's result() would wait 15 s
            # for the file, holding up the supervisor; on a shared file system the file may show
            # late, so a SLURM task is given that long before it counts as dead.
            seen = self._no_result.setdefault(key, now)
            if self.cluster != "local" and now - seen < RESULT_GRACE_S:
                return None
            code = 1
        else:
            try:
                code = int(job.result())
            except Exception:
                code = 1
        self._ended[key] = code
        return code

    def interrupt(self) -> None:
        for job in self.jobs:
            if job.done():
                continue
            with contextlib.suppress(Exception):
                if self.cluster == "local":
                    # The local controller forwards SIGTERM to its task and waits for it to settle.
                    os.kill(int(job.job_id), signal.SIGTERM)
                else:
                    job.cancel(check=False)  # scancel: SLURM sends the task SIGTERM

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(not job.done() for job in self.jobs):
            if deadline is not None and time.monotonic() > deadline:
                for job in self.jobs:
                    with contextlib.suppress(Exception):
                        job.cancel(check=False)
                return
            time.sleep(0.2)
        self._alive, self._codes = (0.0, 0), (0.0, [])  # look again

    def discard(self) -> None:
        # Let the job objects go while the interpreter is whole (submitit's __del__ needs it).
        self.jobs = []

    def log_location(self) -> str:
        return str(self.folder.parent / "<job>_<task>" / "<job>_<task>_0_log.out")


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
