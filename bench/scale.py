"""Scale: runs/s of rlsweep workers and of a bare Optuna loop at 1..16 processes, on PostgreSQL and
SQLite; and (--cluster) a large cluster simulated with 64 real `rlsweep worker` processes.

Table. For each storage and process count, a fresh study with a do-nothing trainer (rlsweep's
`synthetic:noop`: one report per run) and, beside it, bare Optuna: the same number of processes each
looping ask / 3 suggests / report / tell on its own study of the same storage (SQLite with rlsweep's
settings, WAL and synchronous=NORMAL). Runs/s is measured in a window that opens once every process
has finished a run (start-up and imports excluded) and is read from the storage's finished-trial count.
Goal: rlsweep >= bare Optuna at every count; on PostgreSQL no fall as processes are added beyond what
the cores explain (the processes and the server share this machine's cores).

Cluster. `--cluster`: N `rlsweep worker` processes (default 64) on a trainer that sleeps --run-seconds
per run (3 reports), heartbeats every --heartbeat s, against PostgreSQL for --minutes. Every second the
workers table and the queue are sampled: heartbeats and claims per second the database absorbed, the
oldest heartbeat (a late beat means the database or the machine fell behind), the cost of one beat as
a worker does it (update + reap of lost runs, timed from here), and the gap between a worker's run
ending and its next starting (settle + claim + trial creation). Then the projection: how many workers
one PostgreSQL serves at these rates, from the measured cost of a beat and a run's bookkeeping.

    python bench/scale.py                                   # short: 1, 2, 4, 8 processes, 3 s windows
    python bench/scale.py --counts 1,2,4,8,16 --window 10   # the full table
    python bench/scale.py --cluster                         # 64 workers, 30 s runs, 3 minutes
    python bench/scale.py --cluster --workers 16 --minutes 1 --run-seconds 10   # a quick look

PostgreSQL: --postgres URL, else $RLSWEEP_TEST_POSTGRES, else the local test server's URL.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCAL_POSTGRES = "postgresql+psycopg2://rl:rl@127.0.0.1:5432/optuna"

BARE = textwrap.dedent(
    """
    import pathlib, sys, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, name, ready = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite"):  # rlsweep's SQLite settings (WAL is set in the file)
        import sqlalchemy as sa
        sa.event.listen(storage.engine, "connect", lambda con, rec: con.execute("PRAGMA synchronous=NORMAL"))
        sa.event.listen(storage.engine, "connect", lambda con, rec: con.execute("PRAGMA busy_timeout=60000"))
        storage.engine.dispose()
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler())
    first = True
    while True:
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
        trial.suggest_float("gamma", 0.9, 0.9999)
        trial.suggest_categorical("width", [32, 64, 128])
        trial.report(1.0, 1000)
        study.tell(trial, 1.0)
        if first:
            ready.touch()
            first = False
    """
)


def sweep(name: str, runs: int, **trainer: Any) -> dict[str, Any]:
    return {
        "study": name,
        "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:noop", "timesteps": 1000, **trainer},
        "eval": {"every": trainer.get("eval_every", 1000)},
        "strategy": {"name": "random", "runs": runs},
        "params": {
            "learning_rate": {"loguniform": [1.0e-5, 1.0e-1]},
            "gamma": {"uniform": [0.9, 0.9999]},
            "width": {"choice": [32, 64, 128]},
        },
    }


def sql(url: str, query: str, **params: Any) -> list[Any]:
    import sqlalchemy as sa

    from rlsweep.storage import aux_engine

    with aux_engine(url).connect() as con:
        return list(con.execute(sa.text(query), params))


def finished(url: str, name: str) -> int:
    rows = sql(
        url,
        "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :n AND t.state = 'COMPLETE'",
        n=name,
    )
    return int(rows[0][0])


def start(cmd: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    # The URL travels in the environment, never on a command line (`ps` shows those).
    env = {**os.environ, "RLSWEEP_STORAGE": url, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + 30
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def wait_until(ready: Any, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            return True
        time.sleep(0.2)
    return False


def window(url: str, name: str, seconds: float) -> float:
    t0, c0 = time.perf_counter(), finished(url, name)
    time.sleep(seconds)
    t1, c1 = time.perf_counter(), finished(url, name)
    return (c1 - c0) / (t1 - t0)


def new_storage(kind: str, tmp: Path, postgres: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{uuid.uuid4().hex[:8]}.db"
    return postgres


def measure_rlsweep(url: str, n: int, seconds: float, tmp: Path) -> tuple[float, str]:
    name = f"scale-rl-{uuid.uuid4().hex[:8]}"
    handle = create(sweep(name, runs=max(3000, int(400 * seconds))), url)
    cmd = [sys.executable, "-m", "rlsweep", "worker", "--study", name]
    procs = [start(cmd, url, tmp / f"{name}.log") for _ in range(n)]
    query = "SELECT COUNT(DISTINCT worker) FROM rlsweep_runs WHERE study = :n AND state = 'done'"
    try:
        ok = wait_until(lambda: int(sql(url, query, n=name)[0][0]) >= n, 180)
        rate = window(url, name, seconds)
        left = handle.row_counts().get("waiting", 0)
    finally:
        stop(procs)
    note = ("" if ok else f"only {int(sql(url, query, n=name)[0][0])} of {n} ready; ") + ("" if left else "queue ran dry; ")
    forget(url, name)
    return rate, note


def create(spec: dict[str, Any], url: str) -> Any:
    """The study and its queue, created once before any worker starts (as `rlsweep run` does)."""
    from rlsweep.config import load_sweep
    from rlsweep.strategies import make_strategy
    from rlsweep.study import StudyHandle

    loaded = load_sweep(spec)
    handle = StudyHandle.create_or_load(loaded, url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    return handle


def measure_bare(url: str, n: int, seconds: float, tmp: Path) -> tuple[float, str]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"scale-bare-{uuid.uuid4().hex[:8]}"
    if url.startswith("sqlite"):
        from rlsweep.storage import prepare_sqlite

        prepare_sqlite(url)  # WAL, as rlsweep's file
    optuna.create_study(study_name=name, storage=url)
    script = tmp / "bare.py"
    script.write_text(BARE)
    marks = [tmp / f"{name}-{i}.ready" for i in range(n)]
    procs = [start([sys.executable, str(script), url, name, str(m)], url, tmp / f"{name}.log") for m in marks]
    try:
        ok = wait_until(lambda: all(m.exists() for m in marks), 180)
        rate = window(url, name, seconds)
    finally:
        stop(procs)
    note = "" if ok else f"only {sum(m.exists() for m in marks)} of {n} ready; "
    forget(url, name)
    return rate, note


def forget(url: str, name: str) -> None:
    """Leave a shared server as it was: the study and rlsweep's rows of it."""
    if url.startswith("sqlite"):
        return
    import optuna
    import sqlalchemy as sa

    from rlsweep.storage import aux_engine

    try:
        optuna.delete_study(study_name=name, storage=url)
    except KeyError:
        pass
    with aux_engine(url).begin() as con:
        for table in ("rlsweep_runs", "rlsweep_metrics", "rlsweep_workers"):
            con.execute(sa.text(f"DELETE FROM {table} WHERE study = :n"), {"n": name})


def table(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.counts.split(",")]
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at start; window {args.window:g} s per figure", flush=True)
    print(f"{'storage':10} {'procs':>5} {'rlsweep runs/s':>15} {'bare optuna runs/s':>19} {'ratio':>6}  notes", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for kind in args.storages.split(","):
            for n in counts:
                rl, note_rl = measure_rlsweep(new_storage(kind, tmp, args.postgres), n, args.window, tmp)
                bare, note_bare = measure_bare(new_storage(kind, tmp, args.postgres), n, args.window, tmp)
                ratio = rl / bare if bare else float("nan")
                notes = (note_rl and f"rlsweep: {note_rl}") + (note_bare and f"bare: {note_bare}")
                print(f"{kind:10} {n:5d} {rl:15.1f} {bare:19.1f} {ratio:6.2f}  {notes} load {os.getloadavg()[0]:.1f}", flush=True)
    print("goal: ratio >= 1.00 at every count; PostgreSQL runs/s not falling with more processes beyond the cores")


def cluster(args: argparse.Namespace) -> None:
    url, n, hb = args.postgres, args.workers, args.heartbeat
    name = f"scale-cluster-{uuid.uuid4().hex[:8]}"
    steps = 3  # reports per run
    runs = n * (int(args.minutes * 60 / args.run_seconds) + 2)
    spec = sweep(name, runs, target="rlsweep.examples.synthetic:sleepy", timesteps=steps, eval_every=1, sleep=args.run_seconds / steps)
    spec["worker"] = {"heartbeat": hb, "lost_after": max(25.0, 5 * hb)}
    handle = create(spec, url)
    print(f"{n} workers, runs of {args.run_seconds:g} s, heartbeat {hb:g} s, {args.minutes:g} min on {redacted(url)}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "rlsweep", "worker", "--study", name]
        t_start = time.time()
        procs = [start(cmd, url, Path(d) / "workers.log") for _ in range(n)]
        try:
            samples = sample(handle, url, name, n, hb, procs, args.minutes * 60)
        finally:
            rss = sum(rss_mib(p.pid) for p in procs)
            stop(procs)
        report_cluster(handle, url, name, n, hb, args.run_seconds, samples, rss, t_start)
    forget(url, name)


def sample(handle: Any, url: str, name: str, n: int, hb: float, procs: list[Any], seconds: float) -> dict[str, list[float]]:
    """Once a second: heartbeats and claims since the last sample, the oldest heartbeat of a live
    worker, the time one beat takes as a worker does it (update + reap), from this process, and the
    CPU time the PostgreSQL server's processes used (when it runs on this machine)."""
    out: dict[str, list[float]] = {"beats": [], "claims": [], "lag": [], "beat_cost": [], "alive": [], "db_cpu": []}
    cpu_before = postgres_cpu()
    last: dict[str, float] = {}
    started = "SELECT COUNT(*) FROM rlsweep_runs WHERE study = :n AND trial_number IS NOT NULL"
    claimed_before = int(sql(url, started, n=name)[0][0])
    probe = f"probe-{uuid.uuid4().hex[:6]}"
    handle.register_worker(probe)
    t_end = time.time() + seconds
    t_prev = time.time()
    while time.time() < t_end:
        time.sleep(1.0)
        now = time.time()
        workers = [w for w in handle.workers() if w["id"] != probe]
        # a sample can span several beats of one worker (samples slow down on a loaded machine)
        beats = sum(max(1, round((w["heartbeat"] - last[w["id"]]) / hb)) for w in workers if w["heartbeat"] > last.get(w["id"], w["heartbeat"]))
        last = {w["id"]: w["heartbeat"] for w in workers}
        alive = [w for w in workers if w["state"] == "alive"]
        claimed = int(sql(url, started, n=name)[0][0])
        t0 = time.perf_counter()
        handle.heartbeat(probe)
        handle.reap_lost()
        out["beat_cost"].append(time.perf_counter() - t0)
        out["beats"].append(beats / (now - t_prev))
        out["claims"].append((claimed - claimed_before) / (now - t_prev))
        out["lag"].append(max((now - w["heartbeat"] for w in alive), default=0.0))
        out["alive"].append(len(alive))
        cpu = postgres_cpu()
        common = cpu.keys() & cpu_before.keys()
        out["db_cpu"].append(sum(cpu[k] - cpu_before[k] for k in common) / (now - t_prev) if cpu else float("nan"))
        cpu_before = cpu
        claimed_before, t_prev = claimed, now
        if len(alive) == n and not all(p.poll() is None for p in procs):
            print("a worker exited early; see its log", flush=True)
    handle.heartbeat(probe, state="stopped")
    return out


def report_cluster(handle: Any, url: str, name: str, n: int, hb: float, run_s: float, s: dict[str, list[float]], rss: float, t_start: float) -> None:
    full = [i for i, a in enumerate(s["alive"]) if a == n]  # the samples with every worker up
    pick = (lambda key: [s[key][i] for i in full]) if full else (lambda key: s[key])
    beats, claims, lag, cost = pick("beats"), pick("claims"), pick("lag"), pick("beat_cost")
    gaps = run_gaps(url, name)
    up = f"{len(full)} s with all {n} up" if full else f"never all {n} up (at most {max(s['alive'], default=0)})"
    print(f"sampled {len(s['alive'])} s, {up}; workers' memory {rss:.0f} MiB in all ({rss / max(n, 1):.0f} MiB each)")
    print(f"heartbeats absorbed: {mean(beats):.1f}/s (expected {n / hb:.1f}/s); oldest live heartbeat: median {median(lag):.1f} s, max {max(lag, default=0):.1f} s")
    print(f"claims absorbed: {mean(claims):.2f}/s (expected about {n / run_s:.2f}/s), max {max(claims, default=0):.0f} in one second")
    print(f"one beat as a worker does it (update + reap of lost runs), at {n} workers: median {1000 * median(cost):.0f} ms, max {1000 * max(cost, default=0):.0f} ms")
    if gaps:
        print(f"run end -> next run start of one worker (settle + claim + trial): median {1000 * median(gaps):.0f} ms, "
              f"p95 {1000 * quantile(gaps, 0.95):.0f} ms, slowest {1000 * max(gaps):.0f} ms over {len(gaps)} claims")  # fmt: skip
    # Projection. Best: the server's own CPU time (its processes on this machine) per second of
    # `n` workers; else the wall time of a beat and of a run's bookkeeping, an upper bound.
    cores = os.cpu_count() or 1
    db = pick("db_cpu")
    live = mean(pick("alive")) or float(n)  # workers up on average over the samples used
    if db and all(v == v for v in db):
        per_worker = mean(db) / live
        how = f"PostgreSQL used {mean(db):.2f} CPU-s/s for {live:.0f} live workers on average (its other clients included)"
    else:
        cycle = median(gaps) + 3 * median(cost) if gaps else float("nan")  # claim/settle + 3 reports (~ a beat each)
        per_worker = median(cost) / hb + cycle / run_s
        how = "server not on this machine: from the wall time of a beat and of a run's bookkeeping (an upper bound)"
    if per_worker > 0:
        print(f"projection: {how}; {1000 * per_worker:.1f} ms of server CPU per worker per second, so one PostgreSQL "
              f"with {cores} cores serves about {cores / per_worker:,.0f} workers at these rates (beat cost at {n} "
              "workers; the reap reads every worker's row, so a beat costs more with more workers)")  # fmt: skip
    limit = int(sql(url, "SHOW max_connections")[0][0])
    print(f"connections: each worker keeps one open, so this server's max_connections ({limit}) caps it at fewer than "
          f"{limit} workers before its CPU does; raise it or put PgBouncer in front")  # fmt: skip


def run_gaps(url: str, name: str) -> list[float]:
    """Seconds between a worker's run ending and its next run starting, per claim after its first."""
    rows = sql(
        url,
        "SELECT r.worker, t.datetime_start, t.datetime_complete FROM rlsweep_runs r "
        "JOIN studies s ON s.study_name = r.study JOIN trials t ON t.study_id = s.study_id AND t.number = r.trial_number "
        "WHERE r.study = :n AND t.datetime_start IS NOT NULL ORDER BY r.worker, t.datetime_start",
        n=name,
    )
    gaps = []
    for prev, row in zip(rows, rows[1:], strict=False):
        if prev[0] == row[0] and prev[2] is not None:
            gaps.append((row[1] - prev[2]).total_seconds())
    return gaps


def postgres_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL server process on this machine; {} if none."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            found[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of a worker process (the process group's leader is the worker itself)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def redacted(url: str) -> str:
    from rlsweep.storage import redact

    return redact(url)


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("RLSWEEP_TEST_POSTGRES") or LOCAL_POSTGRES)
    parser.add_argument("--counts", default="1,2,4,8", help="process counts of the table (default 1,2,4,8)")
    parser.add_argument("--storages", default="postgres,sqlite", help="storages of the table (default postgres,sqlite)")
    parser.add_argument("--window", type=float, default=3.0, help="seconds measured per figure (default 3)")
    parser.add_argument("--cluster", action="store_true", help="the cluster simulation instead of the table")
    parser.add_argument("--workers", type=int, default=64, help="--cluster: worker processes (default 64)")
    parser.add_argument("--minutes", type=float, default=3.0, help="--cluster: how long (default 3)")
    parser.add_argument("--run-seconds", type=float, default=30.0, help="--cluster: seconds per run (default 30)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="--cluster: seconds between heartbeats (default 5)")
    args = parser.parse_args()
    if args.cluster:
        cluster(args)
    else:
        table(args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

