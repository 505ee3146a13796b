"""The static HTML report: one folder (index.html, img/*.png, media/*.gif) that opens offline.

`build_report` takes plain data (dicts of runs, gallery items, importance scores), so it can be
tested without a study; the CLI gathers that data from the storage. Every link is relative, every
image lives in the folder, and the number of figures does not grow with the number of runs.
"""

from __future__ import annotations

import html
import math
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsweep.analysis.stats import Summary, summarize

FINISHED = "COMPLETE"
#: A behaviour cluster holding at most this share of the gallery is flagged as rare.
RARE_SHARE = 0.15

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;color:#222}
h1{margin:18px 0 4px} h2{margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:3px}
nav a{margin-right:12px} table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 9px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums} code{font-size:12px}
img.plot{max-width:100%;border:1px solid #eee;margin:6px 0} .figs{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start} .figs img.plot{max-width:calc(50% - 6px);margin:0}
.grid{display:flex;flex-wrap:wrap;gap:10px} .tile{border:1px solid #ddd;border-radius:4px;padding:6px;width:220px;font-size:12px}
.tile img,.tile video{width:100%;height:auto;display:block;background:#fafafa} .rare{border-color:#d33;box-shadow:0 0 0 2px #fdd}
.badge{display:inline-block;padding:0 5px;border-radius:3px;background:#eef;margin-left:4px} .badge.rare{background:#fdd;color:#a00}
.muted{color:#777} details{margin:8px 0}
"""


@dataclass
class _Config:
    config_id: str
    params: dict[str, Any]
    summary: Summary
    runs: list[Mapping[str, Any]]
    states: Counter[str]
    rank: int | None = None  # its place in the study's ranking; None when not ranked
    race_reason: str | None = None  # seed racing: why it got the seeds it got


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _state(run: Mapping[str, Any]) -> str:
    return str(run.get("state", FINISHED)).upper().removeprefix("TRIALSTATE.")


def _seed_run(run: Mapping[str, Any], objective: str) -> Any:
    """A report run row as the ranking reads it (a pruned run: its last reported objective)."""
    from rlsweep.analysis.ranking import SeedRun

    state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(_state(run), "pending")
    score = run.get("score", run.get("value") if state == "complete" else None)
    if score is None and state == "pruned":
        curve = (run.get("curves") or {}).get(objective) or []
        score = curve[-1][1] if curve else None
    return SeedRun(
        int(run.get("number", 0)), str(run.get("config_id", run.get("number"))), dict(run.get("params", {})),
        run.get("seed"), state, float(score) if _finite(score) else math.nan,  # type: ignore[arg-type]
    )  # fmt: skip


def _group(
    runs: Sequence[Mapping[str, Any]], mode: str, seed: int, ranking: Any = None, objective: str = ""
) -> list[_Config]:
    """Configurations in the order of the study's one ranking (`rlsweep.analysis.ranking`; computed
    from the run rows when none is given): ranked ones first, then the rest."""
    from rlsweep.analysis.ranking import rank_runs

    by_id: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for run in runs:
        by_id[str(run.get("config_id", run.get("number")))].append(run)
    if ranking is None or ranking.kind != "configurations":
        ranking = rank_runs([_seed_run(r, objective) for r in runs], mode=mode, seed=seed)  # type: ignore[arg-type]
    entries = {e.config_id: e for e in [*ranking.entries, *ranking.unranked]}
    order = [*ranking.order(), *sorted(c for c in by_id if c not in entries)]
    configs = []
    for cid in order:
        members = by_id.get(cid, [])
        e = entries.get(cid)
        configs.append(
            _Config(
                cid,
                dict(e.values if e is not None else members[0].get("params", {})),
                e.summary if e is not None else summarize([]),
                members,
                Counter(_state(r) for r in members),
                None if e is None else e.rank,
                getattr(e, "race_reason", None),
            )
        )
    return configs


def _sparkline(points: Sequence[tuple[float, float]], width: int = 120, height: int = 26) -> str:
    pts = [(float(s), float(v)) for s, v in points if _finite(v)]
    if len(pts) < 2:
        return ""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 2) / ((x1 - x0) or 1)
    sy = (height - 2) / ((y1 - y0) or 1)
    coords = " ".join(f"{1 + (x - x0) * sx:.1f},{height - 1 - (y - y0) * sy:.1f}" for x, y in pts)
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.3" points="{coords}"/></svg>'
    )


def _copy_media(src: Path, media: Path, index: int) -> str | None:
    """Bring a gallery file into the report folder (hard link when possible); its relative path."""
    if not src.is_file():
        return None
    dest = media / f"{index:04d}-{src.name}"
    media.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
    return f"media/{dest.name}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{_e(k)}={_e(_fmt(v))}" for k, v in sorted(params.items()))


def _img(rel: Path | None, out: Path, alt: str) -> str:
    return f'<img class="plot" src="{_e(rel.relative_to(out).as_posix())}" alt="{_e(alt)}">' if rel else ""


def _run_anchor(run: Any, study: Any = None) -> str:
    """The id of a run's row: `run-N` in the report's own study, `run-<study>-N` in a reseed child."""
    return f"run-{study}-{run}" if study else f"run-{run}"


def _tile(
    item: Mapping[str, Any],
    src: str,
    rare_clusters: set[Any],
    main_study: str | None = None,
    configs: Collection[str] | None = None,
) -> str:
    """One gallery tile; `configs` are the configurations with an anchor on the page (None: all)."""
    run = item.get("run")
    cid = item.get("config_id")
    cluster = item.get("cluster")
    study = item.get("study") if item.get("study") not in (None, main_study) else None
    rare = cluster in rare_clusters
    badge = (
        f'<span class="badge{" rare" if rare else ""}">behaviour {_e(cluster)}{" · rare" if rare else ""}</span>'
        if cluster is not None
        else ""
    )
    links = []
    if run is not None:
        who = f"{study} run {run}" if study else f"run {run}"
        links.append(f'<a href="#{_e(_run_anchor(run, study))}">{_e(who)} curve</a>')
    if cid is not None and (configs is None or str(cid) in configs):
        links.append(f'<a href="#config-{_e(cid)}">config {_e(cid)}</a>')
    elif cid is not None:
        links.append(f"config <code>{_e(cid)}</code>")
    step = ""
    if item.get("step") is not None:
        step = f"{'final model, ' if item.get('final') else ''}step {_e(item['step'])} · "
    seeds = f"seed {_e(item.get('seed', '—'))}"
    if item.get("train_seed") is not None:
        seeds = f"train seed {_e(item['train_seed'])} · episode {seeds}"
    if src.lower().endswith((".mp4", ".webm")):
        media = f'<video src="{_e(src)}" muted loop autoplay playsinline preload="metadata"></video>'
    else:
        media = f'<img src="{_e(src)}" loading="lazy" alt="episode">'
    return (
        f'<div class="tile{" rare" if rare else ""}">{media}'
        f"{step}return <b>{_e(_fmt(item.get('return')))}</b> · {seeds}{badge}<br>{' · '.join(links)}</div>"
    )


def _gallery(
    items: Sequence[Mapping[str, Any]], out: Path, order: list[str], main_study: str | None = None
) -> str:
    """Policies grouped by configuration and by behaviour cluster; checkpoint timelines (items with
    `timeline` set) get a row per run, ordered by step, and stay out of the behaviour groups."""
    media = out / "media"
    placed = []
    for i, item in enumerate(items):
        src = _copy_media(Path(str(item.get("path") or item.get("gif") or "")), media, i)
        if src is not None:
            placed.append((item, src))
    if not placed:
        return '<p class="muted">No rendered episodes (run <code>rlsweep render</code>).</p>'
    timelines = [(i, s) for i, s in placed if i.get("timeline")]
    placed = [(i, s) for i, s in placed if not i.get("timeline")]
    sizes = Counter(item.get("cluster") for item, _ in placed if item.get("cluster") is not None)
    rare = {c for c, n in sizes.items() if len(sizes) > 1 and n / len(placed) <= RARE_SHARE}
    rank = {cid: i for i, cid in enumerate(order)}

    def grid(tiles: Sequence[tuple[Mapping[str, Any], str]]) -> str:
        return f"<div class='grid'>{''.join(_tile(i, s, rare, main_study, rank) for i, s in tiles)}</div>"

    parts = []
    if placed:
        parts.append(
            f"<h3>By configuration</h3><p class='muted'>{len(placed)} rendered episodes, best configuration first.</p>"
        )
    by_config: dict[str, list[tuple[Mapping[str, Any], str]]] = defaultdict(list)
    for item, src in placed:
        by_config[str(item.get("config_id"))].append((item, src))
    for cid in sorted(by_config, key=lambda c: (rank.get(c, len(rank)), c)):
        tiles = sorted(
            by_config[cid],
            key=lambda t: (str(t[0].get("study") or ""), t[0].get("run") or 0, t[0].get("seed") or 0),
        )
        parts.append(f"<h4>configuration {_e(cid)}</h4>{grid(tiles)}")
    if sizes:
        parts.append(
            "<h3>By behaviour</h3><p class='muted'>Episodes clustered by behaviour descriptors (observation mean and "
            "spread, action histogram, length), each measured against the spread between seeds of one "
            "configuration: policies are split only where they differ by more than that noise. "
            "Small clusters are flagged rare.</p>"
        )
        for cluster, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
            tiles = [(i, s) for i, s in placed if i.get("cluster") == cluster]
            label = f"behaviour {_e(cluster)} ({n} polic{'y' if n == 1 else 'ies'}){' · rare' if cluster in rare else ''}"
            differs = next((str(i["cluster_differs"]) for i, _ in tiles if i.get("cluster_differs")), "")
            note = f"<p class='muted'>differs from behaviour 0 most in {_e(differs)}</p>" if differs else ""
            parts.append(f"<h4>{label}</h4>{note}{grid(tiles)}")
    if timelines:
        parts.append(
            "<h3>Checkpoint timelines</h3><p class='muted'>The same run at every saved checkpoint, same episode seed: how its behaviour developed.</p>"
        )
        by_run: dict[tuple[str, Any], list[tuple[Mapping[str, Any], str]]] = defaultdict(list)
        for item, src in timelines:
            by_run[(str(item.get("study") or ""), item.get("run"))].append((item, src))
        for (study, run), tiles in sorted(by_run.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            tiles.sort(key=lambda t: (float(t[0].get("step") or 0), bool(t[0].get("final"))))
            who = f"{study} run {run}" if study and study != main_study else f"run {run}"
            parts.append(
                f"<h4>{_e(who)} (configuration {_e(tiles[0][0].get('config_id'))})</h4>{grid(tiles)}"
            )
    return "".join(parts)


def _top_table(ranked: Sequence[_Config], top: int, anchors: bool = True) -> str:
    from rlsweep.analysis.ranking import interval_text

    rows = []
    for c in ranked[:top]:
        s = c.summary
        extra = ", ".join(f"{n} {st.lower()}" for st, n in sorted(c.states.items()) if st != FINISHED)
        anchor = f'<a id="config-{_e(c.config_id)}"></a>' if anchors else ""
        rows.append([
            str(c.rank), f"{anchor}<code>{_e(c.config_id)}</code>", str(s.n),
            _fmt(s.mean), _fmt(s.iqm), _e(interval_text(s)), _fmt(s.std), _e(extra), _params_text(c.params),
        ])  # fmt: skip
    header = ["#", "configuration", "seeds", "mean", "IQM", "95% CI", "std", "other runs", "parameters"]
    if any(c.race_reason for c in ranked[:top]):  # a racing study: why each got its seeds
        header.insert(3, "why these seeds (race)")
        for row, c in zip(rows, ranked[:top], strict=False):
            row.insert(3, _e(c.race_reason or "—"))
        return _table(header, rows, {0, 2, 4, 5, 7})
    return _table(header, rows, {0, 2, 3, 4, 6}) if rows else "<p>No finished runs yet.</p>"


def _ranking_note(ranking: Any) -> str:
    interval = ranking.interval if ranking is not None else "95% CI of the mean over seeds (percentile bootstrap; none below 2 seeds)"
    return (
        f"Ranked as `rlsweep top` ranks: mean, IQM and {interval}. Seeds are the runs with a value; a pruned "
        "run counts at its last reported value, failed runs are left out (other runs)."
    )


def _members_table(ranking: Any, top: int) -> str:
    """A population study's members as `rlsweep top` ranks them: by their newest generation."""
    from rlsweep.analysis.ranking import fmt

    rows = [
        [str(m.rank), str(m.member), _e(fmt(m.score)), str(m.generations), str(m.exploits), _e(m.run), _e(m.schedule_text())]
        for m in ranking.entries[:top]
    ]
    header = ["#", "member", "value", "generations", "exploits", "run", "schedule of its lineage"]
    note = (
        "<p class='muted'>Members ranked by their newest generation's value (members at the newest generation "
        "first); exploits: how often the member copied a donor.</p>"
    )
    return note + (_table(header, rows, {0, 1, 2, 3, 4}) if rows else "<p>No finished runs yet.</p>")


def _runs_table(runs: Sequence[Mapping[str, Any]], objective: str, study: str | None = None) -> str:
    rows = []
    for r in sorted(runs, key=lambda r: int(r.get("number", 0))):
        curve = (r.get("curves") or {}).get(objective, [])
        anchor = _run_anchor(r.get("number"), study)
        rows.append([
            f'<a id="{_e(anchor)}"></a>{_e(r.get("number"))}', _e(_state(r).lower()), f"<code>{_e(r.get('config_id'))}</code>",
            _e(r.get("seed", "—")), _fmt(r.get("value")), _sparkline(curve),
        ])  # fmt: skip
    return _table(["run", "state", "configuration", "seed", objective, "curve"], rows, {0, 3, 4})


def _children(children: Sequence[Mapping[str, Any]], objective: str, mode: str, top: int, seed: int) -> str:
    """Reseed studies: their own ranking (on the new seeds only) and their runs."""
    parts = []
    for child in children:
        name = str(child.get("name"))
        runs = list(child.get("runs") or ())
        ranked = [c for c in _group(runs, mode, seed, child.get("ranking"), objective) if c.rank is not None]
        parts.append(
            f"<h3>{_e(name)}</h3><p class='muted'>Ranked on its own (held-out) seeds.</p>{_top_table(ranked, top, anchors=False)}"
            f"<details open><summary>{_plural(len(runs), 'run')}</summary>{_runs_table(runs, objective, name)}</details>"
        )
    return "".join(parts)


def _pick_metrics(runs: Sequence[Mapping[str, Any]], objective: str, n: int) -> list[str]:
    """The objective, then metrics of its namespace (eval/...), then the rest; a metric that never
    changes (a constant clip range, say) has nothing to show and is left out."""
    values: dict[str, set[float]] = defaultdict(set)
    for r in runs:
        for metric, points in (r.get("curves") or {}).items():
            seen = values[metric]
            for _, v in points:
                if len(seen) > 1:
                    break
                if _finite(v):
                    seen.add(float(v))
    prefix = objective.rpartition("/")[0]
    moving = [m for m, seen in values.items() if m == objective or len(seen) > 1]
    return sorted(moving, key=lambda m: (m != objective, not (prefix and m.startswith(prefix + "/")), m))[:n]


def build_report(
    out_dir: str | os.PathLike[str],
    *,
    runs: Sequence[Mapping[str, Any]],
    objective: str,
    mode: str = "max",
    study: Mapping[str, Any] | None = None,
    gallery: Sequence[Mapping[str, Any]] = (),
    importance: Mapping[str, float] | None = None,
    importance_note: str | None = None,
    mature: Sequence[Mapping[str, Any]] = (),
    mature_note: str | None = None,
    population: Sequence[Mapping[str, Any]] | None = None,
    children: Sequence[Mapping[str, Any]] = (),
    ranking: Any = None,
    top: int = 10,
    curve_configs: int = 8,
    max_metrics: int = 6,
    seed: int = 0,
    log_params: Collection[str] = (),
) -> Path:
    """Write `out_dir/index.html` and its images; return the page's path.

    `runs`: dicts with number, state, value, params, config_id, seed and curves
    ({metric: [(step, value), ...]}). `gallery`: dicts with path (a GIF/MP4 file), return, seed,
    config_id, run and cluster, optionally study (a reseed child's name), step, and timeline (a
    checkpoint of a run's timeline). `mature`: dicts with run, config_id, seed, score and optionally
    study. `population`: a PBT/PB2 study's generation runs (`rlsweep.analysis.lineage.GenerationRun`
    fields as dicts) for the lineage section. `children`: reseed studies as {name, runs, ranking}.
    `ranking`: the study's `rlsweep.analysis.ranking.rank` (the order of `rlsweep top`); without it the
    same ranking is computed from `runs` (a pruned run at its last objective point). The
    learning-curve figures show the best `curve_configs` configurations for the objective and up to
    `max_metrics - 1` other metrics. `log_params`: the searched parameters on a log scale (their
    parallel-coordinates axes are logarithmic).
    """
    from rlsweep.report import plots

    out = Path(out_dir)
    img = out / "img"
    out.mkdir(parents=True, exist_ok=True)
    name = str((study or {}).get("name", (study or {}).get("study", "study")))
    configs = _group(runs, mode, seed, ranking, objective)
    ranked = [c for c in configs if c.rank is not None]
    states = Counter(_state(r) for r in runs)

    # Figures: a bounded set whatever the number of runs.
    shown = (ranked or configs)[:curve_configs]
    metrics = _pick_metrics(runs, objective, max_metrics)
    curve_imgs = []
    for i, metric in enumerate(metrics):
        groups = {c.config_id: [list((r.get("curves") or {}).get(metric, [])) for r in c.runs] for c in shown}
        curve_imgs.append((metric, plots.learning_curves(groups, metric, img / f"curves-{i}.png", seed=seed)))
    numbers = [int(r.get("number", i)) for i, r in enumerate(runs)]
    values = [
        float(r["value"]) if _state(r) == FINISHED and _finite(r.get("value")) else math.nan for r in runs
    ]
    history = plots.history(numbers, values, img / "history.png", objective=objective, mode=mode)
    parallel = plots.parallel_coordinates(
        [dict(r.get("params", {})) for r in runs],
        values,
        img / "parallel.png",
        objective=objective,
        mode=mode,
        log_params=log_params,
        order=[k for k, _ in sorted((importance or {}).items(), key=lambda kv: -kv[1])],
    )
    importance_img = plots.importance(dict(importance or {}), img / "importance.png")

    summary_rows = [[_e(k), _e(_fmt(v))] for k, v in (study or {}).items()]
    summary_rows.append(
        ["runs", _e(", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) or "none")]
    )
    summary_rows.append(["objective", _e(f"{objective} ({mode})")])
    # Anchors for configurations outside the top table, so every gallery link lands somewhere.
    other_anchors = "".join(
        f'<a id="config-{_e(c.config_id)}"></a>' for c in configs if c not in ranked[:top]
    )
    with_study = any(m.get("study") not in (None, name) for m in mature)
    mature_rows = []
    for m in sorted(
        mature, key=lambda m: -float(m.get("score", 0)) if mode == "max" else float(m.get("score", 0))
    ):
        child = m.get("study") if m.get("study") not in (None, name) else None
        run = f'<a href="#{_e(_run_anchor(m.get("run"), child))}">{_e(m.get("run"))}</a>'
        row = [run, f"<code>{_e(m.get('config_id'))}</code>", _e(m.get("seed")), _fmt(m.get("score"))]
        mature_rows.append([_e(m.get("study", name)), *row] if with_study else row)

    title = f"rlsweep report: {name}"
    mature_header = ["run", "configuration", "seed", "score"]
    mature_html = (
        _table(
            ["study", *mature_header] if with_study else mature_header, mature_rows, {4 if with_study else 3}
        )
        if mature_rows
        else '<p class="muted">None selected (run <code>rlsweep mature</code>).</p>'
    )
    if mature_note:
        mature_html = f'<p class="muted">{_e(mature_note)}</p>{mature_html}'
    figures = "".join(_img(p, out, f"learning curve of {m}") for m, p in curve_imgs) + _img(
        history, out, "objective by run"
    )
    figures = (
        f'<div class="figs">{figures}</div>'
        if figures
        else '<p class="muted">No evaluations recorded yet.</p>'
    )
    params_html = _img(importance_img, out, "importance")
    params_html = f'<div class="figs">{params_html}</div>' if params_html else ""
    params_html += _img(parallel, out, "parallel coordinates")  # full width: read at 1200 px
    if importance_note:
        params_html = f'<p class="muted">{_e(importance_note)}</p>{params_html}'
    members_html = _members_table(ranking, top) if ranking is not None and ranking.kind == "members" else ""
    nav = [
        ("summary", "summary"),
        ("top", "top configurations"),
        ("curves", "learning curves"),
        ("params", "hyperparameters"),
    ]
    sections = [
        f'<h2 id="summary">Summary</h2>{_table([], summary_rows)}',
        f'<h2 id="top">Top {"members" if members_html else "configurations"}</h2>'
        + (members_html or f'<p class="muted">{_e(_ranking_note(ranking))}</p>{_top_table(ranked, top)}')
        + other_anchors,
        f'<h2 id="curves">Learning curves</h2>{figures}',
        f'<h2 id="params">Hyperparameters</h2>{params_html or "<p class=muted>Nothing searched or nothing finished yet.</p>"}',
    ]
    if population is not None:
        from rlsweep.report.population import population_section

        nav.append(("population", "population"))
        sections.append(
            '<h2 id="population">Population: lineage and schedules</h2>'
            + population_section(population, out, objective=objective, mode=mode)
        )
    nav += [("gallery", "gallery"), ("mature", "mature")]
    sections += [
        f'<h2 id="gallery">Behaviour gallery</h2>{_gallery(gallery, out, [c.config_id for c in configs], name)}',
        f'<h2 id="mature">Mature policies</h2>{mature_html}',
    ]
    if children:
        nav.append(("reseed", "reseed"))
        sections.append(
            f'<h2 id="reseed">Reseed studies</h2>{_children(children, objective, mode, top, seed)}'
        )
    nav.append(("runs", "all runs"))
    # Open by default: links from the gallery land on rows of this table.
    sections.append(
        f'<h2 id="runs">All runs</h2><details open><summary>{_plural(len(runs), "run")}</summary>{_runs_table(runs, objective)}</details>'
    )
    nav_html = "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in nav) + "</nav>"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head>'
        f"<body><h1>{_e(title)}</h1>{nav_html}{''.join(sections)}</body></html>\n"
    )
    index = out / "index.html"
    tmp = out / f".index.html.{os.getpid()}.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, index)
    return index
