"""Local launcher: worker processes on this machine (the default).

Workers are separate `python -m rlsweep worker` processes, the same entry any shell or cluster
uses, each in its own session so a Ctrl-C reaches them once, forwarded by the parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlsweep.launchers._base import Launcher
from rlsweep.procs import die_with_parent, preexec_die_with_parent
from rlsweep.threads import CPUS_VAR, free_slot, limit_threads, worker_cpus

# The parent's import path, handed to the fresh interpreters it starts (private to rlsweep: a
# command trainer's program, perhaps another Python, must not see it as PYTHONPATH).
SYS_PATH_VAR = "RLSWEEP_SYS_PATH"


def own_import_path() -> list[str]:
    """This process's sys.path entries beyond the interpreter's own (its prefix), '' as the cwd."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if not any(path == p or path.startswith(p + os.sep) for p in prefixes) and path not in out:
            out.append(path)
    return out


def adopt_import_path() -> None:
    """In a worker started by the local launcher: add the launching process's import path."""
    entries = json.loads(os.environ.get(SYS_PATH_VAR) or "[]")
    sys.path[0:0] = [e for e in entries if e not in sys.path]  # ahead of site-packages, as there


def visible_gpus() -> list[str]:
    """GPU indices to spread workers over (CUDA_VISIBLE_DEVICES or nvidia-smi); empty without GPUs."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]


class LocalLauncher(Launcher):
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Any] = []  # subprocess.Popen or _Forked: poll, wait, send_signal, kill
        self._standby: list[Any] = []
        self._made: list[Path] = []
        self.slots = 0  # how many workers share this machine's CPUs (see rlsweep.threads.CPUS_VAR)
        self._slot_of: dict[int, int] = {}  # worker pid -> its slot

    def _env(
        self, i: int, gpus: list[str], storage_url: str | None = None, slot: int | None = None
    ) -> dict[str, str]:
        env = dict(os.environ)
        if storage_url is not None:
            # The URL travels in the environment (or stdin), not argv: `ps` would show a password.
            env["RLSWEEP_STORAGE"] = storage_url
        limit_threads(env)
        cpus = worker_cpus(slot, self.slots) if slot is not None else None
        if cpus and env.get(CPUS_VAR) != "":  # "" set by the user: off
            env[CPUS_VAR] = ",".join(map(str, cpus))
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        # A fresh interpreter imports the trainer's module from where this process found it (a test
        # suite's root, a script's folder), as multiprocessing's spawn does.
        env[SYS_PATH_VAR] = json.dumps(own_import_path())
        return env

    def _start(self, i: int, cmd: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            # Its own session (a terminal's Ctrl-C reaches it once, through us), and SIGTERM when
            # this process dies, even by SIGKILL: a worker never outlives `rlsweep run`.
            return subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=preexec_die_with_parent(signal.SIGTERM), **kwargs,
            )  # fmt: skip
        finally:
            log.close()

    def prestart(self, n_workers: int, warm: Sequence[str] = ()) -> None:
        """Start n workers in standby while the study is being created; `launch` names the study.

        On Linux, the workers are forked from this process once it has imported Optuna's storage
        layer (which creating the study needs anyway), so they start with nothing left to import;
        elsewhere they are `python -m rlsweep worker --standby` processes that import it meanwhile.
        Either way they import the trainer's libraries (torch ...) while they wait. Saves a worker's
        start-up (about a second, more with torch) per sweep."""
        # What this creates, so that a sweep refused before launch leaves no empty folders behind.
        self._made = [d for d in (self.log_dir, *self.log_dir.parents[:2]) if not d.exists()]
        self._made += [f for i in range(n_workers) if not (f := self.log_dir / f"worker-{i}.log").exists()]
        gpus = visible_gpus()
        self.slots = n_workers
        warm_args = [f"--warm={m}" for m in warm or []]
        # macOS frameworks dislike fork; a process that has started JAX's threads should not fork (the
        # child could inherit a lock a JAX thread held): start fresh interpreters in those cases,
        # unless the trainer is a function of this process's __main__ (a notebook's), which only a
        # forked child can see.
        can_fork = hasattr(os, "fork") and sys.platform.startswith("linux")
        if not can_fork or ("jax" in sys.modules and "__main__" not in (warm or [])):
            base = [sys.executable, "-m", "rlsweep", "worker", "--study", "-", "--standby", *warm_args]
            for i in range(n_workers):
                self._standby.append(self._start(i, base, self._env(i, gpus, slot=i), stdin=subprocess.PIPE))
                self._slot_of[self._standby[-1].pid] = i
            return
        from rlsweep.launchers.entry import preload

        preload()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(n_workers):
            self._standby.append(
                _fork_worker(self.log_dir / f"worker-{i}.log", self._env(i, gpus, slot=i), list(warm or []))
            )
            self._slot_of[self._standby[-1].pid] = i

    def discard(self) -> None:
        """Let standby workers that were never launched exit (they see the end of their stdin)."""
        for p in self._standby:
            with contextlib.suppress(OSError):
                assert p.stdin is not None
                p.stdin.close()
        for p in self._standby:
            p.wait()
        self._standby = []
        if not self.procs:  # nothing was launched: remove the empty logs and folders prestart made
            for path in sorted(self._made, key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()  # only if empty
                    elif path.stat().st_size == 0:
                        path.unlink()
        self._made = []

    def launch(
        self, study: str, storage_url: str, n_workers: int, resources: dict[str, Any] | None = None
    ) -> None:
        # Local workers share this machine; GPUs are spread over them (CUDA_VISIBLE_DEVICES), and a
        # request for more GPUs than it has cannot be met here.
        _check_resources(resources, len(visible_gpus()))
        self.slots = max(self.slots, n_workers)
        message = (json.dumps({"study": study, "storage": storage_url}) + "\n").encode()
        ready, self._standby = self._standby[:n_workers], self._standby[n_workers:]
        for p in ready:
            try:
                assert p.stdin is not None
                p.stdin.write(message)
                p.stdin.close()
                self.procs.append(p)
            except OSError:  # it died in standby (its log says why): start a fresh one instead
                p.wait()
        self.respawn(study, storage_url, n_workers - len(self.procs))
        self.discard()  # standby workers beyond n_workers (after the launched ones: their logs stay)

    def respawn(self, study: str, storage_url: str, count: int) -> int:
        gpus = visible_gpus()
        for _ in range(count):
            i = len(self.procs)
            # a replacement takes the CPUs of a worker that has ended
            taken = {self._slot_of.get(p.pid, -1) for p in self.procs if p.poll() is None}
            slot = free_slot(taken, self.slots)
            cmd = [sys.executable, "-m", "rlsweep", "worker", "--study", study]
            self.procs.append(self._start(i, cmd, self._env(i, gpus, storage_url, slot)))
            if slot is not None:
                self._slot_of[self.procs[-1].pid] = slot
        return max(0, count)

    def worker_prefix(self, i: int) -> str | None:
        return f"{socket.gethostname()}-{int(self.procs[i].pid)}-"  # as rlsweep.worker.new_worker_id

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def interrupt(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.time() + timeout
        for p in self.procs:
            remaining = None if deadline is None else max(0.1, deadline - time.time())
            try:
                p.wait(remaining)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def exit_codes(self) -> list[int | None]:
        return [p.poll() for p in self.procs]

    def log_location(self) -> str:
        return str(self.log_dir)


def _check_resources(resources: dict[str, Any] | None, gpus: int) -> None:
    from rlsweep.errors import ConfigError

    for name, amount in (resources or {}).items():
        if name not in ("cpu", "gpu"):
            raise ConfigError(f"resources: the local launcher knows cpu and gpu, got '{name}'")
        if not isinstance(amount, (int, float)) or amount < 0:
            raise ConfigError(f"resources: {name} must be a number >= 0, got {amount!r}")
    if (resources or {}).get("gpu") and not gpus:
        raise ConfigError(f"resources: gpu={resources['gpu']} asked for, but this machine shows no GPU")  # type: ignore[index]


class _Forked:
    """A forked worker with the part of subprocess.Popen's interface the launcher uses."""

    def __init__(self, pid: int, stdin: Any) -> None:
        self.pid = pid
        self.stdin = stdin
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _fork_worker(log_path: Path, env: dict[str, str], warm: list[str]) -> _Forked:
    """Fork a standby worker: its own session (a terminal's Ctrl-C reaches it once, through the
    launcher), output to `log_path`, the study's name and URL read from a pipe."""
    read_fd, write_fd = os.pipe()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            os.setsid()
            die_with_parent(signal.SIGTERM, parent)  # never outlive `rlsweep run`, even if it is SIGKILLed
            os.close(write_fd)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            # Whatever the parent's sys.stdout was (a terminal wrapper, a test's capture), print to the log.
            sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
            os.environ.clear()
            os.environ.update(env)
            # Connections the parent opened (e.g. `run --new` looking up names) are not this
            # process's to use.
            from rlsweep.storage import forget_engines_after_fork

            forget_engines_after_fork()
            sys.stdin = os.fdopen(read_fd, "r")
            from rlsweep.launchers.entry import standby_main

            code = standby_main(warm)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(read_fd)
    os.close(log_fd)
    return _Forked(pid, os.fdopen(write_fd, "wb"))
