"""`rlsweep grid FILE`: the index -> (configuration, seed) table of a grid sweep, like a config_info file."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("grid", help="list run index -> configuration and seed", description=__doc__)
    p.add_argument("file", help="sweep file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return p


def execute(args: argparse.Namespace) -> int:
    import csv
    import json
    import sys

    from rlsweep.config import load_sweep
    from rlsweep.strategies.grid import GridStrategy

    loaded = load_sweep(args.file, args.overrides + ["strategy.name=grid"])
    strategy = GridStrategy(loaded)
    names = loaded.space.names
    rows = []
    for i in range(strategy.total()):
        spec = strategy.run_spec(i)
        values = {n: loaded.space[n].decode(spec.params[n]) for n in names}  # type: ignore[index]
        rows.append({"index": i, "config": spec.attrs["_config_index"], "seed": loaded.sweep.seed + spec.seed_number, **values})
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=["index", "config", "seed", *names])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    else:
        from rich.console import Console
        from rich.table import Table

        n_configs = len(strategy.configurations())
        table = Table(title=f"{loaded.sweep.study}: {n_configs} configurations x {loaded.sweep.strategy.seeds} seeds = {len(rows)} runs")
        for col in ("index", "config", "seed", *names):
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(row[c]) for c in ("index", "config", "seed", *names)))
        Console().print(table)
    return 0
