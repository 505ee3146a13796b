"""Child studies: reseed (the top configurations on fresh seeds) and replay (a population winner's
schedule against a static configuration). A child is an ordinary study in its parent's storage,
linked both ways, so the same workers run it and `top` ranks it on its own seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlsweep.config import LoadedSweep, load_sweep
from rlsweep.errors import ConfigError, StorageError
from rlsweep.study import CHILDREN_ATTR, PARENT_ATTR

POPULATION = ("pbt", "pb2", "pb2_mixed")


def link(parent: Any, child: Any) -> None:
    children = list(parent.study.user_attrs.get(CHILDREN_ATTR, []))
    if child.name not in children:
        parent.study.set_user_attr(CHILDREN_ATTR, [*children, child.name])
    child.study.set_user_attr(PARENT_ATTR, parent.name)


def start_child(parent: Any, loaded: LoadedSweep) -> Any:
    """Create (or reopen) a child study in the parent's storage, link the two and queue its runs."""
    from rlsweep.strategies import make_strategy
    from rlsweep.study import StudyHandle

    child = StudyHandle.create_or_load(loaded, parent.url)
    link(parent, child)
    child.enqueue(make_strategy(loaded).initial_runs())
    child.reap_lost()
    return child


def reseed_child(parent: Any, top: int, seeds: int, *, name: str | None = None, statistic: str = "mean") -> Any:
    """The reseed child of `parent`, created and queued (not yet run)."""
    from rlsweep.analysis.reseed import reseed_sweep

    if top <= 0 or seeds <= 0:
        raise ConfigError(f"--top and --seeds must be at least 1, got {top} and {seeds}")
    return start_child(parent, reseed_sweep(parent.view(), top, seeds, name=name, statistic=statistic))


@dataclass
class ReplayChild:
    handle: Any  # the child study
    plan: Any  # rlsweep.analysis.replay's plan: the winner's schedule and the static arm
    loaded: LoadedSweep


def replay_child(
    parent: Any, seeds: int, *, member: int | None = None, static: str = "initial", name: str | None = None
) -> ReplayChild:
    """The replay child of a population study, created and queued (not yet run)."""
    from rlsweep.analysis import replay
    from rlsweep.study import StudyHandle

    if seeds <= 0:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if static not in ("initial", "best0"):
        raise ConfigError(f"static must be 'initial' or 'best0', got {static!r}")
    if parent.sweep.strategy.name not in POPULATION:
        raise ConfigError(
            f"study '{parent.name}' uses strategy '{parent.sweep.strategy.name}'; replay needs pbt, pb2 or pb2_mixed"
        )
    trials = parent.study.get_trials(deepcopy=False)
    runs = replay.load_runs(parent.view())
    if member is None and runs:
        from rlsweep.analysis.ranking import rank

        ranked = rank(parent.view())
        member = ranked[0].member if len(ranked) else None  # the first of `rlsweep top`'s members
    try:
        plan = replay.plan_replay(runs, parent.name, mode=parent.sweep.objective.mode, member=member, static=static)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"--member: {exc}") from None
    data = replay.child_sweep(
        parent.loaded.to_dict(), plan, seeds, name=name, first_seed=replay.fresh_seed(trials, parent.sweep.seed)
    )
    loaded = load_sweep(data, file=f"<replay of {parent.name}>")
    try:
        existing = StudyHandle.load(loaded.sweep.study, parent.url)
    except StorageError:
        existing = None
    # Compared as read back (not as stored text), so a child saved by an older rlsweep still matches.
    if existing is not None and existing.loaded.to_dict() != loaded.to_dict():
        raise ConfigError(
            f"study '{loaded.sweep.study}' exists with another replay plan (the winner, seeds or options changed); "
            "give --name to start another replay beside it"
        )
    return ReplayChild(start_child(parent, loaded), plan, loaded)
