"""Ray launcher: workers as Ray tasks on an existing cluster (`--address HOST:PORT`) or on a private
Ray instance started for this command.

Each task starts `python -m rlsweep worker` on its node, the same worker any shell starts: a trainer
that kills its process costs its run, not the Ray worker, and the task reports the worker's exit
code. The worker dies with its task (parent-death signal), and the task with this command: Ray ends a
job's tasks when its driver goes, and Ctrl-C or SIGTERM cancels them first so their runs are settled
as interrupted and queued again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError, RlsweepError
from rlsweep.launchers import absolute_url
from rlsweep.launchers._base import Launcher

log = logging.getLogger("rlsweep")

INTERRUPTED = 130  # the exit code of a task cancelled while its worker trained (as the CLI's)
_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}  # --resources names -> Ray's


def run_worker(study: str, url: str, index: int, workdir: str, log_dir: str, slot: str) -> int:
    """The body of one Ray task, on whichever node Ray chose: run one `rlsweep worker` to the end.

    The storage URL travels as a task argument and reaches the worker through its environment,
    never its command line. The worker runs in the driver's folder when the node has it (a shared
    file system), so relative paths in the sweep mean the same on every node. The worker's id starts
    with `slot` (unique to this task), so the driver knows whose runs to settle if the task dies."""
    import ray

    from rlsweep.threads import limit_threads

    node = ray.util.get_node_ip_address()
    cwd = workdir if os.path.isdir(workdir) else os.getcwd()
    logs = Path(log_dir)
    try:
        logs.mkdir(parents=True, exist_ok=True)
    except OSError:  # the driver's folder is not on this node: keep the log on the node
        logs = Path(os.environ.get("TMPDIR", "/tmp")) / "rlsweep" / study / "logs"
        logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RLSWEEP_STORAGE=url)
    limit_threads(env)
    worker_id = f"{slot}{node}-{os.urandom(2).hex()}"
    cmd = [sys.executable, "-m", "rlsweep", "worker", "--study", study, "--id", worker_id]
    with open(logs / f"ray-worker-{index}.log", "ab") as out:
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # Ray's share of the node's GPUs for this task
        out.write(f"ray task {index} on node {node} (CUDA_VISIBLE_DEVICES={gpus}): worker {worker_id}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_child_setup(os.getpid()),
        )  # fmt: skip
    # ray.cancel interrupts the task like a Ctrl-C (interrupt_main), which Python ignores while SIGINT
    # is ignored, as it is in Ray's worker processes: handle it for as long as this task runs.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Poll rather than block in waitpid: the interrupt arrives between polls.
        while proc.poll() is None:
            time.sleep(0.1)
    except KeyboardInterrupt:  # cancelled: the worker settles its run (queued again), then exits
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    return int(proc.returncode)


def _child_setup(parent: int) -> Any:
    """Popen preexec_fn for the worker: Ray's processes block SIGINT and the mask is inherited, so
    unblock it (Ctrl-C is forwarded as SIGINT); and SIGTERM the worker if the task's process dies
    (node lost, forced cancel): it settles its run and exits instead of training on unwatched."""

    def setup() -> None:
        from rlsweep.procs import die_with_parent

        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        die_with_parent(signal.SIGTERM, parent)

    return setup


class RayLauncher(Launcher):
    """`address`: a running cluster's HOST:PORT (as `ray start --head` prints); None starts a private
    local instance that ends with this launcher."""

    def __init__(self, address: str | None = None, log_dir: Path | None = None) -> None:
        self.address = address
        self.log_dir = log_dir
        self.refs: list[Any] = []
        self.slots: list[str] = []  # the worker-id prefix of each task (its index and this launch)
        self._submit: Any = None  # starts task i (set by launch; respawn starts more)
        self._codes: dict[int, int] = {}
        self._notes: list[str] = []
        self._connected = False
        self._sigterm: Any = None

    # -- connecting ------------------------------------------------------------------------------

    def prestart(self, n_workers: int, warm: Sequence[str] = ()) -> None:
        # Connect before the study is created: a wrong address is bad input, reported before anything.
        self._connect()

    def _connect(self) -> None:
        if self._connected:
            return
        import ray

        if self.address:
            _reachable(self.address)
        main = _in_main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        if self.address:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"--launcher ray: cannot connect to --address {self.address}: {_first_line(exc)}") from None
        else:
            _start_local_instance()
        self._connected = True
        if main:
            # ray.init installs a SIGTERM handler that exits at once; SIGTERM (what `timeout`, SLURM and
            # Kubernetes send) must interrupt like Ctrl-C, so the workers settle their runs first.
            self._sigterm = previous
            signal.signal(signal.SIGTERM, _sigterm_as_interrupt)

    # -- the contract ----------------------------------------------------------------------------

    def launch(self, study: str, storage_url: str, n_workers: int, resources: dict[str, Any] | None = None) -> None:
        import ray

        self._connect()
        url = absolute_url(storage_url)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        check_storage(url, [str(n.get("NodeManagerAddress", "")) for n in nodes], _local_addresses())
        options = task_options(resources, [n.get("Resources", {}) for n in nodes], self.address)
        self.log_dir = (self.log_dir or Path("runs") / study / "logs").resolve()
        remote = ray.remote(run_worker).options(**options, max_retries=0, scheduling_strategy="SPREAD")
        cwd, launch = os.getcwd(), os.urandom(3).hex()

        def submit(i: int) -> None:
            self.slots.append(f"ray{i}.{launch}@")
            self.refs.append(remote.remote(study, url, i, cwd, str(self.log_dir), self.slots[i]))

        self._submit = submit
        self.respawn(study, storage_url, n_workers)

    def respawn(self, study: str, storage_url: str, count: int) -> int:
        """More tasks of the launched kind (a node died with one: its runs were settled)."""
        for _ in range(count):
            self._submit(len(self.refs))
        return max(0, count)

    def worker_prefix(self, i: int) -> str | None:
        return self.slots[i]

    def alive(self) -> int:
        if not self.refs:
            return 0
        import ray

        _, pending = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
        return len(pending)

    def exit_codes(self) -> list[int | None]:
        import ray

        if not self.refs:
            return []
        ready, _ = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
        done = {ref.hex() for ref in ready}
        for i, ref in enumerate(self.refs):
            if i in self._codes or ref.hex() not in done:
                continue
            try:
                self._codes[i] = int(ray.get(ref))
            except ray.exceptions.TaskCancelledError:
                self._codes[i] = INTERRUPTED
            except ray.exceptions.RayError as exc:  # node died, worker process crashed, ...
                self._codes[i] = 1
                self._notes.append(f"ray task {i}: {type(exc).__name__}: {_first_line(exc)}")
        return [self._codes.get(i) for i in range(len(self.refs))]

    def interrupt(self) -> None:
        import ray

        for ref in self._pending():
            with contextlib.suppress(Exception):
                ray.cancel(ref)  # a KeyboardInterrupt in the task: it forwards SIGINT to its worker

    def wait(self, timeout: float | None = None) -> None:
        import ray

        if not self.refs:
            return
        ray.wait(self.refs, num_returns=len(self.refs), timeout=timeout)
        self.exit_codes()
        left = self._pending()
        for ref in left:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)  # kills the task's process; its worker gets SIGTERM
        if left:
            ray.wait(left, num_returns=len(left), timeout=30)

    def discard(self) -> None:
        """End everything this launcher started: tasks still running are cancelled (their workers
        settle their runs), then the connection goes (a private instance stops with it)."""
        if not self._connected:
            return
        import ray

        try:
            if self._pending():
                self.interrupt()
                self.wait(timeout=60)
            self.exit_codes()
        finally:
            ray.shutdown()
            self._connected = False
            if self._sigterm is not None and _in_main_thread():
                signal.signal(signal.SIGTERM, self._sigterm)
                self._sigterm = None

    def log_location(self) -> str:
        where = f"{self.log_dir or 'runs/<study>/logs'}/ray-worker-<i>.log (on the node, if it does not share this folder)"
        return "; ".join([where, *self._notes])

    def _pending(self) -> list[Any]:
        if not self.refs or not self._connected:
            return []
        import ray

        _, pending = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
        return list(pending)


def task_options(resources: dict[str, Any] | None, nodes: list[dict[str, float]], address: str | None) -> dict[str, Any]:
    """Ray options for one worker's task from `--resources` (cpu, gpu, memory in bytes, or any custom
    resource of the cluster); refused when no node could ever hold one worker (it would wait forever)."""
    wanted = {"cpu": 1.0, **(resources or {})}
    need: dict[str, float] = {}
    for name, amount in wanted.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ConfigError(f"--resources: {name} must be a number >= 0, got {amount!r}")
        if amount:
            need[_RAY_NAMES.get(name, name)] = float(amount)
    if not any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
        where = f"the Ray cluster at {address}" if address else "the local Ray instance"
        have = "; ".join(_describe(node) for node in nodes) or "no live nodes"
        asked = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
        raise ConfigError(f"--resources {asked}: no node of {where} can hold one worker (nodes: {have})")
    options: dict[str, Any] = {"num_cpus": need.get("CPU", 0.0), "num_gpus": need.get("GPU", 0.0)}
    if "memory" in need:
        options["memory"] = need["memory"]
    custom = {k: v for k, v in need.items() if k not in ("CPU", "GPU", "memory")}
    if custom:
        options["resources"] = custom
    return options


def _describe(node: dict[str, float]) -> str:
    shown = {k: v for k, v in node.items() if not k.startswith("node:") and k not in ("object_store_memory", "memory")}
    return ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items())) or "nothing"


def check_storage(url: str, node_addresses: list[str], local: set[str]) -> None:
    """A SQLite file is on this machine's disk: workers on other machines cannot open it. (A journal
    file is fine on a file system every node mounts; a server URL is fine anywhere.)"""
    if not url.startswith("sqlite"):
        return
    elsewhere = sorted({a for a in node_addresses if a and not _is_local(a, local)})
    if elsewhere:
        from rlsweep.storage import redact

        raise ConfigError(
            f"--launcher ray: the cluster has nodes on other machines ({', '.join(elsewhere)}) that cannot open "
            f"{redact(url)}; give --storage a PostgreSQL or MySQL URL, or an Optuna journal file on a file "
            "system every node mounts (e.g. /shared/rlsweep/study.log)"
        )


def _is_local(address: str, local: set[str]) -> bool:
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        pass
    return address in local


def _local_addresses() -> set[str]:
    names = {socket.gethostname(), socket.getfqdn()}
    found: set[str] = set()
    for name in names:
        with contextlib.suppress(OSError):
            found.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
    with contextlib.suppress(Exception):
        import ray

        found.add(ray.util.get_node_ip_address())  # the address this machine uses towards the cluster
    return found | names


def _start_local_instance(attempts: int = 3) -> None:
    """A private Ray instance for this command. Ray gives its raylet a fixed 30 s to register, which
    a loaded machine can miss: a failed start is cleaned up and tried again."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            return
        except Exception as exc:
            with contextlib.suppress(Exception):
                ray.shutdown()
            if attempt == attempts:
                raise RlsweepError(f"--launcher ray: could not start a local Ray instance: {_first_line(exc)}") from None
            log.warning("rlsweep: the local Ray instance did not start (%s); trying again", _first_line(exc))


def _reachable(address: str) -> None:
    """Refuse an address nothing listens on at once (ray.init would retry for minutes)."""
    host, _, port = address.rpartition(":")
    if address.startswith(("ray://", "auto")) or not host or not port.isdigit():
        return  # Ray's own forms: let ray.init judge them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise ConfigError(f"--launcher ray: cannot connect to --address {address}: {exc.strerror or exc}") from None


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
