"""The metrics table: every evaluation's metrics, one row per (run, step, name)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any


class MetricsStore:
    """The metrics of one study."""

    def __init__(self, name: str, engine: Any, table: Any) -> None:
        self.name = name
        self.engine = engine
        self.table = table

    def record(self, trial_id: int, trial_number: int, step: int, metrics: Mapping[str, float], also: Any = None) -> bool:
        """One transaction per evaluation, however many metrics it has. `also`: a statement for the
        same transaction (Optuna's intermediate value); returns whether it wrote a row. When it
        writes none, or its row exists already, the metrics are recorded all the same."""
        from sqlalchemy.exc import IntegrityError

        now = time.time()
        rows = [
            {
                "study": self.name,
                "trial_id": trial_id,
                "trial_number": trial_number,
                "step": int(step),
                "name": str(name),
                "value": _finite_or_none(value),
                "wall_time": now,
            }
            for name, value in metrics.items()
        ]
        if also is not None:
            try:
                with self.engine.begin() as con:
                    if rows:
                        con.execute(self.table.insert(), rows)
                    return bool(con.execute(also).rowcount)
            except IntegrityError:  # that step's row exists (rolled back): metrics alone, below
                pass
        if rows:
            with self.engine.begin() as con:
                con.execute(self.table.insert(), rows)
        return False

    def read(self, trial_numbers: Iterable[int] | None = None, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        m = self.table
        query = sa.select(m.c.trial_number, m.c.step, m.c.name, m.c.value, m.c.wall_time).where(m.c.study == self.name)
        if trial_numbers is not None:
            query = query.where(m.c.trial_number.in_(list(trial_numbers)))
        if names is not None:
            query = query.where(m.c.name.in_(list(names)))
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(query.order_by(m.c.trial_number, m.c.step, m.c.id)).mappings()]


def _finite_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
