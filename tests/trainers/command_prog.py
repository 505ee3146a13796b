"""A small training program for the command trainer's tests: prints `step=N value=V` lines (and
optionally writes JSON lines), then behaves as asked: fails, goes silent, ignores signals."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--slope", type=float, default=1.0)
    p.add_argument("--jsonl", default=None)
    p.add_argument("--pid-file", default=None)
    p.add_argument("--exit-code", type=int, default=0)
    p.add_argument("--silent-after", type=int, default=None, help="print nothing more after this many steps, and hang")
    p.add_argument("--ignore", action="append", default=[], help="signal names to ignore (SIGINT, SIGTERM)")
    p.add_argument("--on-int", default=None, help="a file written when SIGINT arrives, before exiting")
    args = p.parse_args()
    for name in args.ignore:
        signal.signal(signal.Signals[name], signal.SIG_IGN)
    if args.on_int:

        def saved(signum: int, frame: object) -> None:
            with open(args.on_int, "w") as fh:
                fh.write("saved")
            sys.exit(0)

        signal.signal(signal.SIGINT, saved)
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(args.pid_file + ".tmp", args.pid_file)
    out = open(args.jsonl, "a") if args.jsonl else None
    for i in range(1, args.steps + 1):
        if args.silent_after is not None and i > args.silent_after:
            while True:
                time.sleep(0.1)
        time.sleep(args.pause)
        step, value = i * args.every, args.slope * i
        print(f"step={step} value={value}", flush=True)
        if out is not None:
            out.write(json.dumps({"step": step, "eval": {"mean_return": value}, "note": "x"}) + "\n")
            out.flush()
    if args.exit_code:
        print("Traceback (most recent call last):", file=sys.stderr)
        print("RuntimeError: the simulator crashed", file=sys.stderr, flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
