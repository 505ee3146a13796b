"""The report's figures as PNG files (matplotlib, Agg backend): learning curves with a bootstrap CI
band per configuration, optimisation history, parallel coordinates, hyperparameter importance.

Every function takes plain data and a path, writes one PNG and returns its path (None when there is
nothing to draw). The number of figures is bounded by the caller, not by the number of runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CurveData:
    """What one configuration's learning curve shows: the mean over its seeds with a CI band, how
    many seeds each point averages (`n`), and where each seed that ended before the others stopped
    (step, its last value)."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray
    stops: list[tuple[float, float]]
    seeds: int


def curve_data(curves: Sequence[Sequence[tuple[float, float]]], *, seed: int = 0) -> CurveData:
    """`curve_band` plus the seeds' stopping points, for one configuration's seeds."""
    own = [sorted(c) for c in curves if len(c)]
    steps, mean, low, high, n = curve_band(own, seed=seed)
    end = max((c[-1][0] for c in own), default=0.0)
    stops = sorted((float(c[-1][0]), float(c[-1][1])) for c in own if c[-1][0] < end)
    return CurveData(steps, mean, low, high, n, stops, len(own))


def learning_curves(
    groups: Mapping[str, Sequence[Sequence[tuple[float, float]]]],
    metric: str,
    path: Path,
    *,
    seed: int = 0,
) -> Path | None:
    """One line per configuration (mean over its seeds) with its 95% bootstrap CI band, an x where
    a seed stopped before the others (pruned, failed or stopped by a gate), and below it how many
    seeds each point of the mean averages."""
    plt = _pyplot()
    fig, (ax, below) = plt.subplots(
        2, 1, figsize=(8, 5.2), sharex=True, gridspec_kw={"height_ratios": [4, 1.2], "hspace": 0.08}
    )
    drawn, most = 0, 1
    for i, (label, curves) in enumerate(groups.items()):
        data = curve_data(curves, seed=seed)
        if data.steps.size == 0:
            continue
        colour = plt.cm.tab10(i % 10)
        stopped = f", {len(data.stops)} stopped early" if data.stops else ""
        ax.plot(
            data.steps,
            data.mean,
            color=colour,
            lw=1.6,
            marker="o" if data.steps.size < 3 else None,  # a lone evaluation is otherwise invisible
            ms=4,
            label=f"{label} ({data.seeds} seed{'s' if data.seeds != 1 else ''}{stopped})",
        )
        if np.any(data.n > 1):
            ax.fill_between(data.steps, data.low, data.high, color=colour, alpha=0.18, lw=0)
        if data.stops:
            ax.scatter(
                [x for x, _ in data.stops],
                [y for _, y in data.stops],
                marker="x",
                s=36,
                color=colour,
                lw=1.6,
                zorder=3,
            )
        below.step(data.steps, data.n + 0.06 * (i % 5), where="post", color=colour, lw=1.3)
        most = max(most, int(data.n.max()))
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    below.set_xlabel("environment steps")
    below.set_ylabel("seeds", fontsize=8)
    below.set_ylim(0, most + 0.6)
    below.yaxis.get_major_locator().set_params(integer=True)
    below.grid(alpha=0.3)
    ax.set_ylabel(metric)
    ax.set_title(
        f"{metric}: mean and 95% bootstrap CI over seeds (x: a seed stopped; below: seeds averaged)",
        fontsize=9,
    )
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


@dataclass(frozen=True)
class Axis:
    """One vertical axis of the parallel-coordinates plot: each run's position on [0, 1], and
    the ticks (positions and labels) to read it by."""

    name: str
    scaled: np.ndarray
    ticks: list[float]
    labels: list[str]
    log: bool = False


def _ticks(lo: float, hi: float, log: bool, integer: bool) -> list[float]:
    """Up to 5 round values from lo to hi: powers of ten (and the ends) on a log axis."""
    if hi <= lo:
        return [lo]
    if log:
        decades = [10.0**e for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
        inner = [d for d in decades if lo * 1.15 < d < hi / 1.15]
        return [lo, *inner[:: max(1, math.ceil(len(inner) / 3))], hi]
    values = list(np.linspace(lo, hi, 5))
    return sorted({round(v) for v in values}) if integer else values


def axis(name: str, values: Sequence[Any], *, log: bool | None = None) -> Axis:
    """The axis of a parameter: numbers on a linear or log scale (`log`, or by default when the
    positive range spans more than two decades), anything else as categories in sorted order."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        arr = np.array(values, dtype=float)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        use_log = (lo > 0 and hi / lo > 100) if log is None else (bool(log) and lo > 0)
        t = np.log10(arr) if use_log else arr
        tlo, thi = float(t.min()), float(t.max())
        if thi <= tlo:
            return Axis(name, np.full(len(arr), 0.5), [0.5], [f"{lo:.3g}"], use_log)
        integer = all(float(v).is_integer() for v in arr)
        distinct = sorted(set(arr.tolist()))
        # A few values (a choice): a tick at each; a range: round values across it.
        ticks = distinct if len(distinct) <= 6 else _ticks(lo, hi, use_log, integer)
        where = [float(((math.log10(v) if use_log else v) - tlo) / (thi - tlo)) for v in ticks]
        return Axis(name, (t - tlo) / (thi - tlo), where, [f"{v:.3g}" for v in ticks], use_log)
    labels = sorted({str(v) for v in values})
    index = {lab: i for i, lab in enumerate(labels)}
    span = max(len(labels) - 1, 1)
    scaled = np.array([index[str(v)] / span if len(labels) > 1 else 0.5 for v in values])
    ticks = [i / span for i in range(len(labels))] if len(labels) > 1 else [0.5]
    step = max(1, math.ceil(len(labels) / 10))  # at most about 10 category labels on an axis
    shown = [
        (t, lab if len(lab) <= 16 else lab[:15] + "…")
        for i, (t, lab) in enumerate(zip(ticks, labels, strict=True))
        if i % step == 0
    ]
    return Axis(name, scaled, [t for t, _ in shown], [lab for _, lab in shown])


def parallel_axes(
    params: Sequence[Mapping[str, Any]],
    values: Sequence[float],
    *,
    log_params: Collection[str] = (),
    order: Sequence[str] = (),
    max_axes: int = 8,
) -> tuple[list[Axis], np.ndarray, int]:
    """The axes of the parallel-coordinates plot (searched parameters that take more than one
    value, the first `order`ed ones first, at most `max_axes`, then the objective), the finished
    runs' objective values in drawing order, and how many varied parameters there were in all."""
    rows = [(p, float(v)) for p, v in zip(params, values, strict=True) if v is not None and math.isfinite(v)]
    names = sorted({k for p, _ in rows for k in p})
    rows = [(p, v) for p, v in rows if all(k in p for k in names)]
    varied = [k for k in names if len({json.dumps(p[k], sort_keys=True, default=str) for p, _ in rows}) > 1]
    rank = {k: i for i, k in enumerate(order)}
    chosen = sorted(varied, key=lambda k: (rank.get(k, len(rank)), k))[:max_axes]
    axes = [
        axis(k, [_plain(p[k]) for p, _ in rows], log=(k in log_params) if log_params else None)
        for k in chosen
    ]
    if rows:
        axes.append(axis("objective", [v for _, v in rows]))
    return axes, np.array([v for _, v in rows]), len(varied)


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) else json.dumps(value, default=str)


def _wrap(name: str, width: int = 14) -> str:
    """A long parameter name on two lines, broken at its last '.' or '_' that fits."""
    if len(name) <= width:
        return name
    cut = max(name.rfind(c, 0, width + 1) for c in "._/")
    cut = cut + 1 if cut > 0 else width
    return name[:cut] + "\n" + name[cut:]


def parallel_coordinates(
    params: Sequence[Mapping[str, Any]],
    values: Sequence[float],
    path: Path,
    *,
    objective: str,
    mode: str,
    log_params: Collection[str] = (),
    order: Sequence[str] = (),
    max_axes: int = 8,
) -> Path | None:
    """One line per finished run across the searched parameters and the objective, coloured by
    the objective's value (colour bar; brighter is better), best runs drawn on top. Sized to be
    read at 1200 px: at most `max_axes` parameters (the first of `order`, e.g. by importance),
    log axes for log-scaled parameters (`log_params`), labelled ticks on every axis."""
    axes, objective_values, n_varied = parallel_axes(
        params, values, log_params=log_params, order=order, max_axes=max_axes
    )
    if len(axes) < 2:
        return None
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    data = np.stack([a.scaled for a in axes], axis=1)
    better = objective_values * (1 if mode == "max" else -1)
    draw = np.argsort(better, kind="stable")  # worst first, best on top
    fig, ax = plt.subplots(figsize=(16, 5.6))
    xs = np.arange(len(axes))
    cmap = "viridis" if mode == "max" else "viridis_r"
    lo, hi = float(objective_values.min()), float(objective_values.max())
    norm = Normalize(lo, hi if hi > lo else lo + 1)
    lines = LineCollection(
        [np.column_stack([xs, data[i]]) for i in draw], cmap=cmap, norm=norm, linewidths=1.3, alpha=0.75
    )
    lines.set_array(objective_values[draw])
    ax.add_collection(lines)
    for x, a in zip(xs, axes, strict=True):
        ax.axvline(x, color="0.25", lw=1.0)
        for t, lab in zip(a.ticks, a.labels, strict=True):
            ax.plot([x - 0.03, x], [t, t], color="0.25", lw=1.0)
            ax.text(x - 0.05, t, lab, fontsize=9, va="center", ha="right")
        title = objective if a.name == "objective" else a.name
        ax.text(
            x,
            1.04,
            _wrap(title) + (" (log)" if a.log else ""),
            fontsize=10,
            ha="center",
            va="bottom",
            weight="bold",
        )
    ax.set_xlim(-0.6, len(axes) - 0.7)
    ax.set_ylim(-0.04, 1.04)
    ax.axis("off")
    if hi > lo:
        bar = fig.colorbar(lines, ax=ax, pad=0.01, fraction=0.03)
        bar.set_label(objective, fontsize=10)
        bar.ax.tick_params(labelsize=9)
    more = (
        f"; {len(axes) - 1} of {n_varied} varied parameters, the most important first"
        if n_varied > len(axes) - 1
        else ""
    )
    fig.suptitle(f"each line a finished run, coloured by {objective}{more}", fontsize=10, y=0.02)
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
