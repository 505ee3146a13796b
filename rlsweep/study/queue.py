"""The run queue: rlsweep's runs table, one row per run, and the conditional UPDATEs that claim them.

Every claim is an UPDATE conditional on the row still waiting, so two workers racing for one row
never both win it; a key is unique within a study, so a run is never queued twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlsweep import states
from rlsweep.errors import StorageError
from rlsweep.storage import is_dropped


@dataclass(frozen=True)
class RunSpec:
    """A run to queue: its key names it uniquely within the study."""

    key: str
    params: dict[str, Any] | None = None  # Optuna-internal values; None: the strategy proposes them
    seed_number: int = 0
    priority: int = 1  # lower is claimed first
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueueRow:
    id: int
    key: str
    state: str
    params: dict[str, Any] | None
    seed_number: int
    attrs: dict[str, Any]
    trial_number: int | None
    worker: str | None
    priority: int = 1


class RunQueue:
    """The runs table of one study."""

    def __init__(self, name: str, engine: Any, table: Any) -> None:
        self.name = name
        self.engine = engine
        self.table = table

    def enqueue(self, specs: Sequence[RunSpec]) -> int:
        """Queue runs whose keys are new; a key already queued (by anyone) is skipped. Returns how many were added."""
        import sqlalchemy as sa

        if not specs:
            return 0
        t = self.table
        keys = [s.key for s in specs]
        with self.engine.connect() as con:
            existing: set[str] = set()
            for chunk in _chunks(keys, 500):
                existing.update(r[0] for r in con.execute(sa.select(t.c.key).where(t.c.study == self.name, t.c.key.in_(chunk))))
        now = time.time()
        rows = [
            {
                "study": self.name,
                "key": s.key,
                "state": states.WAITING,
                "priority": s.priority,
                "params": None if s.params is None else json.dumps(s.params),
                "seed_number": s.seed_number,
                "attrs": json.dumps(s.attrs),
                "updated": now,
            }
            for s in specs
            if s.key not in existing
        ]
        if not rows:
            return 0
        try:
            with self.engine.begin() as con:
                con.execute(t.insert(), rows)
            return len(rows)
        except sa.exc.IntegrityError:
            # Another worker queued some of these at the same moment: insert one by one, losers skip.
            added = 0
            for row in rows:
                try:
                    with self.engine.begin() as con:
                        con.execute(t.insert(), [row])
                    added += 1
                except sa.exc.IntegrityError:
                    pass
            return added

    def claim(self, worker: str, key: str | None = None) -> QueueRow | None:
        """Move exactly one waiting run to running for this worker; None when none is waiting.

        The UPDATE is conditional on the row still waiting, so of two workers racing for one row,
        one updates one row and the other updates none and looks again."""
        import sqlalchemy as sa

        t = self.table
        for _ in range(1000):
            query = sa.select(t).where(t.c.study == self.name, t.c.state == states.WAITING)
            query = query.where(t.c.key == key) if key is not None else query.order_by(t.c.priority, t.c.id).limit(1)
            with self.engine.connect() as con:
                row = con.execute(query).mappings().first()
            if row is None:
                return None
            try:
                with self.engine.begin() as con:
                    result = con.execute(
                        t.update()
                        .where(t.c.id == row["id"], t.c.state == states.WAITING)
                        .values(state=states.RUNNING, worker=worker, updated=time.time())
                    )
                won = result.rowcount == 1
            except Exception as exc:
                if not is_dropped(exc):
                    raise
                won = bool(self._held(worker, [row["id"]]))  # the server may have committed before the drop
            if won:
                return _row(dict(row, state=states.RUNNING, worker=worker))
        raise StorageError("could not claim a run after 1000 tries; is the storage overloaded?")

    def _held(self, worker: str, ids: list[int]) -> set[int]:
        """Which of the rows `ids` run for `worker`: a claim whose connection the server dropped at
        its commit (a restart) may or may not have taken them, and only the rows say which."""
        import sqlalchemy as sa

        t = self.table
        query = sa.select(t.c.id).where(t.c.id.in_(ids), t.c.state == states.RUNNING, t.c.worker == worker)
        with self.engine.connect() as con:
            return {int(i) for (i,) in con.execute(query)}

    def claim_batch(self, worker: str, n: int) -> list[QueueRow]:
        """Move up to `n` waiting runs of this study to running for this worker, in one transaction
        (for trainers that train several runs at once); [] when none is waiting.

        Candidates are read first, then each is taken by an UPDATE conditional on it still waiting,
        all in one transaction that begins with a write (so SQLite takes its write lock at once and
        never has to upgrade a stale read). Rows another worker won in between are skipped; if it
        won all of them, look again."""
        import sqlalchemy as sa

        t = self.table
        for _ in range(1000):
            query = sa.select(t).where(t.c.study == self.name, t.c.state == states.WAITING).order_by(t.c.priority, t.c.id).limit(max(1, n))
            with self.engine.connect() as con:
                candidates = [dict(r) for r in con.execute(query).mappings()]
            if not candidates:
                return []
            now = time.time()
            claimed: list[QueueRow] = []
            try:
                with self.engine.begin() as con:
                    for row in candidates:
                        result = con.execute(
                            t.update().where(t.c.id == row["id"], t.c.state == states.WAITING).values(state=states.RUNNING, worker=worker, updated=now)
                        )
                        if result.rowcount == 1:
                            claimed.append(_row(dict(row, state=states.RUNNING, worker=worker)))
            except Exception as exc:
                if not is_dropped(exc):
                    raise
                held = self._held(worker, [row["id"] for row in candidates])  # committed before the drop, or none
                claimed = [_row(dict(row, state=states.RUNNING, worker=worker)) for row in candidates if row["id"] in held]
            if claimed:
                return claimed
        raise StorageError("could not claim runs after 1000 tries; is the storage overloaded?")

    def set_row(self, row_id: int, *, only_if_state: str | None = None, **values: Any) -> bool:
        t = self.table
        stmt = t.update().where(t.c.id == row_id)
        if only_if_state is not None:
            stmt = stmt.where(t.c.state == only_if_state)
        if "attrs" in values:
            values["attrs"] = json.dumps(values["attrs"])
        with self.engine.begin() as con:
            return bool(con.execute(stmt.values(updated=time.time(), **values)).rowcount == 1)

    def rows(self, states: Iterable[str] | None = None) -> list[QueueRow]:
        import sqlalchemy as sa

        t = self.table
        query = sa.select(t).where(t.c.study == self.name).order_by(t.c.id)
        if states is not None:
            query = query.where(t.c.state.in_(list(states)))
        with self.engine.connect() as con:
            return [_row(dict(r)) for r in con.execute(query).mappings()]

    def row_counts(self) -> dict[str, int]:
        import sqlalchemy as sa

        t = self.table
        with self.engine.connect() as con:
            result = con.execute(sa.select(t.c.state, sa.func.count()).where(t.c.study == self.name).group_by(t.c.state))
            return {state: int(n) for state, n in result}

    def requeue(self, row: QueueRow, reason: str, *, params_of: Callable[[int], dict[str, Any]]) -> str:
        """Queue a lost or interrupted run again under a new key (same configuration and seed).
        `params_of(trial_number)` gives the params of a row that had no fixed ones."""
        base = row.key.partition("/retry:")[0]
        retries = _next_retry(base, {r.key for r in self.rows()})
        key = f"{base}/retry:{retries}"
        attrs = dict(row.attrs, retry_of=row.trial_number, retry_reason=reason)
        params = row.params
        if params is None and row.trial_number is not None:
            params = params_of(row.trial_number)
        self.enqueue([RunSpec(key, params, row.seed_number, priority=0, attrs=attrs)])
        return key


def _row(r: Mapping[str, Any]) -> QueueRow:
    return QueueRow(
        id=int(r["id"]),
        key=str(r["key"]),
        state=str(r["state"]),
        params=None if r["params"] is None else json.loads(r["params"]),
        seed_number=int(r["seed_number"]),
        attrs=json.loads(r["attrs"] or "{}"),
        trial_number=r["trial_number"],
        worker=r["worker"],
        priority=int(r.get("priority", 1)),
    )


def _next_retry(base: str, keys: set[str]) -> int:
    n = 1
    while f"{base}/retry:{n}" in keys:
        n += 1
    return n


def _chunks(items: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
