"""`rlsweep top STUDY -n 10`: configurations ranked by their seed-aggregated objective (a population
study: its members, by their newest generation). The order is the one ranking every command uses."""

from __future__ import annotations

import argparse
import io
import sys
import textwrap
from typing import Any

from rlsweep.cli._common import add_study_args, open_handle

#: Piped output (a file, `less`, a log) fits this many columns, or becomes plain lines.
PIPED_WIDTH = 100
#: The narrowest the values column may get before the table gives way to plain lines.
MIN_VALUES_WIDTH = 16


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "top", help="ranked configurations with mean, IQM and 95%% CI over seeds", description=__doc__
    )
    add_study_args(p)
    p.add_argument("-n", type=int, default=10, help="how many configurations (default 10)")
    p.add_argument("--by", choices=("mean", "iqm"), default="mean", help="rank by this statistic")
    p.add_argument(
        "--min-seeds", type=int, default=1, metavar="K",
        help="rank only configurations with at least K seeds (finished or pruned); the others are listed apart",
    )  # fmt: skip
    p.add_argument("--export", metavar="DIR", help="write each of the best N configurations as a sweep file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def execute(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rlsweep.analysis.ranking import export_best
    from rlsweep.api import Study

    handle = open_handle(args, trainer_checks=False)
    ranking = Study(handle).ranking(by=args.by, min_seeds=args.min_seeds)
    shown = ranking.entries[: args.n]
    if args.json:
        print(json.dumps([e.as_dict() for e in shown], indent=1))
    else:
        sys.stdout.write(render(handle, ranking, shown, args.by))
    if args.export:
        for path in export_best(handle, shown, Path(args.export)):
            print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------- the table
def columns(ranking: Any) -> list[str]:
    if ranking.kind == "members":
        return ["#", "member", "value", "gens", "exploits", "run", "schedule"]
    cols = ["#", "config", "seeds", "mean", "std", "IQM", "95% CI", "pruned"]
    for extra in ("failed", "pending"):  # shown only when some configuration has one
        if any(getattr(e, extra) for e in ranking.entries):
            cols.append(extra)
    return [*cols, "values"]


def cells(ranking: Any, entry: Any, cols: list[str], sep: str) -> list[str]:
    from rlsweep.analysis.ranking import fmt, interval_text, values_text

    if ranking.kind == "members":
        sched = entry.schedule_text().replace(", ", sep)
        return [
            str(entry.rank),
            str(entry.member),
            fmt(entry.score),
            str(entry.generations),
            str(entry.exploits),
            str(entry.run),
            sched,
        ]
    s = entry.summary
    known = {
        "#": str(entry.rank), "config": entry.config_id, "seeds": str(s.n), "mean": fmt(s.mean), "std": fmt(s.std),
        "IQM": fmt(s.iqm), "95% CI": interval_text(s), "pruned": str(entry.pruned), "failed": str(entry.failed),
        "pending": str(entry.pending), "values": values_text(entry.values, sep),
    }  # fmt: skip
    return [known[c] for c in cols]


def title(handle: Any, ranking: Any, shown: list[Any], by: str) -> str:
    o = handle.sweep.objective
    if ranking.kind == "members":
        return f"{handle.name}: top {len(shown)} members by their newest generation's {o.metric} ({o.mode})"
    return f"{handle.name}: top {len(shown)} by {by} of {o.metric} ({o.reduce}, {o.mode})"


def caption(ranking: Any) -> str:
    if ranking.kind == "members":
        return (
            "gens: generations it trained; exploits: times it copied a donor; schedule: its lineage's values"
        )
    return f"{ranking.interval}. seeds: runs with a value; a pruned one counts at its last value"


def _table(handle: Any, ranking: Any, shown: list[Any], by: str, sep: str, *, last: bool = True) -> Any:
    """The rich table; without its last (values or schedule) column when `last` is false."""
    from rich.table import Table

    cols = columns(ranking)
    keep = len(cols) if last else len(cols) - 1
    table = Table(title=title(handle, ranking, shown, by), caption=caption(ranking), caption_justify="left")
    for col in cols[:keep]:
        table.add_column(col, overflow="fold")
    for entry in shown:
        table.add_row(*cells(ranking, entry, cols, sep)[:keep])
    return table


def _natural_width(table: Any) -> int:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=10_000, color_system=None).print(table)
    return max((len(line.rstrip()) for line in buf.getvalue().splitlines()), default=0)


def render(
    handle: Any, ranking: Any, shown: list[Any], by: str, *, width: int | None = None, tty: bool | None = None
) -> str:
    """The table as text: on a terminal at its width; piped, within PIPED_WIDTH columns: the values
    column one value per line when the table is too wide, plain lines when even that does not fit."""
    from rich.console import Console

    from rlsweep.analysis.ranking import unranked_line

    tty = sys.stdout.isatty() if tty is None else tty
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width or (None if tty else PIPED_WIDTH),
        force_terminal=tty,
        color_system="auto" if tty else None,
    )
    width = console.width
    if not shown:
        console.print(
            "no finished runs yet" if not ranking.unranked else "no configuration has enough seeds to rank"
        )
    else:
        table = _table(handle, ranking, shown, by, ", ")
        if _natural_width(table) > width:
            table = _table(handle, ranking, shown, by, "\n")
            fixed = _table(handle, ranking, shown, by, "\n", last=False)  # what is left for the values
            if _natural_width(fixed) + 3 + MIN_VALUES_WIDTH > width:
                buf.write(plain(handle, ranking, shown, by, width))
                table = None
        if table is not None:
            console.print(table)
    apart = unranked_line(ranking)
    if apart:
        buf.write(textwrap.fill(apart, width, subsequent_indent="  ") + "\n")
    return buf.getvalue()


def plain(handle: Any, ranking: Any, shown: list[Any], by: str, width: int) -> str:
    """One block per entry, every line within `width`: the fallback when no table fits."""
    cols = columns(ranking)
    out = [textwrap.fill(title(handle, ranking, shown, by), width)]
    for entry in shown:
        values = dict(zip(cols, cells(ranking, entry, cols, ", "), strict=True))
        last = cols[-1]
        pairs = [f"{c} {v}" for c, v in values.items() if c not in ("#", last)]
        out.extend(_pack([f"{values['#']}. {pairs[0]}", *pairs[1:]], width, "   "))
        out.append(textwrap.fill(values[last], width, initial_indent="   ", subsequent_indent="   "))
    out.append(textwrap.fill(caption(ranking), width))
    return "\n".join(out) + "\n"


def _pack(items: list[str], width: int, indent: str) -> list[str]:
    """Items joined by two spaces into lines within `width`, never breaking an item (`failed 0`)."""
    lines: list[str] = []
    line = ""
    for item in items:
        if line and len(line) + 2 + len(item) > width:
            lines.append(line)
            line = indent + item
        else:
            line = f"{line}  {item}" if line else item
    return [*lines, line] if line else lines
