"""Mature policies: evaluate final policies on held-out seeds and keep those above a threshold.

Per-episode returns are stored in the metrics table (`mature/return`, step = episode index), so
asking again with another threshold or statistic evaluates nothing. Evaluation seeds are disjoint
from training seeds (seed + n) and from the periodic evaluation seeds used during training.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.study.attrs import CHILDREN_ATTR, MODEL_ATTR

MATURE_SEED_BASE = 1_000_000_000  # far above training seeds and the periodic evaluation seeds
METRIC = "mature/return"


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


def episode_seeds(train_seed: int, episodes: int) -> list[int]:
    return [MATURE_SEED_BASE + 1000 * train_seed + k for k in range(episodes)]


def candidates(handle: Any, source: str = "auto") -> list[tuple[Any, Candidate]]:
    """Finished runs with a saved final model: of the study, of its reseed children, or both; each
    study's in the order of its ranking (`rank`: best configuration first, its seeds by seed number)."""
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
            model = t.user_attrs.get(MODEL_ATTR)
            if not model or not Path(model).exists():
                continue
            values = h.decode(t.params)
            config, _ = h.space.fill(values)
            found.append((h, Candidate(h.name, t.number, h.trial_id(t), model, config, values, h.config_id(t), int(t.user_attrs.get("seed", 0)))))
    return found


def evaluate(model: str, config: dict[str, Any], seeds: Sequence[int]) -> list[float]:
    """Returns of one episode per seed, deterministic actions (runs in a pool process)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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
    echo: Callable[[str], None] = lambda message: None,
    store: Callable[[Any, Candidate, list[float]], None] | None = None,
) -> list[Verdict]:
    """Evaluate each candidate's final policy on `episodes` held-out seeds (returns already in the
    metrics table are reused) and judge it against `threshold`. New returns are handed to `store`
    (the API layer writes them; this module only reads the study)."""
    found = candidates(handle, source)
    todo = []
    cached: dict[tuple[str, int], list[float]] = {}
    for h, c in found:
        rows = h.metrics([c.number], [METRIC])
        returns = [r["value"] for r in sorted(rows, key=lambda r: r["step"])][:episodes]
        if len(returns) == episodes:
            cached[(c.study, c.number)] = returns
        else:
            todo.append((h, c))
    if todo:
        echo(f"evaluating {len(todo)} policies x {episodes} episodes on {workers} process(es) ({len(cached)} cached)")
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [(h, c, pool.submit(evaluate, c.model, c.config, episode_seeds(c.seed, episodes))) for h, c in todo]
            for h, c, future in futures:
                returns = future.result()
                if store is not None:
                    store(h, c, returns)
                cached[(c.study, c.number)] = returns
    verdicts = []
    for _, c in found:
        returns = cached[(c.study, c.number)]
        score = statistic(returns, how)
        verdicts.append(Verdict(c.study, c.number, c.config_id, c.seed, score, returns, score >= threshold, c.model, c.params))
    verdicts.sort(key=lambda v: -v.score)  # stable: equal scores keep the ranking's order
    return verdicts


def gather(verdicts: Sequence[Verdict], folder: Path, *, threshold: float, how: str, episodes: int) -> Path:
    """runs/<study>/mature/: a link to each mature model (and its VecNormalize statistics) and index.json."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    mature = [v for v in verdicts if v.mature]
    for v in mature:
        model = Path(v.model)
        for src in [model, *model.parent.glob(model.name.removesuffix(".zip") + "*vecnormalize.pkl"), model.parent / "vecnormalize.pkl"]:
            if src.exists():
                dst = folder / f"{v.study}-run{v.run}-{src.name}"
                try:
                    dst.symlink_to(src.resolve())
                except OSError:
                    shutil.copy2(src, dst)
    index = {
        "threshold": threshold,
        "statistic": how,
        "episodes": episodes,
        "mature": [asdict(v) for v in mature],
        "evaluated": [asdict(v) for v in verdicts],
    }
    path = folder / "index.json"
    path.write_text(json.dumps(index, indent=1))
    return path
