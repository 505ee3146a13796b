"""The Ray launcher on a real two-node Ray cluster on loopback (head 127.0.0.2, node 127.0.0.3), each
node a `ray start --block` process group of this test's own, stopped by killing that group: workers run
as Ray tasks spread over both nodes with fractional GPUs, Ctrl-C and SIGTERM leave no worker behind
(nor a private instance's processes), and a node killed mid-sweep loses only its runs, which the reaper queues again."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlsweep.errors import ConfigError
from rlsweep.launchers import absolute_url
from tests.conftest import synthetic_sweep
from tests.launchers.helpers import PATIENT, assert_interrupted, handle_at, processes_of, training, wait_for

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
HEAD, NODE = "127.0.0.2", "127.0.0.3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (where port 0 binds)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class Cluster:
    """Two Ray nodes on loopback, each `ray start --block` in a process group of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        # Ray's sockets live under its temp dir, and a Unix socket path must stay under 108 bytes.
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rlsw-ray-"))
        self.port = free_port()
        self.address = f"{HEAD}:{self.port}"
        # No auth token to pass around; fast node-death detection (the kill test waits on it).
        self.env = {
            **os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT),
            "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
        }  # fmt: skip
        self.groups: dict[str, subprocess.Popen[bytes]] = {}

    def _ports(self) -> list[str]:
        # The single ports come from the kernel's ephemeral range (free_port); the workers' range
        # lies below it, so the two never overlap (Ray refuses to start when they do).
        base = 20000 + (os.getpid() * 7 + len(self.groups) * 200) % max(1, ephemeral_low() - 20000 - 400)
        flags = ["--node-manager-port", "--object-manager-port", "--metrics-export-port", "--runtime-env-agent-port",
                 "--dashboard-agent-grpc-port", "--dashboard-agent-listen-port"]  # fmt: skip
        args = [f"{flag}={free_port()}" for flag in flags]
        return [*args, f"--min-worker-port={base}", f"--max-worker-port={base + 150}"]

    def start(self, ip: str) -> None:
        # Ray gives a raylet a fixed 30 s to register, which a heavily loaded machine can miss: try
        # again, on fresh ports.
        for attempt in range(3):
            common = ["--block", f"--node-ip-address={ip}", "--num-cpus=1", "--num-gpus=1",
                      "--object-store-memory=100000000", "--disable-usage-stats", *self._ports()]  # fmt: skip
            if ip == HEAD:
                args = ["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.ray_tmp}",
                        f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}"]  # fmt: skip
            else:
                args = [f"--address={self.address}"]
            log_path = self.tmp / f"node-{ip}-{attempt}.log"
            with open(log_path, "wb") as log:
                self.groups[ip] = subprocess.Popen(
                    [str(RAY), "start", *args, *common], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                    cwd=self.tmp, start_new_session=True,
                )  # fmt: skip
            deadline = time.monotonic() + 180
            while b"block forever" not in log_path.read_bytes():
                if self.groups[ip].poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            else:
                return
            self.kill(ip)
        raise RuntimeError(f"ray node {ip} did not start:\n{log_path.read_text()[-3000:]}")

    def kill(self, ip: str) -> None:
        proc = self.groups.pop(ip, None)
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("ray-cluster"))
    try:
        c.start(HEAD)
        c.start(NODE)
        yield c
    finally:
        for ip in list(c.groups):
            c.kill(ip)
        shutil.rmtree(c.ray_tmp, ignore_errors=True)


def write_sweep(tmp_path: Path, name: str, **overrides: Any) -> Path:
    sweep = synthetic_sweep(name, tmp_path, **{**PATIENT, **overrides})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def rlsweep_run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", "sweep.yaml", "--quiet", "--launcher", "ray", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def url_of(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/runs/{name}/study.db"


def handle(tmp_path: Path, name: str) -> Any:
    return handle_at(url_of(tmp_path, name), name)


def gone(study: str, *more: str) -> bool:
    """No worker of the study and no Ray task of ours is left."""
    return not processes_of(study, "ray::run_worker", *more)


def task_lines(tmp_path: Path, name: str) -> list[str]:
    logs = sorted((tmp_path / "runs" / name / "logs").glob("ray-worker-*.log"))
    return [p.read_text().splitlines()[0] for p in logs]


def test_storage_and_options_checks() -> None:
    """Pure checks: a SQLite URL is refused when nodes are on other machines; loopback and this
    machine's own addresses are fine; a resource no node has is refused."""
    from rlsweep.launchers.ray import check_storage, task_options

    check_storage("sqlite:////tmp/s.db", ["127.0.0.2", "127.0.0.3", "10.1.2.3"], {"10.1.2.3"})
    check_storage("postgresql+psycopg2://u:pw@db/rl", ["10.9.9.9"], set())
    with pytest.raises(ConfigError) as err:
        check_storage("sqlite:////tmp/s.db", ["10.1.2.3", "10.1.2.4"], {"10.1.2.3"})
    assert str(err.value) == (
        "--launcher ray: the cluster has nodes on other machines (10.1.2.4) that cannot open sqlite:////tmp/s.db; "
        "give --storage a PostgreSQL or MySQL URL, or an Optuna journal file on a file system every node mounts "
        "(e.g. /shared/rlsweep/study.log)"
    )
    nodes = [{"CPU": 4.0, "GPU": 1.0, "node:10.0.0.1": 1.0}, {"CPU": 8.0, "memory": 8e9}]
    assert task_options({"gpu": 0.25}, nodes, "h:1") == {"num_cpus": 1.0, "num_gpus": 0.25}
    assert task_options({"cpu": 2, "memory": 1e9}, nodes, "h:1") == {"num_cpus": 2.0, "num_gpus": 0.0, "memory": 1e9}
    with pytest.raises(ConfigError) as err:
        task_options({"cpu": 1, "tpu": 1}, nodes, None)
    assert str(err.value) == (
        "--resources cpu=1, tpu=1: no node of the local Ray instance can hold one worker (nodes: CPU=4, GPU=1; CPU=8)"
    )
    assert absolute_url("sqlite:///runs/x/study.db") == f"sqlite:///{Path.cwd() / 'runs/x/study.db'}"
    assert absolute_url("runs/x/study.log") == f"journal:{Path.cwd() / 'runs/x/study.log'}"


def test_sigterm_with_a_private_local_instance(tmp_path: Path, study_name: str) -> None:
    """Without --address a private Ray instance starts for the command; SIGTERM (what `timeout` and
    schedulers send) interrupts like Ctrl-C, and the instance's processes go with the command."""
    write_sweep(tmp_path, study_name, strategy__runs=4, trainer__sleep=3.0)
    ray_tmp = tempfile.mkdtemp(prefix="rlsw-ray-")  # short: Ray's sockets live under it
    try:
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT), "RAY_TMPDIR": ray_tmp}
        run = rlsweep_run(tmp_path, env, "--workers", "2")
        wait_for(lambda: len(training(url_of(tmp_path, study_name), study_name)) == 2, 300, "both workers training")
        assert processes_of(ray_tmp), "the instance does not run under RAY_TMPDIR"
        run.send_signal(signal.SIGTERM)
        out = run.communicate(timeout=120)[0]
        assert run.returncode == 130, out
        assert_interrupted(handle(tmp_path, study_name), configurations=4, workers=2)
        wait_for(lambda: gone(study_name, ray_tmp), 30, "the instance gone")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_workers_run_as_ray_tasks_on_both_nodes_sharing_gpus(cluster: Cluster, tmp_path: Path, study_name: str) -> None:
    """Three workers of cpu=0.5, gpu=0.5 on two nodes of one (logical) GPU each: spread over both
    nodes, Ray's GPU share visible to the worker, every run trained once, no task left behind."""
    write_sweep(tmp_path, study_name, strategy__runs=6, trainer__sleep=0.2)
    run = rlsweep_run(tmp_path, cluster.env, "--address", cluster.address, "--workers", "3", "--resources", "cpu=0.5,gpu=0.5")
    out = run.communicate(timeout=300)[0]
    assert run.returncode == 0, out
    assert "finished: 6/6 finished (done 6, pruned 0, failed 0)" in out, out
    lines = task_lines(tmp_path, study_name)
    assert len(lines) == 3, lines
    assert {line.split(" on node ")[1].split()[0] for line in lines} == {HEAD, NODE}, lines
    assert all("(CUDA_VISIBLE_DEVICES=0)" in line for line in lines), lines
    h = handle(tmp_path, study_name)
    rows = h.rows()
    assert h.row_counts() == {"done": 6} and len({r.trial_number for r in rows}) == 6
    assert all(r.worker.startswith("ray") and "@127.0.0." in r.worker for r in rows)
    wait_for(lambda: gone(study_name), 30, "no worker or Ray task left")


def test_bad_resources_and_address_are_refused_before_any_run(cluster: Cluster, tmp_path: Path, study_name: str) -> None:
    write_sweep(tmp_path, study_name)
    run = rlsweep_run(tmp_path, cluster.env, "--address", cluster.address, "--resources", "cpu=1,gpu=2")
    out = run.communicate(timeout=300)[0]
    assert run.returncode == 2, out
    assert (
        f"rlsweep: error: --resources cpu=1, gpu=2: no node of the Ray cluster at {cluster.address} can hold one worker "
        "(nodes: CPU=1, GPU=1; CPU=1, GPU=1)"
    ) in out, out
    assert handle(tmp_path, study_name).row_counts() == {"waiting": 6}  # nothing ran
    port = free_port()  # nothing listens there
    run = rlsweep_run(tmp_path, cluster.env, "--address", f"{HEAD}:{port}")
    out = run.communicate(timeout=300)[0]
    assert run.returncode == 2, out
    assert f"rlsweep: error: --launcher ray: cannot connect to --address {HEAD}:{port}: Connection refused" in out, out


def test_ctrl_c_interrupts_the_runs_and_leaves_no_worker(cluster: Cluster, tmp_path: Path, study_name: str) -> None:
    write_sweep(tmp_path, study_name, strategy__runs=6, trainer__sleep=3.0)  # 12 s runs: the signal lands inside one
    run = rlsweep_run(tmp_path, cluster.env, "--address", cluster.address, "--workers", "2")
    wait_for(lambda: len(training(url_of(tmp_path, study_name), study_name)) == 2, 120, "both workers training")
    run.send_signal(signal.SIGINT)
    out = run.communicate(timeout=120)[0]
    assert run.returncode == 130, out
    assert "interrupting: running runs are marked interrupted" in out, out
    assert_interrupted(handle(tmp_path, study_name), configurations=6, workers=2)
    wait_for(lambda: gone(study_name), 30, "no worker or Ray task left")


def test_killing_a_node_mid_sweep_requeues_its_runs(cluster: Cluster, tmp_path: Path, study_name: str) -> None:
    """Node 127.0.0.3 dies (its Ray processes and the worker on it, as when a machine goes): when Ray
    reports the task lost, the supervisor settles its run at once (lost, queued again, no wait for
    `lost_after`) and starts a task in its place, and the sweep completes and exits 0."""
    # lost_after far beyond the sweep: only the supervisor's notice of the dead task can settle the run.
    write_sweep(tmp_path, study_name, strategy__runs=6, trainer__sleep=0.4, worker__lost_after=600)
    run = rlsweep_run(tmp_path, cluster.env, "--address", cluster.address, "--workers", "2")
    def on_node() -> list[Any]:
        return [r for r in training(url_of(tmp_path, study_name), study_name) if f"@{NODE}-" in (r.worker or "")]

    wait_for(lambda: bool(on_node()), 120, "a run training on the node")
    victim = on_node()[0]
    h = handle(tmp_path, study_name)
    pid = int(next(w["pid"] for w in h.workers_registry.all() if w["id"] == victim.worker))
    task = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its Ray worker process
    # The machine goes at once: the worker (in a session of its own) is frozen first, so it can neither
    # report nor settle its run, then its Ray worker process, the node's processes and the worker die.
    os.kill(pid, signal.SIGSTOP)
    os.kill(task, signal.SIGKILL)
    cluster.kill(NODE)
    os.kill(pid, signal.SIGKILL)
    out = run.communicate(timeout=300)[0]
    rows = {r.key: r for r in h.rows()}
    assert rows[victim.key].state == "lost", out
    assert rows[f"{victim.key}/retry:1"].state == "done", out
    counts = h.row_counts()
    assert counts == {"done": 6, "lost": 1}, (counts, out)
    assert "finished: 6/6 finished (done 6, pruned 0, failed 0)" in out, out
    # The node's task failed with the node: the command says so, replaces it, and the sweep is complete.
    assert f"died (exit code 1) holding {victim.key}: settled" in out, out
    assert "started 1 worker(s) to replace ones that died" in out, out
    assert "1 worker(s) exited with an error" in out and "ray task" in out, out
    assert run.returncode == 0, out
    wait_for(lambda: gone(study_name), 30, "no worker or Ray task left")
