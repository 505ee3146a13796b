"""The command trainer's cost (issue 9 targets).

1. rlsweep's own CPU while 8 command runs of the ML-Agents stand-in write TensorBoard scalars every
   0.5 s: `rlsweep run` and its 8 workers (their own CPU time, the programs excluded), in percent of
   one core, over the steady window when all 8 programs run (goal < 5%), and over the whole sweep
   (start-up imports included).
2. examples/cleanrl_ppo.py through the command trainer vs the same command run bare, same seeds and
   steps, as many at a time: the wall-time ratio (goal <= 1.05). Seeds 1-8 (the example's 8 runs) x
   102,400 steps, 2 at a time, as one `rlsweep run` (grid, 2 workers) and as bare processes, in
   alternating order, 3 rounds.

    python bench/command_overhead.py [--runs 8] [--summaries 60] [--skip-cleanrl]
    python bench/command_overhead.py --skip-overhead [--cleanrl-steps 102400] [--seeds 8] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


def cleanrl(steps: int, seeds: int, workers: int, rounds: int) -> None:
    """The same seeds of cleanrl_ppo.py run bare (`workers` at a time, one BLAS thread as rlsweep's
    workers run them) and as one `rlsweep run` (grid, `seeds` seeds, `workers` workers), in
    alternating order, `rounds` times. The ratio is of the summed wall times; each round's is printed."""
    tmp = Path(tempfile.mkdtemp(prefix="rlsweep-cleanrl-bench-"))
    script = str(ROOT / "examples" / "cleanrl_ppo.py")
    base = [f"--total-timesteps={steps}", "--learning-rate=0.0025", "--ent-coef=0.01", "--num-envs=4"]
    sweep = yaml.safe_load((ROOT / "examples" / "cleanrl-ppo-command.yaml").read_text())
    sweep["trainer"]["command"][1] = script
    sweep["trainer"]["timesteps"] = steps
    sweep.update(seed=1, strategy={"name": "grid", "seeds": seeds, "workers": workers})
    sweep["params"] = {"learning_rate": {"choice": [0.0025]}, "ent_coef": {"choice": [0.01]}}
    # rlsweep's workers run with one BLAS/OpenMP thread (rlsweep.threads), and so does the program
    # they start: the bare runs get the same setting.
    one_thread = {**os.environ, **{var: "1" for var in THREAD_VARS}}

    def bare(r: int) -> float:
        def one(seed: int) -> None:
            out = f"{tmp}/bare{r}-{seed}"
            cmd = [sys.executable, script, f"--seed={seed}", *base, f"--tb-dir={out}", f"--save-path={out}.pt"]
            subprocess.run(cmd, check=True, env=one_thread, stdout=subprocess.DEVNULL)

        t = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(1, seeds + 1)))
        return time.monotonic() - t

    def wrapped(r: int) -> float:
        sweep.update(study=f"cleanrl-bench-{r}", storage=f"sqlite:///{tmp}/s{r}.db", artifacts=str(tmp / f"a{r}"))
        (tmp / "s.yaml").write_text(yaml.safe_dump(sweep))
        t = time.monotonic()
        cmd = [sys.executable, "-m", "rlsweep", "run", str(tmp / "s.yaml"), "--quiet"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return time.monotonic() - t

    print(f"cleanrl_ppo.py, seeds 1-{seeds} x {steps} steps, {workers} at a time: bare vs one `rlsweep run` "
          f"(grid, {workers} workers), alternating order, {rounds} rounds")  # fmt: skip
    times: list[tuple[float, float]] = []
    for r in range(rounds):
        if r % 2 == 0:
            b = bare(r)
            w = wrapped(r)
        else:
            w = wrapped(r)
            b = bare(r)
        times.append((b, w))
        print(f"  round {r + 1}: bare {b:.1f} s, through rlsweep {w:.1f} s, ratio {w / b:.3f}", flush=True)
    tb, tw = sum(b for b, _ in times), sum(w for _, w in times)
    ratios = [w / b for b, w in times]
    print(f"  summed: bare {tb:.1f} s, through rlsweep {tw:.1f} s: ratio {tw / tb:.3f} (median of rounds "
          f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}); goal <= 1.05")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--summaries", type=int, default=60)
    p.add_argument("--cleanrl-steps", type=int, default=102400)
    p.add_argument("--seeds", type=int, default=8, help="CleanRL seeds per round (default 8, the example's runs)")
    p.add_argument("--workers", type=int, default=2, help="CleanRL runs at a time, bare and as workers (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="CleanRL rounds, alternating which goes first (default 3)")
    p.add_argument("--skip-cleanrl", action="store_true")
    p.add_argument("--skip-overhead", action="store_true", help="only the CleanRL comparison")
    a = p.parse_args()
    if not a.skip_overhead:
        overhead(a.runs, a.summaries)
    if not a.skip_cleanrl:
        cleanrl(a.cleanrl_steps, a.seeds, a.workers, a.rounds)


if __name__ == "__main__":
    main()
