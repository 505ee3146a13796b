"""Launchers start `rlsweep worker` processes (or Ray tasks running one) and watch them; the storage
does the coordinating. `local` (the default), `ray` and `slurm` are chosen with `rlsweep run --launcher`;
their heavy libraries are imported only by their own modules."""

from __future__ import annotations

import re
from pathlib import Path

from rlsweep.errors import ConfigError, closest
from rlsweep.launchers._base import Launcher

__all__ = ["LAUNCHERS", "Launcher", "absolute_url", "parse_pairs"]

LAUNCHERS = ("local", "ray", "slurm")


def parse_pairs(text: str, flag: str) -> dict[str, str]:
    """`k=v,k2=v2` (as --resources and --slurm take it) -> {k: v}. A value may hold commas
    (`exclude=node1,node2`): a comma starts a new pair only when `name=` follows it."""
    pairs: dict[str, str] = {}
    for part in re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_-]*=)", text.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ConfigError(f"{flag}: expected KEY=VALUE[,KEY=VALUE...], got '{part}' in '{text}'")
        if key in pairs:
            raise ConfigError(f"{flag}: '{key}' given twice in '{text}'")
        pairs[key] = value.strip()
    return pairs


def parse_resources(text: str | None, known: tuple[str, ...] | None = None) -> dict[str, float]:
    """--resources cpu=1,gpu=0.25 -> {"cpu": 1.0, "gpu": 0.25}; every amount a number >= 0."""
    if not text:
        return {}
    out: dict[str, float] = {}
    for key, value in parse_pairs(text, "--resources").items():
        if known is not None and key not in known:
            raise ConfigError(f"--resources: unknown resource '{key}'{closest(key, known)}; known: {', '.join(known)}")
        try:
            amount = float(value)
        except ValueError:
            raise ConfigError(f"--resources: {key} needs a number, got '{value}'") from None
        if not amount >= 0 or amount == float("inf"):
            raise ConfigError(f"--resources: {key} must be a finite number >= 0, got '{value}'")
        out[key] = amount
    return out


def absolute_url(url: str) -> str:
    """A SQLite or journal-file URL with its path made absolute: workers started elsewhere (a Ray
    node, a SLURM job) may start in another folder. Other URLs are returned as they are."""
    from rlsweep.storage import is_journal

    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        return "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    if is_journal(url):
        rest = url
        for prefix in ("journal:///", "journal://", "journal:"):
            if rest.startswith(prefix):
                rest = rest.removeprefix(prefix)
                break
        return "journal:" + str(Path(rest).resolve())
    return url
