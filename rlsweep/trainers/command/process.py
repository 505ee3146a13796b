"""One run of the command trainer: render the config and the command, start the program in its own
process group (it dies with this process), read its metrics while it runs, report each step, and
stop it (the configured signal, then SIGTERM, then SIGKILL) when a decision, the budget, silence or
an interrupt says so. A non-zero exit of its own is a failed run, its last lines the reason.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from rlsweep.errors import TrainerError
from rlsweep.procs import preexec_die_with_parent
from rlsweep.study.attrs import CHECKPOINT_ATTR
from rlsweep.trainers._base import Decision, RunContext, atomic_path, commit_file
from rlsweep.trainers.command import template
from rlsweep.trainers.command.metrics import RegexSource, StepMerger, TableSource, TensorBoardSource
from rlsweep.trainers.command.settings import NATIVE_STEP, CommandSettings, stop_signal

TAIL_LINES = 5  # lines of output quoted in a failed run's reason
CHECKPOINT_NAME = "checkpoint"
BUDGET = "budget reached"


def run_values(run: RunContext, settings: CommandSettings) -> dict[str, Any]:
    """Every placeholder's value for this run (None: no value, its optional group is left out)."""
    run_dir = run.artifact_dir.resolve()
    config_file = run_dir / f"config.{settings.config_format}" if settings.config is not None else None
    values: dict[str, Any] = {
        "seed": run.seed,
        "run_id": f"{run.study}-{run.number}",
        "study": run.study,
        "number": run.number,
        "run_dir": str(run_dir),
        "budget": run.budget,
        "start_step": run.start_step,
        "end_step": run.start_step + run.budget,
        "config_file": str(config_file) if config_file else None,
        "python": settings.python or sys.executable,
        "checkpoint_in": str(run.start_checkpoint) if run.start_checkpoint else None,
        "checkpoint_out": str(run_dir / CHECKPOINT_NAME),
    }
    values.update(template.flatten(run.hyperparams))
    values.update({f"trainer.{k}": v for k, v in template.flatten(run.config).items()})
    return values


def write_config(settings: CommandSettings, values: dict[str, Any]) -> None:
    if settings.config is None:
        return
    path = Path(values["config_file"])
    content = template.render_tree(settings.config, values)
    tmp = atomic_path(path)
    if settings.config_format == "json":
        tmp.write_text(json.dumps(content, indent=2) + "\n")
    else:
        import yaml

        tmp.write_text(yaml.safe_dump(content, sort_keys=False))
    commit_file(tmp, path)


def make_source(settings: CommandSettings, values: dict[str, Any], cwd: Path, stdout: Path) -> tuple[Any, StepMerger]:
    m = settings.metrics
    native = settings.steps_from in NATIVE_STEP
    step_key = "step" if native else settings.steps_from

    def where(text: str) -> Path:
        return cwd / template.render(text, values)  # an absolute path stays as it is

    source: Any
    if m.tensorboard is not None:
        step_tag = None if native else settings.steps_from
        source = TensorBoardSource(where(m.tensorboard), m.tags, step_tag)
        return source, StepMerger({}, step_tag)
    if m.regex is not None:
        source = RegexSource(stdout, m.regex, step_key)
    else:
        fmt = "csv" if m.csv is not None else "jsonl"
        source = TableSource(where(str(m.csv if m.csv is not None else m.jsonl)), fmt, step_key)
    return source, StepMerger(m.tags, None)


class Child:
    """The running program: its process group, its output files, and how it was stopped."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], run_dir: Path) -> None:
        self.stdout_path, self.stderr_path = run_dir / "stdout.log", run_dir / "stderr.log"
        self.pidfd: int | None = None  # opened by the first `exited`
        self.files: list[IO[bytes]] = [self.stdout_path.open("ab"), self.stderr_path.open("ab")]
        try:
            # Its own session, so a signal reaches the whole group (tools that start helpers) and a
            # Ctrl-C in rlsweep's terminal does not; the parent-death signal covers rlsweep dying.
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self.files[0],
                stderr=self.files[1],
                start_new_session=True,
                preexec_fn=preexec_die_with_parent(),  # type: ignore[arg-type]
            )
        except OSError as exc:
            self.close()
            raise TrainerError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        self.stopped_by: str | None = None

    def exited(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the program to end; whether it has. On Linux this sleeps on
        a pidfd until the exit; `Popen.wait(timeout)` instead wakes every few milliseconds to check,
        which costs eight runs' workers several percent of a core."""
        if self.pidfd is None:
            try:
                self.pidfd = os.pidfd_open(self.proc.pid)
            except (AttributeError, OSError):  # not Linux >= 5.3, or already reaped
                self.pidfd = -1
        if self.pidfd >= 0:
            # poll, not select: select cannot take a descriptor numbered 1024 or more, which a
            # process holding many files and connections hands out
            waiter = select.poll()
            waiter.register(self.pidfd, select.POLLIN)
            waiter.poll(max(0.0, timeout) * 1000.0)
            return self.proc.poll() is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def output_size(self) -> int:
        return sum(os.fstat(f.fileno()).st_size for f in self.files)

    def send(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, first: signal.Signals, grace: float) -> None:
        """`first`, then SIGTERM after `grace` s, then SIGKILL after another `grace` s; records which
        signal it was that ended the program."""
        steps = [first] + [s for s in (signal.SIGTERM, signal.SIGKILL) if s != first]
        for sig in steps:
            if self.proc.poll() is not None:
                return
            self.send(sig)
            self.stopped_by = sig.name
            try:
                self.proc.wait(timeout=grace if sig != signal.SIGKILL else None)
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        """Whatever of its group is left (helpers the program started) is killed."""
        if hasattr(self, "proc"):
            if self.proc.poll() is None:
                self.send(signal.SIGKILL)
                self.proc.wait()
            self.send(signal.SIGKILL)
        for f in self.files:
            f.close()
        if self.pidfd is not None and self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def tail(self) -> str:
        for path in (self.stderr_path, self.stdout_path):
            lines = [line for line in _last_lines(path) if line.strip()]
            if lines:
                return " | ".join(line.strip() for line in lines[-TAIL_LINES:])
        return "(no output)"


def _last_lines(path: Path, size: int = 8192) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - size))
            return fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def train(run: RunContext, settings: CommandSettings) -> None:
    """Run the program for one run; see the module's docstring."""
    values = run_values(run, settings)
    run_dir = run.artifact_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(settings, values)
    argv = template.render_command(settings.command, values)
    cwd = Path(settings.cwd).resolve() if settings.cwd else Path.cwd()
    env = {**os.environ, **{k: template.render(v, values) for k, v in settings.env.items()}}
    run.record("command", argv)
    checkpoint = Path(values["checkpoint_out"])
    if checkpoint.exists():  # a requeued run's leftover must not pass for this run's file
        checkpoint.unlink()
    child = Child(argv, cwd, env, run_dir)
    source, merger = make_source(settings, values, cwd, child.stdout_path)
    first = stop_signal(settings.stop_signal)
    end_step = values["end_step"]
    why: str | None = None  # why rlsweep stopped it; None: it ended by itself
    try:
        why = _follow(run, settings, child, source, merger, end_step)
        if why == BUDGET:  # it should end by itself (saving its checkpoint): give it the grace period
            try:
                child.proc.wait(timeout=settings.grace)
            except subprocess.TimeoutExpired:
                child.stop(first, settings.grace)
        elif why is not None:
            child.stop(first, settings.grace)
    except BaseException:  # Ctrl-C (the worker is interrupted) or an error: the program goes too
        child.stop(first, settings.grace)
        raise
    finally:
        child.close()
    code = child.proc.returncode
    run.record("exit", {"code": code, "stopped_by": child.stopped_by, "why": why})
    if child.stopped_by is not None:
        run.record("stopped_by", child.stopped_by)
    if why is None:
        merger.add(source.poll())
        _report(run, merger.release(final=True), end_step)
    if child.stopped_by is None:
        if code != 0:
            raise TrainerError(f"{argv[0]} exited with code {code}: {child.tail()}")
    elif why is not None and why.startswith("silent"):
        raise TrainerError(f"{why}; stopped with {child.stopped_by}")
    if checkpoint.exists():
        run.record(CHECKPOINT_ATTR, str(checkpoint))


def _follow(run: RunContext, settings: CommandSettings, child: Child, source: Any, merger: StepMerger, end_step: int) -> str | None:
    """Poll until the program exits (None) or must be stopped (the reason)."""
    last_size, last_news = 0, time.monotonic()
    while True:
        if child.exited(settings.poll):
            return None
        news = merger.add(source.poll())
        decision = _report(run, merger.release(), end_step)
        if decision is not None:
            return decision
        size = child.output_size()
        if news or size != last_size:
            last_size, last_news = size, time.monotonic()
        elif settings.timeout_idle is not None and time.monotonic() - last_news > settings.timeout_idle:
            return f"silent for {settings.timeout_idle:g} s (no output, no metrics)"


def _report(run: RunContext, steps: list[tuple[int, dict[str, float]]], end_step: int) -> str | None:
    for step, metrics in steps:
        decision = run.report(step, metrics)
        if decision is not Decision.CONTINUE:
            return f"told to {decision.value} at step {step}"
        if step >= end_step:
            return BUDGET
    return None
