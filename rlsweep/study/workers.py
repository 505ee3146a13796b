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
        now = time.time()
        w = self.table
        with self.engine.begin() as con:
            con.execute(w.delete().where(w.c.id == worker))
            con.execute(
                w.insert(),
                [{"id": worker, "study": self.name, "host": socket.gethostname(), "pid": os.getpid(), "started": now, "heartbeat": now, "state": "alive"}],
            )

    def heartbeat(self, worker: str, state: str = "alive") -> None:
        w = self.table
        with self.engine.begin() as con:
            con.execute(w.update().where(w.c.id == worker).values(heartbeat=time.time(), state=state))

    def all(self) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        w = self.table
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(sa.select(w).where(w.c.study == self.name)).mappings()]

    def silent(self, lost_after: float, now: float | None = None) -> Any:
        """A predicate: is `worker` silent (not alive, or no heartbeat for `lost_after` s)?"""
        now = time.time() if now is None else now
        beats = {w["id"]: (w["heartbeat"], w["state"]) for w in self.all()}

        def is_silent(worker: str | None) -> bool:
            beat, state = beats.get(worker or "", (0.0, "lost"))
            return not (state == "alive" and now - beat < lost_after)

        return is_silent
