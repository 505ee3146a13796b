"""Search markers in code: each function returns exactly the mapping the sweep file would hold, so a
Sweep built in Python and the same sweep written as YAML give the same search space (same hash)."""

from __future__ import annotations

from typing import Any


def choice(*values: Any) -> dict[str, Any]:
    """One of the given values: `choice(64, 128)` or `choice([64, 128])`, as `{choice: [64, 128]}`."""
    return {"choice": _values(values)}


def grid(*values: Any) -> dict[str, Any]:
    """Like choice; the grid strategy visits every value (`{grid: [...]}`)."""
    return {"grid": _values(values)}


def opt_values(*values: Any) -> dict[str, Any]:
    """ML-Agents' spelling of a grid (`{opt_values: [...]}`)."""
    return {"opt_values": _values(values)}


def uniform(low: float, high: float, *, step: float | None = None) -> dict[str, Any]:
    """A float in [low, high] (`{uniform: [low, high]}`, `step` for a grid)."""
    return _range("uniform", low, high, step)


def loguniform(low: float, high: float) -> dict[str, Any]:
    """A float in [low, high] on a log scale (`{loguniform: [low, high]}`), e.g. a learning rate."""
    return _range("loguniform", low, high, None)


def integer(low: int, high: int, *, step: int | None = None) -> dict[str, Any]:
    """A whole number in [low, high] (`{int: [low, high]}`)."""
    return _range("int", low, high, step)


def logint(low: int, high: int) -> dict[str, Any]:
    """A whole number in [low, high] on a log scale (`{logint: [low, high]}`), e.g. a batch size."""
    return _range("logint", low, high, None)


int_ = integer


def _values(values: tuple[Any, ...]) -> list[Any]:
    # choice([a, b]) and choice(a, b) both mean two values; choice([[64, 64]]) is one list value.
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        return list(values[0])
    return list(values)


def _range(kind: str, low: Any, high: Any, step: Any) -> dict[str, Any]:
    marker: dict[str, Any] = {kind: [low, high]}
    if step is not None:
        marker["step"] = step
    return marker
