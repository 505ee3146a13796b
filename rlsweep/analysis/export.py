"""Export a study: one row per run, the learning curves of every metric, the study's ranking (the one
`rlsweep top` prints, `rlsweep.analysis.ranking.rank`), and one JSON document that holds everything
needed to re-run the study (sweep, configurations, seeds, curves, ranking)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def run_rows(handle: Any, ranking: Any = None) -> list[dict[str, Any]]:
    """One dict per run; with `ranking`, `rank` is its configuration's (or member's) rank (None: unranked)."""
    ranks: dict[Any, int | None] = {}
    if ranking is not None:
        key = "run" if ranking.kind == "members" else "config_id"
        ranks = {getattr(e, key): e.rank for e in ranking.entries}
    rows = []
    for t in handle.get_trials(deepcopy=False):
        cid = handle.config_id(t)
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "config_id": cid,
                **({"rank": ranks.get(t.number if ranking.kind == "members" else cid)} if ranking is not None else {}),
                "seed": t.user_attrs.get("seed"),
                "key": t.user_attrs.get("key"),
                "failure_reason": t.user_attrs.get("failure_reason"),
                "stop_reason": t.user_attrs.get("stop_reason"),
                "duration_s": t.duration.total_seconds() if t.duration else None,
                "params": handle.decode(t.params),
                "attrs": {k: v for k, v in t.user_attrs.items() if k not in ("seed", "key")},
            }
        )
    return rows


def ranking_rows(ranking: Any) -> list[dict[str, Any]]:
    """The ranking as flat rows (values as `param:<name>` columns), best first."""
    rows = []
    for record in ranking.records():
        values = record.pop("values")
        record.pop("schedule", None)
        for k in ("runs", "seeds"):
            if k in record:
                record[k] = json.dumps(record[k])
        rows.append(record | {f"param:{n}": _cell(v) for n, v in values.items()})
    return rows


def export_study(handle: Any, out: Path, fmt: str) -> list[Path]:
    from rlsweep.analysis.ranking import rank

    out.mkdir(parents=True, exist_ok=True)
    ranking = rank(handle)
    runs = run_rows(handle, ranking)
    curves = handle.metrics()
    written: list[Path] = []
    if fmt == "json":
        by_run: dict[int, dict[str, list[list[float]]]] = {}
        for m in curves:
            by_run.setdefault(m["trial_number"], {}).setdefault(m["name"], []).append([m["step"], m["value"]])
        doc = {
            "study": handle.name,
            "sweep": handle.loaded.to_dict(),
            "ranking": {"kind": ranking.kind, "statistic": ranking.statistic, "interval": ranking.interval,
                        "ranked": ranking.records(), "unranked": [e.config_id for e in ranking.unranked]},
            "runs": [dict(r, curves=by_run.get(r["number"], {})) for r in runs],
        }  # fmt: skip
        path = out / f"{handle.name}.json"
        path.write_text(json.dumps(doc, indent=1, default=str))
        return [path]
    param_names = handle.space.names
    flat = [
        {k: v for k, v in r.items() if k not in ("params", "attrs")} | {f"param:{n}": _cell(r["params"].get(n)) for n in param_names}
        for r in runs
    ]
    if fmt == "csv":
        written.append(_write_csv(out / "runs.csv", flat))
        written.append(_write_csv(out / "curves.csv", curves))
        written.append(_write_csv(out / "ranking.csv", ranking_rows(ranking)))
        return written
    import pandas as pd

    pd.DataFrame(flat).to_parquet(out / "runs.parquet")
    pd.DataFrame(curves).to_parquet(out / "curves.parquet")
    pd.DataFrame(ranking_rows(ranking)).to_parquet(out / "ranking.parquet")
    return [out / "runs.parquet", out / "curves.parquet", out / "ranking.parquet"]


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields or ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def export_trajectories(handle: Any, out: Path) -> list[Path]:
    """Gather the per-step files runs recorded (`record:` in the sweep) into one `trajectories.parquet`
    (and `batches.parquet`) with the run, configuration and seed of each row; one run is read at a
    time, so the export never holds the whole study in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rlsweep.errors import ConfigError
    from rlsweep.trainers._base import atomic_path, commit_file

    trials = sorted(handle.get_trials(deepcopy=False), key=lambda t: t.number)
    written: list[Path] = []
    for attr in ("trajectories", "batches"):
        sources = [(t, Path(t.user_attrs[attr])) for t in trials if t.user_attrs.get(attr)]
        sources = [(t, p) for t, p in sources if p.exists()]
        if not sources:
            continue
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{attr}.parquet"
        tmp = atomic_path(path)
        writer = None
        try:
            for t, source in sources:
                table = pq.read_table(source)
                n = table.num_rows
                table = table.add_column(0, "run", pa.array([t.number] * n, pa.int64()))
                table = table.add_column(1, "config_id", pa.array([handle.config_id(t)] * n, pa.string()))
                table = table.add_column(2, "seed", pa.array([t.user_attrs.get("seed")] * n, pa.int64()))
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        written.append(commit_file(tmp, path))
    if not written:
        raise ConfigError(
            f"no run of study '{handle.name}' recorded trajectories; add record: {{trajectories: eval}} "
            "(or train, both) to the sweep and run it"
        )
    return written
