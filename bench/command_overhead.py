"""The command trainer's cost (issue 9 targets).

1. rlsweep's own CPU while 8 command runs of the ML-Agents stand-in write TensorBoard scalars every
   0.5 s: `rlsweep run` and its 8 workers (their own CPU time, the programs excluded), in percent of
   one core, over the steady window when all 8 programs run (goal < 5%), and over the whole sweep
   (start-up imports included).
2. examples/cleanrl_ppo.py through the command trainer vs the same command run bare, same seed and
   steps: the wall-time ratio (goal <= 1.05).

    python bench/command_overhead.py [--runs 8] [--summaries 60] [--cleanrl-steps 20480] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from rlsweep.threads import THREAD_VARS

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, own CPU seconds (user + system, children excluded), command line)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(entry.name)] = (int(stat[1]), (int(stat[11]) + int(stat[12])) / TICK, cmd)
    return out


def descendants(root: int, table: dict[int, tuple[int, float, str]]) -> set[int]:
    found, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def overhead(runs: int, summaries: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rlsweep-cmd-bench-"))
    sweep = {
        "study": "cmd-overhead",
        "trainer": {
            "kind": "command",
            "command": ["{python}", str(ROOT / "examples" / "mlagents_standin.py"), "{config_file}", "--run-id={run_id}",
                        "--results-dir={run_dir}/results", "--seed={seed}"],  # fmt: skip
            "config": {"behaviors": {"3DBall": {"max_steps": 1000 * summaries, "summary_freq": 1000}}},
            "metrics": {"tensorboard": "{run_dir}/results/{run_id}", "tags": {"Environment/Cumulative Reward": "eval/mean_return"}},
            "env": {"STANDIN_SECONDS_PER_SUMMARY": "0.5"},
            "stop_signal": "SIGINT",
            "timesteps": 1000 * summaries,
        },
        "eval": {"every": 1000},
        "objective": {"metric": "eval/mean_return"},
        "strategy": {"name": "grid", "seeds": runs},
        "storage": f"sqlite:///{tmp}/study.db",
        "artifacts": str(tmp / "artifacts"),
    }
    (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    start = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "rlsweep", "run", str(tmp / "sweep.yaml"), "--workers", str(runs), "--quiet"], cwd=tmp)
    own: dict[int, float] = {}  # rlsweep processes: last CPU seconds seen
    window: list[tuple[float, float, float]] = []  # (time, rlsweep CPU so far, of it `rlsweep run`) while all programs run
    while run.poll() is None:
        table = proc_table()
        tree = descendants(run.pid, table)
        programs = [p for p in tree if "mlagents_standin" in table[p][2]]
        for pid in tree:
            if pid not in programs and "rlsweep" in table[pid][2] or pid == run.pid:
                own[pid] = table[pid][1]
        if len(programs) == runs:
            window.append((time.monotonic(), sum(own.values()), own.get(run.pid, 0.0)))
        time.sleep(0.5)
    wall = time.monotonic() - start
    total = sum(own.values())
    print(f"{runs} concurrent stand-in runs, a summary every 0.5 s for {summaries * 0.5:.0f} s; sweep wall {wall:.1f} s")
    if len(window) >= 2:
        (t0, c0, r0), (t1, c1, r1) = window[0], window[-1]
        print(f"  rlsweep (run + {runs} workers) CPU while all {runs} programs ran: {100 * (c1 - c0) / (t1 - t0):.2f}% of one core "
              f"over {t1 - t0:.1f} s (goal < 5%); of it `rlsweep run` itself: {100 * (r1 - r0) / (t1 - t0):.2f}%")  # fmt: skip
    print(f"  rlsweep CPU over the whole sweep, start-up included: {total:.1f} s = {100 * total / wall:.1f}% of one core")


def cleanrl(steps: int, repeat: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rlsweep-cleanrl-bench-"))
    script = str(ROOT / "examples" / "cleanrl_ppo.py")
    args = ["--seed=1", f"--total-timesteps={steps}", "--learning-rate=0.0025", "--ent-coef=0.01", "--num-envs=4"]
    sweep = yaml.safe_load((ROOT / "examples" / "cleanrl-ppo-command.yaml").read_text())
    sweep["trainer"]["command"][1] = script
    sweep["trainer"]["timesteps"] = steps
    sweep.update(seed=1, strategy={"name": "grid"}, params={"learning_rate": 0.0025, "ent_coef": 0.01})
    # rlsweep's workers run with one BLAS/OpenMP thread (rlsweep.threads), and so does the program
    # they start: the bare script is timed both as a user runs it and with the same setting.
    one_thread = {**os.environ, **{var: "1" for var in THREAD_VARS}}
    # Wall time on a shared 2-core machine varies from one run to the next by more than the goal's
    # margin, so every time is printed, and the CPU seconds beside them (this process's children: the
    # program, and under `rlsweep run` also rlsweep itself).
    bare, bare_one, wrapped = [], [], []
    cpu_one, cpu_wrapped = [], []
    for i in range(repeat):
        t = time.monotonic()
        subprocess.run([sys.executable, script, *args, f"--tb-dir={tmp}/bare{i}", f"--save-path={tmp}/bare{i}.pt"], check=True)
        bare.append(time.monotonic() - t)
        t, c = time.monotonic(), children_cpu()
        subprocess.run([sys.executable, script, *args, f"--tb-dir={tmp}/one{i}", f"--save-path={tmp}/one{i}.pt"], check=True, env=one_thread)
        bare_one.append(time.monotonic() - t)
        cpu_one.append(children_cpu() - c)
        sweep.update(study=f"cleanrl-bench-{i}", storage=f"sqlite:///{tmp}/s{i}.db", artifacts=str(tmp / f"a{i}"))
        (tmp / "s.yaml").write_text(yaml.safe_dump(sweep))
        t, c = time.monotonic(), children_cpu()
        subprocess.run([sys.executable, "-m", "rlsweep", "run", str(tmp / "s.yaml"), "--workers", "1", "--quiet"], cwd=ROOT, check=True)
        wrapped.append(time.monotonic() - t)
        cpu_wrapped.append(children_cpu() - c)
    b, o, w = min(bare), min(bare_one), min(wrapped)
    print(f"cleanrl_ppo.py, {steps} steps, seed 1, best of {repeat}: through rlsweep run {w:.1f} s; bare {b:.1f} s "
          f"(ratio {w / b:.3f}), bare with {THREAD_VARS[0]}=1 etc. as rlsweep's workers {o:.1f} s "
          f"(ratio {w / o:.3f}); goal <= 1.05")  # fmt: skip
    print(f"  wall times: through rlsweep {', '.join(f'{x:.1f}' for x in wrapped)}; bare {', '.join(f'{x:.1f}' for x in bare)}; "
          f"bare one thread {', '.join(f'{x:.1f}' for x in bare_one)}")  # fmt: skip
    extra = [w_ - o_ for w_, o_ in zip(cpu_wrapped, cpu_one, strict=True)]
    print(f"  CPU seconds, median: through rlsweep {statistics.median(cpu_wrapped):.1f}, bare one thread {statistics.median(cpu_one):.1f}: "
          f"rlsweep adds {statistics.median(extra):.2f} s = {100 * statistics.median(extra) / statistics.median(bare_one):.1f}% of the bare wall time")  # fmt: skip


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--summaries", type=int, default=60)
    p.add_argument("--cleanrl-steps", type=int, default=20480)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--skip-cleanrl", action="store_true")
    a = p.parse_args()
    overhead(a.runs, a.summaries)
    if not a.skip_cleanrl:
        cleanrl(a.cleanrl_steps, a.repeat)


if __name__ == "__main__":
    main()
