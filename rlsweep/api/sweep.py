"""`rlsweep.Sweep`: a validated sweep, from a file or built in code, with the same checks and errors
as `rlsweep run` (ConfigError naming the file and the key)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlsweep.config import LoadedSweep, load_sweep
from rlsweep.errors import ConfigError


class Sweep:
    """A sweep: `Sweep(study=..., trainer=..., params=...)` takes the sweep file's keys.

    >>> import rlsweep
    >>> s = rlsweep.Sweep(study="demo", trainer={"kind": "function", "target": "rlsweep.examples.synthetic:train",
    ...                   "timesteps": 100}, strategy={"name": "random", "runs": 4},
    ...                   params={"lr": rlsweep.loguniform(1e-4, 1e-1)})
    >>> s.name
    'demo'
    """

    def __init__(self, study: str | None = None, *, file: str | None = None, overrides: Sequence[str] = (), **keys: Any) -> None:
        data: dict[str, Any] = dict(keys)
        if study is not None:
            data["study"] = study
        data = _plain(data)
        self.loaded: LoadedSweep = load_sweep(data, overrides, file=file or "<Python>")

    @classmethod
    def from_file(cls, path: str | Path, overrides: Sequence[str] = ()) -> Sweep:
        """Read and validate a YAML or JSON sweep file; `overrides` are `KEY=VALUE` like `--set`."""
        return cls._of(load_sweep(str(path), overrides))

    @classmethod
    def quickstart(cls, algo: str, env: str, *, timesteps: int | None = None, runs: int | None = None) -> Sweep:
        """What `rlsweep run --algo A --env E` runs: the algorithm's default space on one environment."""
        from rlsweep.trainers import quickstart_sweep

        return cls._of(load_sweep(quickstart_sweep(algo, env, timesteps or 50_000, runs or 20), file="<command line>"))

    @classmethod
    def _of(cls, loaded: LoadedSweep) -> Sweep:
        sweep = cls.__new__(cls)
        sweep.loaded = loaded
        return sweep

    def with_overrides(self, overrides: Sequence[str]) -> Sweep:
        """A copy with `KEY=VALUE` overrides applied (validated again)."""
        return Sweep._of(load_sweep(self.loaded.to_dict(secrets=True), overrides, file=self.loaded.file))

    @property
    def name(self) -> str:
        return self.loaded.sweep.study

    @property
    def settings(self) -> Any:
        """The typed sweep (pydantic model): `.trainer`, `.strategy`, `.objective`, ..."""
        return self.loaded.sweep

    def space_hash(self) -> str:
        return self.loaded.space.hash()

    def to_dict(self) -> dict[str, Any]:
        return self.loaded.to_dict()

    def __repr__(self) -> str:
        s = self.loaded.sweep
        return f"Sweep({s.study!r}, trainer={s.trainer.get('kind')!r}, strategy={s.strategy.name!r}, params={self.loaded.space.names})"


def trainer(func: Callable[..., None]) -> Callable[..., None]:
    """Make a plain function `train(run: RunContext) -> None` a trainer for a Sweep built in code:
    `Sweep(trainer={"target": train, "timesteps": 10_000}, ...)`. Workers are forked from the
    calling process, so a function defined in a script or a notebook is found by its name."""
    if not callable(func):
        raise ConfigError(f"@rlsweep.trainer decorates a function, got {func!r}")
    func.__rlsweep_target__ = f"{func.__module__}:{func.__qualname__}"  # type: ignore[attr-defined]
    return func


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a decorated (or plain) function given as the trainer into the sweep file's form."""
    out = dict(data)
    section = out.get("trainer")
    if callable(section):
        section = {"target": section}
    if isinstance(section, Mapping):
        section = dict(section)
        target = section.get("target")
        if callable(target):
            section["target"] = getattr(target, "__rlsweep_target__", None) or trainer(target).__rlsweep_target__  # type: ignore[attr-defined]
            section.setdefault("kind", "function")
        out["trainer"] = section
    return out
