"""The report's figures as PNG files (matplotlib, Agg backend): learning curves with a bootstrap CI
band per configuration, optimisation history, parallel coordinates, hyperparameter importance.

Every function takes plain data and a path, writes one PNG and returns its path (None when there is
nothing to draw). The number of figures is bounded by the caller, not by the number of runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.analysis.stats import bootstrap_ci

#: Curves are resampled onto at most this many steps: enough for the eye, bounded for 200 runs.
MAX_CURVE_POINTS = 120


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def curve_band(
    curves: Sequence[Sequence[tuple[float, float]]], *, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and bootstrap CI across runs at common steps: (steps, mean, low, high, n).

    Each run's curve is interpolated onto the union of all steps (or an even grid when there are
    too many), and counts only inside its own step range, so a run pruned early does not pull the
    later mean. Where one run remains the band collapses onto it.
    """
    curves = [sorted(c) for c in curves if len(c)]
    if not curves:
        empty = np.empty(0)
        return empty, empty, empty, empty, empty.astype(int)
    steps = np.unique(np.concatenate([[s for s, _ in c] for c in curves]).astype(float))
    if steps.size > MAX_CURVE_POINTS:
        steps = np.linspace(steps[0], steps[-1], MAX_CURVE_POINTS)
    grid = np.full((len(curves), steps.size), np.nan)
    for i, c in enumerate(curves):
        xs = np.array([s for s, _ in c], dtype=float)
        ys = np.array([v for _, v in c], dtype=float)
        inside = (steps >= xs[0]) & (steps <= xs[-1])
        grid[i, inside] = np.interp(steps[inside], xs, ys)
    n = np.sum(~np.isnan(grid), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(n > 0, np.nanmean(np.where(n > 0, grid, 0.0), axis=0), np.nan)
    low, high = mean.copy(), mean.copy()
    for j in np.flatnonzero(n > 1):
        low[j], high[j] = bootstrap_ci(grid[:, j], "mean", confidence=confidence, n_resamples=1000, seed=seed)
    return steps, mean, low, high, n


def learning_curves(
    groups: Mapping[str, Sequence[Sequence[tuple[float, float]]]],
    metric: str,
    path: Path,
    *,
    seed: int = 0,
) -> Path | None:
    """One line per configuration (mean over its seeds) with its 95% bootstrap CI band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    drawn = 0
    for i, (label, curves) in enumerate(groups.items()):
        steps, mean, low, high, n = curve_band(curves, seed=seed)
        if steps.size == 0:
            continue
        colour = plt.cm.tab10(i % 10)
        seeds = len([c for c in curves if len(c)])
        ax.plot(
            steps,
            mean,
            color=colour,
            lw=1.6,
            marker="o" if steps.size < 3 else None,  # a lone evaluation is otherwise invisible
            ms=4,
            label=f"{label} ({seeds} seed{'s' if seeds != 1 else ''})",
        )
        if np.any(n > 1):
            ax.fill_between(steps, low, high, color=colour, alpha=0.18, lw=0)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean and 95% bootstrap CI over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2 if drawn > 5 else 1)
    return _save(fig, path)


def history(
    numbers: Sequence[int], values: Sequence[float], path: Path, *, objective: str, mode: str
) -> Path | None:
    """Each finished run's objective by run number, with the best so far."""
    pts = [(n, v) for n, v in zip(numbers, values, strict=True) if v is not None and math.isfinite(v)]
    if not pts:
        return None
    pts.sort()
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts], dtype=float)
    best = np.maximum.accumulate(ys) if mode == "max" else np.minimum.accumulate(ys)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.scatter(xs, ys, s=10, alpha=0.6, label="run")
    ax.step(xs, best, where="post", color="C3", lw=1.5, label=f"best so far ({mode})")
    ax.set_xlabel("run number")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _axis(values: list[Any]) -> tuple[np.ndarray, list[float], list[str], bool]:
    """Values on a [0, 1] axis, with tick positions and labels; log scale for wide positive ranges."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        arr = np.array(values, dtype=float)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        log = lo > 0 and hi / lo > 100
        t = np.log10(arr) if log else arr
        tlo, thi = float(t.min()), float(t.max())
        scaled = (t - tlo) / (thi - tlo) if thi > tlo else np.full(len(arr), 0.5)
        return (
            scaled,
            [0.0, 1.0] if thi > tlo else [0.5],
            [f"{lo:.3g}", f"{hi:.3g}"] if thi > tlo else [f"{lo:.3g}"],
            log,
        )
    labels = sorted({str(v) for v in values})
    index = {lab: i for i, lab in enumerate(labels)}
    span = max(len(labels) - 1, 1)
    scaled = np.array([index[str(v)] / span if len(labels) > 1 else 0.5 for v in values])
    ticks = [i / span for i in range(len(labels))] if len(labels) > 1 else [0.5]
    return scaled, ticks, [lab if len(lab) <= 14 else lab[:13] + "…" for lab in labels], False


def parallel_coordinates(
    params: Sequence[Mapping[str, Any]], values: Sequence[float], path: Path, *, objective: str, mode: str
) -> Path | None:
    """One line per finished run across every searched parameter and the objective, coloured by the
    objective (brighter is better); the best runs are drawn on top."""
    rows = [(p, v) for p, v in zip(params, values, strict=True) if v is not None and math.isfinite(v)]
    names = sorted({k for p, _ in rows for k in p})
    if not rows or not names:
        return None
    rows = [(p, v) for p, v in rows if all(k in p for k in names)]
    if not rows:
        return None
    better = np.array([v for _, v in rows], dtype=float) * (1 if mode == "max" else -1)
    rows = [rows[i] for i in np.argsort(better)]  # worst first, best on top
    columns = [_axis([p[k] for p, _ in rows]) for k in names]
    columns.append(_axis([float(v) for _, v in rows]))
    labels = [*names, objective]
    data = np.stack([c[0] for c in columns], axis=1)
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(labels)), 4))
    xs = np.arange(len(labels))
    colour = (np.arange(len(rows)) + 1) / len(rows)
    segments = [np.column_stack([xs, row]) for row in data]
    ax.add_collection(LineCollection(segments, cmap="viridis", array=colour, linewidths=1.0, alpha=0.7))
    for x, (_, ticks, tick_labels, log) in zip(xs, columns, strict=True):
        ax.axvline(x, color="0.3", lw=0.8)
        for t, lab in zip(ticks, tick_labels, strict=True):
            ax.text(x + 0.03, t, lab, fontsize=7, va="center")
        if log:
            ax.text(x, -0.08, "log", fontsize=6, ha="center", color="0.4")
    ax.set_xticks(xs, labels, rotation=20, ha="right", fontsize=8)
    ax.set_xlim(-0.2, len(labels) - 0.6)
    ax.set_ylim(-0.12, 1.05)
    ax.set_yticks([])
    ax.set_title("searched parameters (each line a finished run; brighter is better)", fontsize=9)
    return _save(fig, path)


def importance(scores: Mapping[str, float], path: Path) -> Path | None:
    """Horizontal bars, most important parameter on top."""
    if not scores:
        return None
    items = sorted(scores.items(), key=lambda kv: kv[1])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
    ax.set_xlabel("importance")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
