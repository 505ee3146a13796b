"""The batched training loop: one group of shape-compatible runs trained as one vmapped program.

Between evaluations the runs train in one compiled call (`build.make_chunk`); each run then reports
its own metrics and gets its own Decision. A run told to stop (or at its budget) trains no further
(zero iterations: its state stays as it was) and its state is saved at once; when half the lanes are
idle the batch is compacted to a smaller width (one more compilation, cached). A run that continues a
checkpoint (PBT) takes it from this process's memory when the previous generation was trained here
(an array copy of the donor's slice), else from the file; its learning rate and gradient clip are
then rewritten in the optimizer state, so an explored value is in effect from the first update.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlsweep.errors import TrainerError
from rlsweep.study.attrs import CHECKPOINTS_ATTR, MODEL_ATTR
from rlsweep.trainers._base import RunContext, atomic_path, commit_file
from rlsweep.trainers.jax import build
from rlsweep.trainers.jax.settings import algo_of, algo_settings, shape_key

log = logging.getLogger("rlsweep.trainers.jax")

MODEL_FILE = "model.msgpack"
EVAL_SEED_OFFSET = 1_000_003  # evaluation keys: fold_in(key(seed), offset), apart from training's key(seed)
DEFAULT_CACHE = "~/.cache/rlsweep/jax"

# Final states of the runs this process trained last, by model path: the next PBT generation starts
# from them without reading files. Bounded: a few batches' worth.
_MEMORY: OrderedDict[str, dict[str, Any]] = OrderedDict()
_MEMORY_RUNS = 512


def compile_cache(config: Mapping[str, Any]) -> str | None:
    """Turn on JAX's persistent compilation cache (a second sweep with the same shapes reuses it)."""
    setting = config.get("compile_cache", os.environ.get("JAX_COMPILATION_CACHE_DIR") or DEFAULT_CACHE)
    if setting is False or setting is None:
        return None
    path = Path(str(setting)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return str(path)


def train_batch(runs: list[RunContext]) -> None:
    config = runs[0].config
    cache = compile_cache(config)
    values = [algo_settings(r.config, r.hyperparams) for r in runs]
    clock = time.perf_counter()
    grp = build.group(shape_key(config, runs[0].hyperparams), config, values[0], runs[0].eval_episodes, cache)
    base = grp.base
    per_iteration = build.steps_per_iteration(base)
    n = len(runs)
    info = {
        "id": uuid.uuid4().hex[:8],
        "size": n,
        "pid": os.getpid(),
        "device": str(jax.devices()[0].platform),
        "cpus": build.CPUS,  # the CPUs this worker kept to (None: all it was allowed)
        "cache": cache,
    }
    algos = build.stack_algos(base, values, algo_of(config))
    # lane -> run. Widths are powers of two (idle padding lanes repeat run 0), so batches of varying
    # size (an asynchronous population, the last claim of a sweep) share a few compiled programs.
    lanes = np.array(list(range(n)) + [0] * ((1 << (n - 1).bit_length()) - n))
    grp.compile_first(algos, len(lanes))
    state, sources = _start_states(grp, runs, values)
    compile_s = time.perf_counter() - clock

    totals = np.array([max(1, math.ceil(r.budget / per_iteration)) for r in runs])
    done = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    if len(lanes) > n:
        state, algos = _take(state, lanes), _take(algos, lanes)
    eval_base = jax.jit(jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(s), EVAL_SEED_OFFSET)))(
        jnp.asarray([r.seed % 2**31 for r in runs], dtype=jnp.uint32)
    )
    finals: dict[int, dict[str, Any]] = {}
    # checkpoint.every: the next step at which each run saves a checkpoint (at the first
    # evaluation at or after it: chunks end at evaluations)
    every = [r.checkpoint_every or 0 for r in runs]
    next_checkpoint = [r.start_step + e if e else math.inf for r, e in zip(runs, every, strict=True)]
    saved: list[list[str]] = [[] for _ in runs]
    train_s = 0.0
    evaluation = 0
    shrink = bool(config.get("shrink", True))
    while active.any():
        evaluation += 1
        targets = np.minimum(
            np.array([math.ceil(evaluation * r.eval_every / per_iteration) for r in runs]), totals
        )
        steps_now = np.where(active, np.maximum(targets - done, 0), 0)
        lane_iters = np.where(_lane_owner(lanes), steps_now[lanes], 0)
        args = _chunk_args(algos, state, lane_iters, eval_base, done, lanes)
        program, seconds = grp.program(*args)
        if seconds:
            compile_s += seconds
            log.info("jax batch %s: compiled width %d in %.1f s", info["id"], len(lanes), seconds)
        clock = time.perf_counter()
        state, returns, lengths = program(*args)
        returns, lengths = np.asarray(returns), np.asarray(lengths)
        elapsed = time.perf_counter() - clock
        train_s += elapsed
        done += steps_now
        for lane in np.flatnonzero(_lane_owner(lanes)):
            i = int(lanes[lane])
            if not active[i]:
                continue
            run = runs[i]
            step = run.start_step + int(done[i]) * per_iteration
            metrics = {
                "eval/mean_return": float(returns[lane].mean()),
                "eval/std_return": float(returns[lane].std()),
                "eval/mean_length": float(lengths[lane].mean()),
                "time/batch_fps": float(
                    steps_now[lanes[_lane_owner(lanes)]].sum() * per_iteration / max(elapsed, 1e-9)
                ),
            }
            decision = run.report(step, metrics)
            if step >= next_checkpoint[i] and all(math.isfinite(v) for v in metrics.values()):
                path = run.checkpoint_dir / f"step_{step}.msgpack"
                _write_state(path, build.run_slice(state, int(lane)), run, values[i])
                saved[i].append(str(path))
                run.record(CHECKPOINTS_ATTR, list(saved[i]))
                while next_checkpoint[i] <= step:
                    next_checkpoint[i] += every[i]
            if decision.should_stop or done[i] >= totals[i]:
                active[i] = False
                finals[i] = build.run_slice(state, int(lane))
                if all(math.isfinite(v) for v in metrics.values()):
                    _save(run, finals[i], values[i])
        if shrink and active.any() and active.sum() <= len(lanes) // 2:
            lanes, state, algos = _compact(lanes, active, state, algos)
    info.update(compile_s=round(compile_s, 3), train_s=round(train_s, 3), widths=grp.widths())
    log.info("jax batch %s: %d runs, compile %.1f s, train %.1f s", info["id"], n, compile_s, train_s)
    for i, run in enumerate(runs):
        run.record("batch", info)
        run.record("start_from", sources[i])
        if i in finals:
            _remember(run, finals[i])


def _lane_owner(lanes: np.ndarray) -> np.ndarray:
    """True for the first lane of each run (padding lanes repeat a run and are ignored)."""
    first = np.zeros(len(lanes), dtype=bool)
    _, index = np.unique(lanes, return_index=True)
    first[index] = True
    return first


def _chunk_args(
    algos: Any, state: Any, iters: np.ndarray, eval_base: Any, done: np.ndarray, lanes: np.ndarray
) -> tuple[Any, ...]:
    # each evaluation's key depends only on the run's seed and its iteration count
    keys = jax.vmap(jax.random.fold_in)(
        eval_base[jnp.asarray(lanes)], jnp.asarray(done[lanes], dtype=jnp.uint32)
    )
    return algos, state, jnp.asarray(iters, dtype=jnp.int32), keys


def _compact(lanes: np.ndarray, active: np.ndarray, state: Any, algos: Any) -> tuple[np.ndarray, Any, Any]:
    """Keep the lanes of the runs still training, padded to a power of two (few distinct widths)."""
    owners = _lane_owner(lanes)
    keep = [lane for lane in range(len(lanes)) if owners[lane] and active[lanes[lane]]]
    width = 1 << (len(keep) - 1).bit_length()
    keep += [keep[0]] * (width - len(keep))
    return lanes[np.asarray(keep)], _take(state, keep), _take(algos, keep)


def _take(tree: Any, lanes: Sequence[int] | np.ndarray) -> Any:
    index = jnp.asarray(lanes)
    return jax.tree.map(lambda x: x[index], tree)


def _start_states(
    grp: build.Group, runs: Sequence[RunContext], values: Sequence[Mapping[str, Any]]
) -> tuple[Any, list[str]]:
    """The batch's starting state: fresh, or each run's start checkpoint (from memory or its file),
    re-keyed by (seed, start step) and with the run's own learning rate and gradient clip."""
    template = grp.init([r.seed for r in runs], values)
    if all(r.start_checkpoint is None for r in runs):
        return template, ["fresh"] * len(runs)
    slices, sources = [], []
    for i, run in enumerate(runs):
        if run.start_checkpoint is None:
            slices.append(build.run_slice(template, i))
            sources.append("fresh")
            continue
        key = str(run.start_checkpoint)
        if key in _MEMORY:
            slices.append(_MEMORY[key])
            sources.append("memory")
        else:
            try:
                slices.append(build.from_bytes(Path(key).read_bytes())["state"])
            except OSError as exc:
                raise TrainerError(f"cannot continue from {key}: {exc}") from exc
            sources.append("file")
    state = build.stack_slices(template, slices)
    # a copy must not replay its donor's random stream: each run draws from its own seed from here
    rngs = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(r.seed % 2**31), r.start_step) for r in runs])
    state = state.replace(rng=rngs)
    lrs = jnp.asarray([float(v["learning_rate"]) for v in values], dtype=jnp.float32)
    clips = jnp.asarray([float(v["max_grad_norm"]) for v in values], dtype=jnp.float32)
    return build.apply_hyperparams(state, lrs, clips), sources


def _save(run: RunContext, final: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """The run's final state, recorded as its model."""
    path = run.artifact_dir / MODEL_FILE
    run.record(MODEL_ATTR, str(_write_state(path, final, run, values)))


def _write_state(path: Path, state: Mapping[str, Any], run: RunContext, values: Mapping[str, Any]) -> Path:
    """A run's whole state (to continue from) and its settings (to rebuild the policy network
    whether its shape was searched or fixed), written to a temporary name and renamed."""
    tmp = atomic_path(path)
    tmp.write_bytes(
        build.to_bytes(
            state,
            {
                **values,
                "algo": algo_of(run.config),
                "timesteps": run.config.get("timesteps"),
                "env": run.config["env"],
                "env_params": run.config.get("env_params") or {},
            },
        )
    )
    return commit_file(tmp, path)


def _remember(run: RunContext, final: dict[str, Any]) -> None:
    path = str(run.artifact_dir / MODEL_FILE)
    if not Path(path).is_file():
        return
    _MEMORY[path] = final
    _MEMORY.move_to_end(path)
    while len(_MEMORY) > _MEMORY_RUNS:
        _MEMORY.popitem(last=False)
