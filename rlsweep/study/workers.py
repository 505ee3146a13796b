"""The workers table: who works on a study and when each last said it was alive."""

from __future__ import annotations

import os
import socket
import time
from typing import Any


class WorkerRegistry:
    """The workers of one study and their heartbeats."""

    def __init__(self, name: str, engine: Any, table: Any) -> None:
        self.name = name
        self.engine = engine
        self.table = table

    def register(self, worker: str) -> None:
        # A plain INSERT (worker ids are unique): a DELETE first took gap locks on MySQL/MariaDB,
        # and 8 workers registering at once deadlocked there.
        now = time.time()
        row = {"id": worker, "study": self.name, "host": socket.gethostname(), "pid": os.getpid(), "started": now, "heartbeat": now, "state": "alive"}
        _retrying(self.engine, lambda con: con.execute(self.table.insert(), [row]))

    def heartbeat(self, worker: str, state: str = "alive") -> None:
        w = self.table
        _retrying(self.engine, lambda con: con.execute(w.update().where(w.c.id == worker).values(heartbeat=time.time(), state=state)))

    def all(self) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        w = self.table
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(sa.select(w).where(w.c.study == self.name)).mappings()]

    def mark_started_as(self, prefix: str, state: str) -> int:
        """Set the state of this study's live workers whose id starts with `prefix` (the launcher saw
        the process it started exit: "crashed:SIGSEGV", or "lost"); returns how many rows changed."""
        w = self.table
        with self.engine.begin() as con:
            result = con.execute(
                w.update().where(w.c.study == self.name, w.c.id.startswith(prefix, autoescape=True), w.c.state == "alive").values(state=state)
            )
            return int(result.rowcount or 0)

    def silent(self, lost_after: float, now: float | None = None, workers: list[dict[str, Any]] | None = None) -> Any:
        """A predicate: is `worker` silent (not alive, no heartbeat for `lost_after` s, counted from
        this process's last storage outage if later, or a process of this host that no longer
        exists: a worker known dead is not waited for)?"""
        from rlsweep.storage import last_outage

        now = time.time() if now is None else now
        host = socket.gethostname()
        # No worker could beat while this process could not reach the server either.
        outage = last_outage()
        beats = {w["id"]: (max(w["heartbeat"], outage), w["state"], w["host"], w["pid"]) for w in (self.all() if workers is None else workers)}

        def is_silent(worker: str | None) -> bool:
            beat, state, on, pid = beats.get(worker or "", (0.0, "lost", None, None))
            if state != "alive" or now - beat >= lost_after:
                return True
            return on == host and pid is not None and not _process_exists(int(pid))

        return is_silent

    def interrupted(self, workers: list[dict[str, Any]] | None = None) -> set[str]:
        """Workers that stopped on Ctrl-C/SIGTERM: a run one of them still holds (the signal came
        between its claim and its training) is interrupted, not lost."""
        return {w["id"] for w in (self.all() if workers is None else workers) if w["state"] == "interrupted"}

    def crashed(self, workers: list[dict[str, Any]] | None = None) -> dict[str, str]:
        """Workers whose launcher saw them crash, with how (their runs fail instead of re-running)."""
        return {w["id"]: w["state"].removeprefix(CRASHED) for w in (self.all() if workers is None else workers) if str(w["state"]).startswith(CRASHED)}


def _retrying(engine: Any, work: Any, tries: int = 5) -> Any:
    """Run `work(connection)` in a transaction, again after a deadlock (MySQL/MariaDB's 1213, a
    PostgreSQL serialization failure): the server rolled it back, so trying again is safe."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(tries):
        try:
            with engine.begin() as con:
                return work(con)
        except OperationalError as exc:
            text = str(exc.orig if exc.orig is not None else exc).lower()
            if attempt == tries - 1 or not ("deadlock" in text or "serializ" in text):
                raise
            time.sleep(0.05 * (attempt + 1))
    return None


CRASHED = "crashed:"  # worker state "crashed:SIGSEGV": its launcher saw it die of that signal (<= 16 chars)


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0); it is dead all the same.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True
