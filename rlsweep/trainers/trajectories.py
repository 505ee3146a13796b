"""Per-step data of a run (observations, actions, rewards, episode boundaries) in one Parquet file.

Rows are buffered and written as Parquet row groups while the run trains, into a temporary file
that is renamed into place when the run closes it: a reader never sees half a file, and a long run
never holds all its steps in memory. Trainer-agnostic: a trainer hands in plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.trainers._base import atomic_path, commit_file

TRAJECTORIES_FILE = "trajectories.parquet"
BATCHES_FILE = "batches.parquet"
KINDS = ("eval", "train", "both")


def _flat(value: Any) -> list[float]:
    """One observation or action as a flat list (dict observations: their keys in sorted order)."""
    if isinstance(value, Mapping):
        return [x for k in sorted(value) for x in _flat(value[k])]
    return [float(x) for x in np.asarray(value, dtype=np.float64).ravel()]


class ParquetRows:
    """Append dict rows; every `flush_rows` rows become one row group of a file renamed into place
    on `close()`. Columns are fixed by the first row (lists become list<double> columns)."""

    def __init__(self, path: Path, *, flush_rows: int = 2048, metadata: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.tmp = atomic_path(path)
        self.flush_rows = flush_rows
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}
        self.rows: list[dict[str, Any]] = []
        self.writer: Any = None
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self.rows)
        if self.writer is None:
            schema = table.schema.with_metadata(self.metadata)
            self.writer = pq.ParquetWriter(str(self.tmp), schema)
        self.writer.write_table(table.cast(self.writer.schema))
        self.count += len(self.rows)
        self.rows = []

    def close(self) -> Path | None:
        """Write what is left and publish the file; None when no row was ever added."""
        self.flush()
        if self.writer is None:
            return None
        self.writer.close()
        self.writer = None
        return commit_file(self.tmp, self.path)


class TrajectoryWriter:
    """One run's steps. `step` is the run's environment-step clock when the transition happened (for
    evaluation episodes: the step of the evaluated policy); `episode` numbers episodes per kind, and
    `t` counts steps within an episode. An episode's rewards are recorded as the environment gave
    them (before any normalisation), so they sum to its logged return."""

    def __init__(self, artifact_dir: Path, *, kinds: str, every: int = 1) -> None:
        self.kinds = kinds
        self.every = max(int(every), 1)
        self.out = ParquetRows(artifact_dir / TRAJECTORIES_FILE, metadata={"every": str(self.every)})
        self.episodes = {"eval": 0, "train": 0}

    def wants(self, kind: str) -> bool:
        return self.kinds in (kind, "both")

    def new_episode(self, kind: str) -> tuple[int, bool]:
        """The next episode number of `kind` and whether it is recorded (one in `every`)."""
        n = self.episodes[kind]
        self.episodes[kind] = n + 1
        return n, n % self.every == 0

    def add(
        self,
        kind: str,
        *,
        episode: int,
        t: int,
        step: int,
        env: int,
        obs: Any,
        action: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        episode_return: float | None = None,
    ) -> None:
        self.out.add(
            {
                "kind": kind,
                "episode": int(episode),
                "t": int(t),
                "step": int(step),
                "env": int(env),
                "obs": _flat(obs),
                "action": _flat(action),
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
                # set on an episode's last row, from the environment's own episode statistics
                "episode_return": None if episode_return is None else float(episode_return),
            }
        )

    def close(self) -> Path | None:
        return self.out.close()


class BatchWriter:
    """The batches an off-policy algorithm sampled from its replay buffer for its updates, one row per
    sampled transition, `update` numbering the sampled batches (one in `every` is kept)."""

    def __init__(self, artifact_dir: Path, *, every: int = 1) -> None:
        self.every = max(int(every), 1)
        self.out = ParquetRows(artifact_dir / BATCHES_FILE, metadata={"every": str(self.every)})
        self.updates = 0

    def add(self, step: int, columns: Mapping[str, Any]) -> None:
        n = self.updates
        self.updates += 1
        if n % self.every:
            return
        arrays = {k: np.asarray(v) for k, v in columns.items()}
        size = len(next(iter(arrays.values())))
        for i in range(size):
            self.out.add({"update": n, "step": int(step), **{k: _flat(a[i]) for k, a in arrays.items()}})

    def close(self) -> Path | None:
        return self.out.close()
