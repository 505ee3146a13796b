"""The report's population section (PBT, PB2): who continued from whom, and the hyperparameter
schedules the members trained with.

It reads generation runs as plain dicts (the fields of `rlsweep.analysis.lineage.GenerationRun`),
draws two bounded figures (the family tree; every member's values and score over steps) and writes
the winner's schedule and every exploit as tables.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlsweep.analysis import lineage

#: Tables list at most this many exploits; the figures show all of them.
MAX_EXPLOIT_ROWS = 200


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return "—" if value is None else str(value)


def as_runs(population: Sequence[Mapping[str, Any]]) -> list[lineage.GenerationRun]:
    """Plain dicts (or GenerationRun objects) -> GenerationRun objects."""
    out = []
    for item in population:
        if isinstance(item, lineage.GenerationRun):
            out.append(item)
            continue
        fields = {k: item[k] for k in lineage.GenerationRun.__dataclass_fields__ if k in item}
        fields["changes"] = tuple(fields.get("changes", ()))
        fields["values"] = dict(fields.get("values", {}))
        out.append(lineage.GenerationRun(**fields))
    return out


def family_tree(
    runs: Sequence[lineage.GenerationRun], path: Path, *, highlight: Sequence[lineage.GenerationRun] = ()
) -> Path:
    """Generation (x) by member (y): a grey edge where a member continued its own run, a red one
    where it copied a donor; nodes coloured by score; the winner's ancestry drawn thick."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    by_number = {r.number: r for r in runs}
    members = sorted({r.member for r in runs})
    generations = max(r.generation for r in runs) + 1
    fig, ax = plt.subplots(
        figsize=(min(max(6.0, 0.45 * generations + 2), 14), min(max(2.5, 0.35 * len(members) + 1.2), 9))
    )
    for r in runs:
        parent = by_number.get(r.parent) if r.parent is not None else None
        if parent is None:
            continue
        colour, width = ("#d62728", 1.4) if r.exploited else ("0.7", 0.9)
        ax.plot(
            [parent.generation, r.generation], [parent.member, r.member], color=colour, lw=width, zorder=1
        )
    chain = [r for r in highlight if r.number in by_number]
    if len(chain) > 1:
        ax.plot(
            [r.generation for r in chain],
            [r.member for r in chain],
            color="black",
            lw=2.6,
            zorder=2,
            label="winner's ancestry",
        )
    scores = [r.score for r in runs]
    finite = [s for s in scores if not math.isnan(s)]
    points = ax.scatter(
        [r.generation for r in runs],
        [r.member for r in runs],
        c=[s if not math.isnan(s) else (min(finite) if finite else 0.0) for s in scores],
        cmap="viridis",
        s=28,
        zorder=3,
        edgecolors=["none" if not math.isnan(s) else "red" for s in scores],
    )
    fig.colorbar(points, ax=ax, label="score", fraction=0.04, pad=0.02)
    ax.plot([], [], color="#d62728", lw=1.4, label="exploit (copied a donor)")
    ax.plot([], [], color="0.7", lw=0.9, label="continued its own run")
    ax.set_xlabel("generation")
    ax.set_ylabel("member")
    ax.set_yticks(members)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False)
    ax.set_title("lineage: every generation of every member", fontsize=9, pad=18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def population_section(
    population: Sequence[Mapping[str, Any]], out: Path, *, objective: str, mode: str = "max"
) -> str:
    """HTML for the report: winner, family tree, schedules figure, winner's schedule, exploits."""
    runs = as_runs(population)
    if not runs:
        return '<p class="muted">No finished population runs yet.</p>'
    best = lineage.winner(runs, "min" if mode == "min" else "max")
    chain = lineage.ancestry(runs, best)
    img = out / "img"
    tree = family_tree(runs, img / "lineage-tree.png", highlight=chain)
    schedules = lineage.plot(runs, img / "lineage-schedules.png", highlight=chain, objective=objective)
    names = sorted({k for r in runs for k in r.values})
    members = lineage.by_member(runs)
    exploits = [r for r in runs if r.exploited]
    intro = (
        f"<p>{len(members)} members, {max(r.generation for r in runs) + 1} generations, {len(runs)} runs, "
        f"{len(exploits)} exploits. Winner: member {best.member} (run <a href='#run-{best.number}'>{best.number}</a>), "
        f"{_e(objective)} = <b>{_e(_fmt(best.score))}</b> at step {best.end_step}; its ancestry has {len(chain)} runs and "
        f"{sum(r.exploited for r in chain)} exploits.</p>"
    )
    figures = (
        f'<img class="plot" src="{_e(tree.relative_to(out).as_posix())}" alt="population family tree">'
        f'<img class="plot" src="{_e(schedules.relative_to(out).as_posix())}" alt="hyperparameter schedules of every member">'
    )
    schedule_rows = []
    for r in chain:
        source = (
            f"copied member {r.donor} (run <a href='#run-{r.donor_run}'>{r.donor_run}</a>)"
            if r.exploited
            else ""
        )
        schedule_rows.append(
            [
                str(r.generation),
                f"<a href='#run-{r.number}'>{r.number}</a>",
                str(r.member),
                f"{r.start_step}–{r.end_step}",
                *(_e(_fmt(r.values.get(n))) for n in names),
                _e(_fmt(r.score)),
                source,
                _e("; ".join(r.explore_changes)),
            ]
        )
    schedule = _table(
        ["generation", "run", "member", "steps", *names, objective, "from", "explore"], schedule_rows
    )
    exploit_rows = [
        [
            str(r.generation),
            str(r.member),
            f"<a href='#run-{r.number}'>{r.number}</a>",
            f"member {r.donor} (run <a href='#run-{r.donor_run}'>{r.donor_run}</a>)",
            _e("; ".join(r.explore_changes)),
            _e(_fmt(r.score)),
        ]
        for r in exploits[:MAX_EXPLOIT_ROWS]
    ]
    more = (
        f"<p class='muted'>… and {len(exploits) - MAX_EXPLOIT_ROWS} more.</p>"
        if len(exploits) > MAX_EXPLOIT_ROWS
        else ""
    )
    exploit_html = (
        _table(["generation", "member", "run", "copied", "explore changes", objective], exploit_rows) + more
        if exploit_rows
        else '<p class="muted">No member copied another yet.</p>'
    )
    return (
        intro
        + figures
        + "<h3>Winner's hyperparameter schedule</h3>"
        + schedule
        + f"<details><summary>All {len(exploits)} exploits</summary>{exploit_html}</details>"
    )
