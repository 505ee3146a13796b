"""Reseed: the sweep of a child study that re-trains the top configurations on fresh seeds (read-only;
rlsweep.api.children creates and links the child).

The child is an ordinary study (strategy `list`) in the same storage, so the same workers and
launchers run it and `top` ranks it on the new seeds alone. Its seed numbers start after the
largest the parent used, so no training seed is shared.
"""

from __future__ import annotations

import json
from typing import Any

from rlsweep.analysis.ranking import rank
from rlsweep.config import load_sweep
from rlsweep.errors import ConfigError


def max_seed_number(handle: Any) -> int:
    seeds = [int(t.user_attrs["seed"]) for t in handle.get_trials(deepcopy=False) if "seed" in t.user_attrs]
    return max(seeds, default=handle.sweep.seed - 1) - handle.sweep.seed


def reseed_sweep(parent: Any, top: int, seeds: int, *, name: str | None = None, statistic: str = "mean") -> Any:
    """The child study's validated sweep: parent's trainer and space, strategy `list` over the first
    `top` entries of the parent's ranking (`rank`). For a population study these are its best members'
    newest values, re-trained as static configurations (`replay` re-trains a schedule)."""
    ranked = rank(parent, statistic=statistic)[:top]
    if not ranked:
        raise ConfigError(f"study '{parent.name}' has no finished runs to reseed; run it first")
    unique: dict[str, Any] = {}
    for entry in ranked:  # two members may have ended on the same values
        unique.setdefault(entry.config_id, entry)
    ranked = list(unique.values())
    data = json.loads(json.dumps(parent.loaded.to_dict()))
    data["study"] = name or f"{parent.name}-reseed"
    data["strategy"] = {
        **{k: v for k, v in data["strategy"].items() if k in ("workers",)},
        "name": "list",
        "seeds": seeds,
        "configs": [r.values for r in ranked],
        "seed_offset": max_seed_number(parent) + 1,
    }
    data["stop"] = [g for g in data.get("stop", []) if g.get("success")]  # retrain fully; no pruning gates
    data["strategy"]["pruner"] = "none"
    data["artifacts"] = None
    return load_sweep(data, file=f"<reseed of {parent.name}>")
