"""rejax algorithms for a batch: one base algorithm per shape group, one array entry per run.

rejax builds its optimizer with the learning rate baked into a closure, which can neither differ
between vmapped runs nor change mid-training. Every TrainState of the rejax state is given one shared
optimizer here instead, `optax.inject_hyperparams` over (global-norm clip, Adam), so learning rate and
gradient clip are arrays in the optimizer state: per run, and rewritten by PBT's explore.
Importing this module imports JAX, optax and rejax.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import math
import sys
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from flax.training.train_state import TrainState

from rlsweep.threads import keep_to_worker_cpus
from rlsweep.trainers.jax.settings import OFF_POLICY, VMAPPED, algo_of

# A local worker keeps to its share of the CPUs, before XLA's backend starts (importing JAX does not
# start it): XLA sizes its thread pool by the CPUs a process may use, and two workers on 2 cores
# with a 2-thread pool each trained 1.4 times slower than with one core each (measured: the sb3
# preset's PPO, 16 runs per worker, 0.68-0.69 vs 0.47-0.50 s per iteration).
CPUS = keep_to_worker_cpus()


def _defer(name: str) -> None:
    """Import module `name` when one of its attributes is first used, not now: gymnax imports
    seaborn and pyplot for the rendering of a few environments, which training never does (with
    pandas and scipy.stats, about 1.1 s of every worker's start). The stub in sys.modules loads the
    real module on first use and takes on its attributes. A module already imported, or not
    installed, is left alone. (importlib's LazyLoader does not help: an import statement reads
    the module's __spec__, which loads it.)"""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    stub = types.ModuleType(name)
    stub.__spec__ = spec

    def load(attr: str) -> Any:
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        real = importlib.import_module(name)
        stub.__dict__.update(real.__dict__)
        return getattr(real, attr)

    stub.__getattr__ = load  # type: ignore[method-assign]
    sys.modules[name] = stub
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stub)


for _name in ("seaborn", "matplotlib.pyplot"):
    _defer(_name)


#: Per-run values kept in the optimizer state rather than on the algorithm.
OPTIMIZER_KEYS = ("learning_rate", "max_grad_norm")


def _adam_clipped(learning_rate: Any, max_grad_norm: Any) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


# One transformation object for the whole process: TrainState keeps `tx` in its tree structure, so
# states of different batches (and restored ones) must share it to be stacked and fed to one program.
TX = optax.inject_hyperparams(_adam_clipped)(learning_rate=3e-4, max_grad_norm=0.5)


def make_base(config: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """The group's rejax algorithm (its shape settings from `values`, one run's algo settings)."""
    algo = algo_of(config)
    kwargs: dict[str, Any] = {
        "env": str(config["env"]),
        "num_envs": int(values["num_envs"]),
        "num_epochs": int(values["num_epochs"]),
        "normalize_observations": bool(values["normalize_observations"]),
        "skip_initial_evaluation": True,
    }
    if config.get("env_params"):
        kwargs["env_params"] = dict(config["env_params"])
    hidden, activation = tuple(values["hidden_layer_sizes"]), str(values.get("activation", "relu"))
    if algo in OFF_POLICY:
        kwargs.update(
            buffer_size=int(values["buffer_size"]),
            fill_buffer=int(values["fill_buffer"]),
            batch_size=int(values["batch_size"]),
            target_update_freq=int(values["target_update_freq"]),
        )
    if algo == "dqn":
        from flax import linen as nn
        from rejax import DQN

        base = DQN.create(
            **kwargs,
            exploration_fraction=float(values["exploration_fraction"]),
            ddqn=bool(values["ddqn"]),
            total_timesteps=int(config["timesteps"]),
        )
        # rejax 0.1.3's DQN fixes the hidden sizes of the network it makes: build it here instead.
        return base.replace(agent=_q_network(base, hidden, getattr(nn, activation)))
    if algo == "pqn":
        from rejax import PQN

        base = fast_shuffle(PQN).create(
            **kwargs,
            num_steps=int(values["num_steps"]),
            num_minibatches=int(values["num_minibatches"]),
            exploration_fraction=float(values["exploration_fraction"]),
            total_timesteps=int(config["timesteps"]),
        )
        # As DQN (PQN's LayerNorm + ReLU kept): rejax 0.1.3 fixes the hidden sizes.
        return base.replace(agent=_q_network(base, hidden, _layer_norm_relu))
    if algo == "sac":
        from rejax import SAC

        return SAC.create(
            **kwargs,
            num_critics=int(values["num_critics"]),
            hidden_layer_sizes=hidden,
            agent_kwargs={"activation": activation},
        )
    if algo == "td3":
        from flax import linen as nn
        from rejax import TD3
        from rejax.networks import DeterministicPolicy, QNetwork

        base = TD3.create(
            **kwargs, num_critics=int(values["num_critics"]), policy_delay=int(values["policy_delay"])
        )
        # As DQN: rejax 0.1.3's TD3 fixes its networks' hidden sizes.
        space = base.env.action_space(base.env_params)
        fn = getattr(nn, activation)
        return base.replace(
            actor=DeterministicPolicy(
                int(np.prod(space.shape)), (space.low, space.high), hidden_layer_sizes=hidden, activation=fn
            ),
            critic=QNetwork(hidden_layer_sizes=hidden, activation=fn),
        )
    from rejax import PPO

    return fast_shuffle(PPO).create(
        **kwargs,
        num_steps=int(values["num_steps"]),
        num_minibatches=int(values["num_minibatches"]),
        agent_kwargs={"hidden_layer_sizes": hidden, "activation": activation},
    )


def permutation(key: Any, n: int) -> Any:
    """A uniformly random permutation of range(n), as `jax.random.permutation` makes one (rounds of
    sorting by random keys, ties left in the previous round's random order, as many rounds as it
    uses) but with each round's sort over a single uint32 array: the random key in its high bits,
    the position in its low bits. XLA's CPU sort of one array is about ten times faster than of a
    key with a payload: measured, 16 runs' permutations of 2048 took 2.0 ms instead of 10.2 ms,
    and PPO with SB3's settings draws 10 of them per update (a fifth of its time)."""
    index_bits = max(1, (n - 1).bit_length())
    key_bits = 32 - index_bits
    if key_bits < 8:  # too few random bits left beside the position
        return jax.random.permutation(key, n)
    rounds = math.ceil(3 * math.log(max(n, 2)) / math.log(2.0**key_bits))  # jax.random's rule
    positions = jnp.arange(n, dtype=jnp.uint32)
    order = jnp.arange(n, dtype=jnp.int32)
    for sub in jax.random.split(key, rounds):
        random = jax.random.bits(sub, (n,), jnp.uint32) >> index_bits << index_bits
        picked = jnp.sort(random | positions) & ((1 << index_bits) - 1)
        order = order[picked.astype(jnp.int32)]
    return order


def _shuffle_and_split(self: Any, data: Any, rng: Any) -> Any:
    """An on-policy rollout (leaves [steps, envs, ...]) shuffled with `permutation` and cut into
    `num_minibatches` equal minibatches (leaves [minibatches, size, ...])."""
    order = permutation(rng, self.iteration_size)

    def cut(x: Any) -> Any:
        flat = x.reshape((self.iteration_size, *x.shape[2:]))[order]
        return flat.reshape((self.num_minibatches, -1, *flat.shape[1:]))

    return jax.tree.map(cut, data)


@functools.cache
def fast_shuffle(algo_class: Any) -> Any:
    """rejax's on-policy algorithm `algo_class` drawing its minibatches with `permutation`."""
    return type(algo_class.__name__, (algo_class,), {"shuffle_and_split": _shuffle_and_split})


def _q_network(base: Any, hidden: tuple[int, ...], activation: Any) -> Any:
    """rejax's epsilon-greedy Q-network with these hidden widths, for `base`'s discrete actions."""
    from rejax.networks import DiscreteQNetwork, EpsilonGreedyPolicy

    actions = int(base.env.action_space(base.env_params).n)
    return EpsilonGreedyPolicy(DiscreteQNetwork)(hidden_layer_sizes=hidden, action_dim=actions, activation=activation)


def _layer_norm_relu(x: Any) -> Any:
    """PQN's hidden activation: LayerNorm, then ReLU (a module function: its LayerNorm is a submodule)."""
    from flax import linen as nn

    return nn.relu(nn.LayerNorm()(x))


#: A batch's memory per run, in units of one run's state: the state in, the state out, and the
#: update's temporaries (gradients, Adam's moments, sampled minibatches). Measured on CPU: DQN with
#: a 131,072-transition buffer (5.2 MiB of state) added 17.3 MB of peak RSS per run (3.3 states)
#: from a batch of 4 to one of 32; 4 leaves a margin.
STATE_COPIES = 4


def state_bytes(config: Mapping[str, Any], values: Mapping[str, Any]) -> int:
    """The bytes of one run's training state (networks, optimizer, environments, replay buffer), from
    its shapes alone: traced, not compiled or allocated."""
    base = make_base(config, values)
    shapes = jax.eval_shape(lambda key: base.init_state(key), jax.random.PRNGKey(0))
    return int(sum(np.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes)))


def memory_limit(setting: int | None) -> int:
    """The bytes a batch may use: the setting, or for `auto` three quarters of the GPU's memory (what
    JAX reserves by default) or half of the free memory on a CPU."""
    if setting is not None:
        return setting
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"] * 0.75)
    with open("/proc/meminfo") as fh:
        free = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    return free // 2


def fit_batch(config: Mapping[str, Any], values: Mapping[str, Any], batch: int, memory: int | None) -> int:
    """`batch`, or fewer runs when STATE_COPIES of each run's state would not fit in the memory."""
    per_run = STATE_COPIES * state_bytes(config, values)
    return max(1, min(batch, memory_limit(memory) // max(per_run, 1)))


def steps_per_iteration(base: Any) -> int:
    """Environment steps one `train_iteration` takes per run: a rollout (PPO), one step per env (DQN)."""
    return int(base.num_envs) * int(getattr(base, "num_steps", 1))


def stack_algos(base: Any, runs: Sequence[Mapping[str, Any]], algo: str) -> Any:
    """The base algorithm with every array field holding one value per run (leading axis = run);
    the fields kept in the optimizer state are stacked too (vmap maps every leaf) but unused."""
    n = len(runs)
    stacked = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * n), base)
    keys = [k for k in VMAPPED[algo] if k not in OPTIMIZER_KEYS]
    return stacked.replace(**{k: jnp.asarray([float(r[k]) for r in runs], dtype=jnp.float32) for k in keys})


def with_optimizer(state: Any, learning_rate: Any, max_grad_norm: Any) -> Any:
    """`state` (one run's rejax state) with every TrainState using TX, freshly initialised."""
    changes = {}
    for name in state.__dataclass_fields__:
        value = getattr(state, name)
        if isinstance(value, TrainState):
            opt_state = TX.init(value.params)
            opt_state = set_hyperparams(opt_state, learning_rate, max_grad_norm)
            # rejax leaves apply_fn empty too: it applies its modules itself
            changes[name] = TrainState(
                step=value.step, apply_fn=value.apply_fn, params=value.params, tx=TX, opt_state=opt_state
            )
    return state.replace(**changes)


def set_hyperparams(opt_state: Any, learning_rate: Any, max_grad_norm: Any) -> Any:
    hyper = dict(opt_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(learning_rate, dtype=jnp.float32)
    hyper["max_grad_norm"] = jnp.asarray(max_grad_norm, dtype=jnp.float32)
    return opt_state._replace(hyperparams=hyper)


def apply_hyperparams(state: Any, learning_rate: Any, max_grad_norm: Any) -> Any:
    """A (batched) state whose optimizers use these per-run values from the next update on."""
    changes = {}
    for name in state.__dataclass_fields__:
        value = getattr(state, name)
        if isinstance(value, TrainState):
            changes[name] = value.replace(
                opt_state=set_hyperparams(value.opt_state, learning_rate, max_grad_norm)
            )
    return state.replace(**changes)


class Group:
    """What a process keeps per shape group (and episodes per evaluation), so a later batch of the
    same group (the next PBT generation) neither traces nor compiles again: the base algorithm, one
    fixed rejax state class (rejax makes a new class at every `init_state`, and a compiled program
    accepts only the tree structure it was compiled for) and the compiled program per batch width."""

    def __init__(
        self,
        config: Mapping[str, Any],
        values: Mapping[str, Any],
        episodes: int,
        name: str = "",
        cache: str | None = None,
    ) -> None:
        self.name, self.cache = name, cache  # for compile_lock
        self.initialised = False
        self.base = make_base(config, values)
        # One run's state as shapes only (traced, nothing compiled): its tree structure and class.
        self.one = jax.eval_shape(
            lambda key: with_optimizer(self.base.init_state(key), 3e-4, 0.5), jax.random.PRNGKey(0)
        )
        # One run's fresh state, compiled once per group and called per run: any batch width
        # reuses it (a vmapped init would compile again for every width).
        self._init = jax.jit(
            lambda key, lr, clip: serialization.to_state_dict(
                with_optimizer(self.base.init_state(key), lr, clip)
            ),
            compiler_options=compile_effort("init"),
        )
        self.chunk = jax.jit(make_chunk(episodes), compiler_options=compile_effort("chunk"))
        self.programs: dict[tuple[Any, ...], Any] = {}  # by _signature of the arguments

    def template(self, n: int) -> Any:
        """The structure of `n` stacked states (shapes only): what a stacked state dict is read into,
        and what `compile_first` compiles for (weak types kept: the program, and so its entry in the
        persistent cache, is then the one a fresh state's arguments give)."""
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct((n, *x.shape), x.dtype, weak_type=x.weak_type), self.one)

    def init(self, seeds: Sequence[int], runs: Sequence[Mapping[str, Any]]) -> Any:
        """Fresh states for every run, stacked (leading axis = run), in this group's state class."""
        with (
            compile_lock(self.cache, f"{self.name}/init")
            if not self.initialised
            else contextlib.nullcontext()
        ):
            states = [
                self._init(
                    jax.random.PRNGKey(int(seed) % 2**31),
                    jnp.float32(run["learning_rate"]),
                    jnp.float32(run["max_grad_norm"]),
                )
                for seed, run in zip(seeds, runs, strict=True)
            ]
        self.initialised = True
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
        return serialization.from_state_dict(self.template(len(seeds)), stacked)

    def program(self, *args: Any) -> tuple[Any, float]:
        """The compiled chunk for these arguments (arrays, or their shapes as ShapeDtypeStructs), and
        the seconds spent tracing and compiling it (a hit in JAX's persistent cache makes the second
        part short). One program per batch width (and per leaf shapes and dtypes, should a state
        come in with other dtypes than a fresh one, say a checkpoint written by another version)."""
        signature = _signature(args)
        if signature in self.programs:
            return self.programs[signature], 0.0
        clock = time.perf_counter()
        lowered = self.chunk.lower(*args)  # tracing: every worker at once, before the lock
        with compile_lock(self.cache, f"{self.name}/chunk/{int(args[2].shape[0])}"):
            self.programs[signature] = lowered.compile()
        return self.programs[signature], time.perf_counter() - clock

    def widths(self) -> list[int]:
        return sorted({signature[0] for signature in self.programs})

    def compile_first(self, algos: Any, width: int) -> float:
        """Compile the chunk for `width` runs from shapes alone, before any state exists, when another
        worker on this machine is compiling this group's initialisation right now (it would only be
        waited for): the two compilations then run side by side, and each worker loads the other's
        from the cache. Returns the seconds spent; 0 when there was nothing to gain."""
        if self.initialised or not compile_busy(self.cache, f"{self.name}/init"):
            return 0.0
        return self.program(*self.shapes(algos, width))[1]

    def shapes(self, algos: Any, width: int) -> tuple[Any, ...]:
        """The chunk's arguments for `width` fresh runs as shapes: `algos` (stacked for the runs,
        unpadded), their states, iterations and evaluation keys."""
        return (
            jax.tree.map(lambda x: _shape_of(x, width), algos),
            self.template(width),
            jax.ShapeDtypeStruct((width,), jnp.int32),
            jax.eval_shape(lambda: jax.vmap(jax.random.PRNGKey)(jnp.zeros(width, jnp.int32))),
        )


def _shape_of(x: Any, width: int) -> jax.ShapeDtypeStruct:
    """The shape and type of array `x` (leading axis: runs) widened to `width` runs."""
    return jax.ShapeDtypeStruct((width, *np.shape(x)[1:]), jnp.result_type(x), weak_type=bool(getattr(x, "weak_type", False)))


def _signature(args: Any) -> tuple[Any, ...]:
    """What a compiled program accepts: the batch width, the tree and each leaf's shape and dtype
    (a weakly typed leaf is accepted where a strong one was compiled for, and the other way)."""
    leaves, tree = jax.tree.flatten(args)
    return (int(args[2].shape[0]), tree, tuple((tuple(np.shape(x)), str(jnp.result_type(x))) for x in leaves))


#: LLVM optimisation level of XLA's CPU code per program (XLA's default is 3). Measured on the
#: 2-core CPU, level 3 vs 2: the sb3-preset PPO chunk (CartPole, 16 runs) compiles in 3.6 s instead
#: of 5.2-5.6 s and trains 20 iterations in 9.27-9.33 s vs 9.27-10.2 s; SAC (Pendulum, 8 runs,
#: 100 iterations) 4.2 vs 5.3 s to compile, 1.47 vs 1.44 s to train; DQN (CartPole, 8 runs, 400
#: iterations) 2.9-3.2 vs 3.9-4.1 s to compile, 4.8-5.2 vs 4.5-5.1 s to train. The initialisation
#: runs once per run, so its compile time is all that counts (level 0: 1.2 s vs 2.3 s).
#: Other platforms keep their defaults.
CPU_OPTIMIZATION_LEVEL = {"init": 0, "chunk": 2}


def compile_effort(program: str) -> dict[str, Any] | None:
    """XLA compiler options for `program` ("init" or "chunk") on this process's default device."""
    if jax.default_backend() != "cpu":
        return None
    return {"xla_backend_optimization_level": CPU_OPTIMIZATION_LEVEL[program]}


def compile_busy(cache: str | None, name: str) -> bool:
    """Whether another worker holds the compile lock of `name` (is compiling it) right now."""
    if cache is None:
        return False
    path = _lock_path(cache, name)
    if path.with_suffix(".done").exists() or not path.exists():
        return False
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def _lock_path(cache: str, name: str) -> Path:
    return Path(cache) / "locks" / f"{hashlib.sha1(name.encode()).hexdigest()[:20]}.lock"


@contextlib.contextmanager
def compile_lock(cache: str | None, name: str) -> Iterator[None]:
    """Held while compiling `name` into the persistent cache `cache`: another worker on this machine
    about to compile the same program waits, then loads it from the cache instead of compiling it
    at the same time (two compilations on 2 cores take about twice as long each). Once the program
    is in the cache (a `.done` mark beside the lock), workers load it at once, without the lock.
    No cache: no lock."""
    if cache is None:
        yield
        return
    path = _lock_path(cache, name)
    done = path.with_suffix(".done")
    if done.exists():
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
            done.touch()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_GROUPS: dict[Any, Group] = {}


def group(
    key: Any, config: Mapping[str, Any], values: Mapping[str, Any], episodes: int, cache: str | None = None
) -> Group:
    if (key, episodes) not in _GROUPS:
        _GROUPS[(key, episodes)] = Group(config, values, episodes, f"{key!r}/{episodes}", cache)
    return _GROUPS[(key, episodes)]


def _mode(module: Any, obs: Any) -> Any:
    """A policy network's most likely action (a squashed Gaussian's squashed mean)."""
    from rejax.networks import DeterministicPolicy, SquashedGaussianPolicy

    if isinstance(module, DeterministicPolicy):
        return module(obs)
    mode = module._action_dist(obs).mode()
    if isinstance(module, SquashedGaussianPolicy):
        return module.action_loc + jnp.tanh(mode) * module.action_scale
    return mode


def policy_params(state: Any) -> Any:
    """The parameters that act: the Q-network's (DQN) or the actor's; `state` a rejax state or its dict."""
    if isinstance(state, Mapping):
        return (state["q_ts"] if "q_ts" in state else state["actor_ts"])["params"]
    return (state.q_ts if hasattr(state, "q_ts") else state.actor_ts).params


def best_action(base: Any, params: Any, obs: Any) -> Any:
    """The deterministic action for a batch of (normalised) observations: the highest Q-value's
    (DQN), or the actor's most likely action, clipped to the action space."""
    if getattr(base, "actor", None) is None:
        return jnp.argmax(base.agent.apply(params, obs), axis=-1)
    action = base.actor.apply(params, obs, method=_mode)
    if base.discrete:
        return action
    space = base.env.action_space(base.env_params)
    return jnp.clip(action, space.low, space.high)


def act_fn(algo: Any, state: Any) -> Any:
    """The deterministic policy of `state` for one observation (rejax's evaluate)."""

    def act(obs: Any, rng: Any) -> Any:
        if algo.normalize_observations:
            obs = algo.normalize_obs(state.obs_rms_state, obs)
        return best_action(algo, policy_params(state), jnp.expand_dims(obs, 0))[0]

    return act


def make_chunk(episodes: int) -> Any:
    """chunk(algo, state, iterations, eval_key) for one run: train `iterations` rollout/update rounds
    (0 for a run that stopped: its state is left as it was), then evaluate `episodes` episodes with
    the deterministic policy. vmapped over runs and compiled once per group."""
    from rejax.evaluate import evaluate

    def chunk(algo: Any, state: Any, iterations: Any, eval_key: Any) -> tuple[Any, Any, Any]:
        state = jax.lax.fori_loop(0, iterations, lambda _, ts: algo.train_iteration(ts), state)
        lengths, returns = evaluate(
            act_fn(algo, state),
            eval_key,
            algo.env,
            algo.env_params,
            episodes,
            algo.env_params.max_steps_in_episode,
        )
        return state, returns, lengths

    return jax.vmap(chunk, in_axes=(0, 0, 0, 0))


# ---------------------------------------------------------------- per-run state <-> plain dicts


def run_slice(state: Any, i: int) -> dict[str, Any]:
    """Run `i`'s state as a nested dict of arrays (flax's state dict): the form saved, kept in memory
    for the next generation and restored from, whichever rejax state class produced it."""
    return serialization.to_state_dict(jax.tree.map(lambda x: x[i], state))


def stack_slices(template: Any, slices: Sequence[Mapping[str, Any]]) -> Any:
    """A batched state whose run i is `slices[i]` (an array copy), in `template`'s structure."""
    stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *slices)
    return serialization.from_state_dict(template, stacked)


def to_bytes(slice_: Mapping[str, Any], settings: Mapping[str, Any]) -> bytes:
    """A saved run: {"state": its state dict, "settings": JSON of the settings that built it}."""
    return serialization.msgpack_serialize(
        {"state": jax.tree.map(np.asarray, dict(slice_)), "settings": json.dumps(dict(settings))}
    )


def from_bytes(data: bytes) -> dict[str, Any]:
    """{"state": nested dict of arrays, "settings": dict}."""
    saved = serialization.msgpack_restore(data)
    return {"state": saved["state"], "settings": json.loads(saved["settings"])}
