"""Mature policies: evaluate final policies on held-out seeds and keep those above a threshold.

Per-episode returns are stored in the metrics table (`mature/return`, step = episode index), so
asking again with another threshold or statistic evaluates nothing. Evaluation seeds are disjoint
from training seeds (seed + n) and from the periodic evaluation seeds used during training.

Verdicts are kept in the study, one study attribute per policy (`rlsweep:mature:<study>:<run>`)
beside the request they answer (`rlsweep:mature`), so shards (`--shard K/N`) on several machines
each write their own keys and the report, `render --mature` and `Study.mature_results()` see them
all; runs/<study>/mature/ (links and index.json) is this machine's convenience copy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.analysis.shards import Shard
from rlsweep.study.attrs import CHILDREN_ATTR, MODEL_ATTR

MATURE_SEED_BASE = 1_000_000_000  # far above training seeds and the periodic evaluation seeds
METRIC = "mature/return"
REQUEST_ATTR = "rlsweep:mature"  # the latest request: threshold, statistic, episodes, source
VERDICT_PREFIX = "rlsweep:mature:"  # + "<study>:<run>", one per judged policy


@dataclass
class Candidate:
    study: str
    number: int  # trial number in `study`
    trial_id: int
    model: str
    config: dict[str, Any]
    params: dict[str, Any]
    config_id: str
    seed: int


@dataclass
class Verdict:
    study: str
    run: int
    config_id: str
    seed: int
    score: float
    returns: list[float]
    mature: bool
    model: str
    params: dict[str, Any]
    evaluated: bool = False  # its returns were computed by this call (not read from the metrics table)


def episode_seeds(train_seed: int, episodes: int) -> list[int]:
    return [MATURE_SEED_BASE + 1000 * train_seed + k for k in range(episodes)]


def listed(handle: Any, source: str = "auto") -> list[tuple[Any, Any]]:
    """(view, trial) of every finished run with a recorded final model: of the study, of its reseed
    children, or both; each study's in the order of its ranking (`rank`: best configuration first,
    its seeds by seed number). Whether the model file is on this machine is not asked here, so every
    shard lists the same runs."""
    from optuna.trial import TrialState

    from rlsweep.analysis.ranking import rank
    from rlsweep.study.view import open_view

    handles = [handle]
    children = [open_view(name, handle.url) for name in handle.user_attrs.get(CHILDREN_ATTR, [])]
    if source == "reseed" or (source == "auto" and children):
        handles = children
    elif source == "all":
        handles = [handle, *children]
    found = []
    for h in handles:
        order = {number: i for i, number in enumerate(rank(h).run_order())}
        finished = h.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
        for t in sorted(finished, key=lambda t: (order.get(t.number, len(order)), t.number)):
            if t.user_attrs.get(MODEL_ATTR):
                found.append((h, t))
    return found


def candidates(
    handle: Any, source: str = "auto", shard: Shard | None = None, runs: list[tuple[Any, Any]] | None = None
) -> list[tuple[Any, Candidate]]:
    """The runs of `listed` (or `runs`, what it returned; only `shard`'s share, split on the stable
    order study name, run number) whose model file is here, as evaluation candidates."""
    runs = listed(handle, source) if runs is None else runs
    if shard is not None:
        runs = shard.take(runs, key=lambda item: (item[0].name, item[1].number))
    found = []
    for h, t in runs:
        model = t.user_attrs[MODEL_ATTR]
        if not Path(model).exists():
            continue
        values = h.decode(t.params)
        config, _ = h.space.fill(values)
        found.append((h, Candidate(h.name, t.number, h.trial_id(t), model, config, values, h.config_id(t), int(t.user_attrs.get("seed", 0)))))
    return found


def evaluate(model: str, config: dict[str, Any], seeds: Sequence[int]) -> list[float]:
    """Returns of one episode per seed, deterministic actions."""
    from rlsweep.trainers import policy_trainer

    trainer = policy_trainer(config, "mature")
    policy = trainer.load_policy(config, model)
    env = trainer.make_env(config, seeds[0])
    returns = []
    for seed in seeds:
        if hasattr(policy, "reset"):
            policy.reset()
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs[None])[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def statistic(values: Sequence[float], how: str) -> float:
    from rlsweep.analysis.stats import iqm

    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "iqm": float(iqm(arr)), "median": float(np.median(arr)), "min": float(arr.min())}[how]


def judge(
    handle: Any,
    threshold: float,
    episodes: int,
    *,
    how: str = "mean",
    source: str = "auto",
    workers: int = 1,
    shard: Shard | None = None,
    runs: list[tuple[Any, Any]] | None = None,
    echo: Callable[[str], None] = lambda message: None,
    store: Callable[[Any, Candidate, list[float]], None] | None = None,
) -> list[Verdict]:
    """Evaluate each candidate's (of `shard`'s share, or all) final policy on `episodes` held-out
    seeds (returns already in the metrics table are reused) and judge it against `threshold`. New
    returns are handed to `store` (the API layer writes them; this module only reads the study).
    `runs`: what `listed(handle, source)` returned, when the caller has it."""
    runs = listed(handle, source) if runs is None else runs
    found = candidates(handle, source, shard, runs)
    if shard is not None:
        mine = len(shard.take(runs, key=lambda item: (item[0].name, item[1].number)))
        missing = f" ({mine - len(found)} of its model files are not on this machine)" if mine > len(found) else ""
        echo(f"shard {shard}: {len(found)} of {len(runs)} policies{missing}")
    todo = []
    cached: dict[tuple[str, int], list[float]] = {}
    for h, c in found:
        by_step: dict[int, float] = {}
        for r in h.metrics([c.number], [METRIC]):  # a step stored twice (two racing commands) counts once
            by_step.setdefault(int(r["step"]), float(r["value"]))
        if all(k in by_step for k in range(episodes)):
            cached[(c.study, c.number)] = [by_step[k] for k in range(episodes)]
        else:
            todo.append((h, c))
    if todo:
        echo(f"evaluating {len(todo)} policies x {episodes} episodes on {workers} process(es) ({len(cached)} cached)")
        for h, c, returns in _evaluate_all(todo, episodes, workers):
            if store is not None:
                store(h, c, returns)
            cached[(c.study, c.number)] = returns
    fresh = {(c.study, c.number) for _, c in todo}
    verdicts = []
    for _, c in found:
        returns = cached[(c.study, c.number)]
        score = statistic(returns, how)
        verdicts.append(
            Verdict(c.study, c.number, c.config_id, c.seed, score, returns, score >= threshold, c.model, c.params, (c.study, c.number) in fresh)
        )
    verdicts.sort(key=lambda v: -v.score)  # stable: equal scores keep the ranking's order
    return verdicts


def request(threshold: float, how: str, episodes: int, source: str) -> dict[str, Any]:
    """What a mature command asked; every shard of one request stores the same dict."""
    return {"threshold": float(threshold), "statistic": how, "episodes": int(episodes), "source": source}


def verdict_key(v: Verdict) -> str:
    return f"{VERDICT_PREFIX}{v.study}:{v.run}"


def stored_form(v: Verdict, asked: dict[str, Any], shard: Shard | None) -> dict[str, Any]:
    """The study attribute of one verdict: the verdict, the request it answers, the shard that judged it."""
    return {**asdict(v), "request": asked, "shard": None if shard is None else str(shard)}


def stored(handle: Any) -> tuple[dict[str, Any] | None, list[Verdict]]:
    """The latest request and the verdicts stored for it (by every shard), best first; verdicts of an
    earlier request (another threshold, statistic, episodes or source) are left out."""
    attrs = handle.user_attrs
    asked = attrs.get(REQUEST_ATTR)
    if not isinstance(asked, dict):
        return None, []
    names = {f.name for f in fields(Verdict)}
    found = [
        Verdict(**{k: v for k, v in value.items() if k in names})
        for key, value in attrs.items()
        if key.startswith(VERDICT_PREFIX) and isinstance(value, dict) and value.get("request") == asked
    ]
    found.sort(key=lambda v: (-v.score, v.study, v.run))
    return asked, found


def _evaluate_all(todo: list[tuple[Any, Candidate]], episodes: int, workers: int) -> Iterator[tuple[Any, Candidate, list[float]]]:
    """Each candidate's returns as they come: in this process with one worker (no second interpreter
    to start and import the trainer in, which is most of a small shard's time), else in a spawn pool."""
    if workers == 1:
        for h, c in todo:
            yield h, c, evaluate(c.model, c.config, episode_seeds(c.seed, episodes))
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_one_thread) as pool:
        futures = [(h, c, pool.submit(evaluate, c.model, c.config, episode_seeds(c.seed, episodes))) for h, c in todo]
        for h, c, future in futures:
            yield h, c, future.result()


def _one_thread() -> None:
    # One evaluation process per core: a policy's forward pass must not start threads of its own.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def gather(
    verdicts: Sequence[Verdict], folder: Path, *, threshold: float, how: str, episodes: int, only: Sequence[Verdict] | None = None
) -> Path:
    """runs/<study>/mature/: a link to each mature model (and its VecNormalize statistics) and
    index.json listing `verdicts`. Rebuilt from scratch, unless `only` (a shard's own verdicts): then
    only their links change, so shards sharing the folder keep each other's."""
    if only is None and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for v in verdicts if only is None else only:
        model = Path(v.model)
        for src in [model, *model.parent.glob(model.name.removesuffix(".zip") + "*vecnormalize.pkl"), model.parent / "vecnormalize.pkl"]:
            dst = folder / f"{v.study}-run{v.run}-{src.name}"
            if dst.is_symlink() or dst.exists():
                dst.unlink()  # a verdict of an earlier request
            if v.mature and src.exists():
                try:
                    dst.symlink_to(src.resolve())
                except OSError:
                    shutil.copy2(src, dst)
    index = {
        "threshold": threshold,
        "statistic": how,
        "episodes": episodes,
        "mature": [asdict(v) for v in verdicts if v.mature],
        "evaluated": [asdict(v) for v in verdicts],
    }
    path = folder / "index.json"
    # Whole or absent for a reader: shards finishing at once each replace it.
    tmp = folder / f".index.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, path)
    return path
