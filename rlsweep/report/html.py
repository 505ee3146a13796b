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
from collections.abc import Mapping, Sequence
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
img.plot{max-width:100%;border:1px solid #eee;margin:6px 0}
.grid{display:flex;flex-wrap:wrap;gap:10px} .tile{border:1px solid #ddd;border-radius:4px;padding:6px;width:220px;font-size:12px}
.tile img{width:100%;height:auto;display:block;background:#fafafa} .rare{border-color:#d33;box-shadow:0 0 0 2px #fdd}
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


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _state(run: Mapping[str, Any]) -> str:
    return str(run.get("state", FINISHED)).upper().removeprefix("TRIALSTATE.")


def _group(runs: Sequence[Mapping[str, Any]], mode: str, seed: int) -> list[_Config]:
    """Configurations best first by the mean objective of their finished runs (unranked ones last)."""
    by_id: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for run in runs:
        by_id[str(run.get("config_id", run.get("number")))].append(run)
    configs = []
    for cid, members in by_id.items():
        values = [float(r["value"]) for r in members if _state(r) == FINISHED and _finite(r.get("value"))]
        configs.append(
            _Config(
                cid,
                dict(members[0].get("params", {})),
                summarize(values, seed=seed),
                members,
                Counter(_state(r) for r in members),
            )
        )
    sign = -1.0 if mode == "max" else 1.0
    return sorted(
        configs, key=lambda c: (c.summary.n == 0, sign * c.summary.mean if c.summary.n else 0.0, c.config_id)
    )


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
    return f"<table><tr>{head}</tr>{body}</table>"


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{_e(k)}={_e(_fmt(v))}" for k, v in sorted(params.items()))


def _img(rel: Path | None, out: Path, alt: str) -> str:
    return f'<img class="plot" src="{_e(rel.relative_to(out).as_posix())}" alt="{_e(alt)}">' if rel else ""


def _tile(item: Mapping[str, Any], src: str, rare_clusters: set[Any]) -> str:
    run = item.get("run")
    cid = item.get("config_id")
    cluster = item.get("cluster")
    rare = cluster in rare_clusters
    badge = (
        f'<span class="badge{" rare" if rare else ""}">behaviour {_e(cluster)}{" · rare" if rare else ""}</span>'
        if cluster is not None
        else ""
    )
    links = []
    if run is not None:
        links.append(f'<a href="#run-{_e(run)}">run {_e(run)} curve</a>')
    if cid is not None:
        links.append(f'<a href="#config-{_e(cid)}">config {_e(cid)}</a>')
    return (
        f'<div class="tile{" rare" if rare else ""}"><img src="{_e(src)}" loading="lazy" alt="episode">'
        f"return <b>{_e(_fmt(item.get('return')))}</b> · seed {_e(item.get('seed', '—'))}{badge}<br>{' · '.join(links)}</div>"
    )


def _gallery(items: Sequence[Mapping[str, Any]], out: Path, order: list[str]) -> str:
    media = out / "media"
    placed = []
    for i, item in enumerate(items):
        src = _copy_media(Path(str(item.get("path") or item.get("gif") or "")), media, i)
        if src is not None:
            placed.append((item, src))
    if not placed:
        return '<p class="muted">No rendered episodes (run <code>rlsweep render</code>).</p>'
    sizes = Counter(item.get("cluster") for item, _ in placed if item.get("cluster") is not None)
    rare = {c for c, n in sizes.items() if len(sizes) > 1 and n / len(placed) <= RARE_SHARE}
    rank = {cid: i for i, cid in enumerate(order)}
    parts = ["<h3>By configuration</h3>"]
    by_config: dict[str, list[tuple[Mapping[str, Any], str]]] = defaultdict(list)
    for item, src in placed:
        by_config[str(item.get("config_id"))].append((item, src))
    for cid in sorted(by_config, key=lambda c: (rank.get(c, len(rank)), c)):
        tiles = sorted(by_config[cid], key=lambda t: t[0].get("seed", 0))
        parts.append(
            f"<h4>configuration {_e(cid)}</h4><div class='grid'>{''.join(_tile(i, s, rare) for i, s in tiles)}</div>"
        )
    if sizes:
        parts.append(
            "<h3>By behaviour</h3><p class='muted'>Policies clustered by episode behaviour descriptors; small clusters are flagged rare.</p>"
        )
        for cluster, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
            tiles = [(i, s) for i, s in placed if i.get("cluster") == cluster]
            label = f"behaviour {_e(cluster)} ({n} polic{'y' if n == 1 else 'ies'}){' · rare' if cluster in rare else ''}"
            parts.append(
                f"<h4>{label}</h4><div class='grid'>{''.join(_tile(i, s, rare) for i, s in tiles)}</div>"
            )
    return "".join(parts)


def build_report(
    out_dir: str | os.PathLike[str],
    *,
    runs: Sequence[Mapping[str, Any]],
    objective: str,
    mode: str = "max",
    study: Mapping[str, Any] | None = None,
    gallery: Sequence[Mapping[str, Any]] = (),
    importance: Mapping[str, float] | None = None,
    mature: Sequence[Mapping[str, Any]] = (),
    top: int = 10,
    curve_configs: int = 8,
    max_metrics: int = 6,
    seed: int = 0,
) -> Path:
    """Write `out_dir/index.html` and its images; return the page's path.

    `runs`: dicts with number, state, value, params, config_id, seed and curves
    ({metric: [(step, value), ...]}). `gallery`: dicts with path (a GIF/MP4 file), return, seed,
    config_id, run and cluster. `mature`: dicts with run, config_id, seed, score. The learning-curve
    figures show the best `curve_configs` configurations for the objective and up to
    `max_metrics - 1` other metrics.
    """
    from rlsweep.report import plots

    out = Path(out_dir)
    img = out / "img"
    out.mkdir(parents=True, exist_ok=True)
    configs = _group(runs, mode, seed)
    ranked = [c for c in configs if c.summary.n]
    states = Counter(_state(r) for r in runs)

    # Figures: a bounded set whatever the number of runs.
    shown = (ranked or configs)[:curve_configs]
    metrics = sorted({m for r in runs for m in (r.get("curves") or {})}, key=lambda m: (m != objective, m))[
        :max_metrics
    ]
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
    )
    importance_img = plots.importance(dict(importance or {}), img / "importance.png")

    summary_rows = [[_e(k), _e(_fmt(v))] for k, v in (study or {}).items()]
    summary_rows.append(
        ["runs", _e(", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) or "none")]
    )
    summary_rows.append(["objective", _e(f"{objective} ({mode})")])
    top_rows = []
    for rank, c in enumerate(ranked[:top], start=1):
        s = c.summary
        extra = ", ".join(f"{n} {st.lower()}" for st, n in sorted(c.states.items()) if st != FINISHED)
        top_rows.append([
            str(rank), f'<a id="config-{_e(c.config_id)}"></a><code>{_e(c.config_id)}</code>', str(s.n),
            _fmt(s.mean), _fmt(s.iqm), f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]", _fmt(s.std), _e(extra), _params_text(c.params),
        ])  # fmt: skip
    # Anchors for configurations outside the top table, so every gallery link lands somewhere.
    other_anchors = "".join(
        f'<a id="config-{_e(c.config_id)}"></a>' for c in configs if c not in ranked[:top]
    )
    run_rows = []
    for r in sorted(runs, key=lambda r: int(r.get("number", 0))):
        curve = (r.get("curves") or {}).get(objective, [])
        run_rows.append([
            f'<a id="run-{_e(r.get("number"))}"></a>{_e(r.get("number"))}', _e(_state(r).lower()), f"<code>{_e(r.get('config_id'))}</code>",
            _e(r.get("seed", "—")), _fmt(r.get("value")), _sparkline(curve),
        ])  # fmt: skip
    mature_rows = [
        [_e(m.get("run")), f"<code>{_e(m.get('config_id'))}</code>", _e(m.get("seed")), _fmt(m.get("score"))]
        for m in sorted(
            mature, key=lambda m: -float(m.get("score", 0)) if mode == "max" else float(m.get("score", 0))
        )
    ]

    title = f"rlsweep report: {(study or {}).get('name', (study or {}).get('study', 'study'))}"
    top_header = ["#", "configuration", "seeds", "mean", "IQM", "95% CI", "std", "other runs", "parameters"]
    top_html = _table(top_header, top_rows, {0, 2, 3, 4, 6}) if top_rows else "<p>No finished runs yet.</p>"
    mature_html = (
        _table(["run", "configuration", "seed", "score"], mature_rows, {3})
        if mature_rows
        else '<p class="muted">None selected (run <code>rlsweep mature</code>).</p>'
    )
    runs_html = _table(["run", "state", "configuration", "seed", objective, "curve"], run_rows, {0, 3, 4})
    figures = "".join(_img(p, out, f"learning curve of {m}") for m, p in curve_imgs) + _img(
        history, out, "objective by run"
    )
    sections = [
        f"<h1>{_e(title)}</h1>",
        '<nav><a href="#summary">summary</a><a href="#top">top configurations</a><a href="#curves">learning curves</a>'
        '<a href="#params">hyperparameters</a><a href="#gallery">gallery</a><a href="#mature">mature</a>'
        '<a href="#runs">all runs</a></nav>',
        f'<h2 id="summary">Summary</h2>{_table(["", ""], summary_rows)}',
        '<h2 id="top">Top configurations</h2><p class="muted">Mean, IQM and 95% bootstrap CI of the mean over '
        f"seeds (finished runs only).</p>{top_html}{other_anchors}",
        f'<h2 id="curves">Learning curves</h2>{figures}',
        '<h2 id="params">Hyperparameters</h2>'
        + _img(importance_img, out, "importance")
        + _img(parallel, out, "parallel coordinates"),
        f'<h2 id="gallery">Behaviour gallery</h2>{_gallery(gallery, out, [c.config_id for c in configs])}',
        f'<h2 id="mature">Mature policies</h2>{mature_html}',
        # Open by default: links from the gallery land on rows of this table.
        f'<h2 id="runs">All runs</h2><details open><summary>{len(runs)} runs</summary>{runs_html}</details>',
    ]
    page = f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head><body>{"".join(sections)}</body></html>\n'
    index = out / "index.html"
    tmp = out / f".index.html.{os.getpid()}.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, index)
    return index
