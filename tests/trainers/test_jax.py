"""The batched JAX trainer end to end: four CartPole runs trained as one vmapped batch through the real
worker on a SQLite file, one of them pruned mid-way by a gate; every run has its own curve, decision
and saved parameters, and `rlsweep top` and `render` work on the study. Tiny shapes: one compilation
of a few seconds (JAX's persistent cache makes a second CI run cheaper)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rejax")

from optuna.trial import TrialState  # noqa: E402

from rlsweep.cli import main  # noqa: E402
from rlsweep.config import load_sweep  # noqa: E402
from rlsweep.errors import ConfigError  # noqa: E402
from tests.conftest import run_in_process  # noqa: E402

TINY = {"num_envs": 4, "num_steps": 32, "num_epochs": 2, "num_minibatches": 2, "hidden_layer_sizes": [32, 32]}
LRS = [1e-6, 3e-3, 2e-3, 5e-3]


def jax_sweep(name: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "study": name,
        "trainer": {
            "kind": "jax",
            "algo": "ppo",
            "env": "CartPole-v1",
            "timesteps": 4096,
            "batch": 4,
            **TINY,
        },
        "eval": {"every": 1024, "episodes": 4},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "grid", "seeds": 1},
        "params": {"learning_rate": {"choice": LRS}},
        "storage": f"sqlite:///{tmp_path}/runs/{name}/study.db",
        "artifacts": str(tmp_path / "runs" / name / "artifacts"),
        **extra,
    }


def gymnasium_returns(
    config: dict[str, Any], model: str, episodes: int, *, batched: bool = False, check: Any = None
) -> list[float]:
    """Returns of `episodes` episodes (seeds 0, 1, ...) a saved JAX policy plays on the Gymnasium
    twin of its environment; `batched` feeds it one observation as a batch of one, `check(action)`
    looks at every action."""
    from rlsweep.trainers.jax import JaxTrainer

    policy = JaxTrainer.load_policy(config, model)
    env = JaxTrainer.make_env(config, 0)
    discrete = hasattr(env.action_space, "n")
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            action = policy(obs[None])[0] if batched else policy(obs)
            if check is not None:
                check(action)
            obs, reward, term, trunc, _ = env.step(int(action) if discrete else action)
            total += float(reward)
            done = term or trunc
        returns.append(total)
    return returns


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp_path = tmp_path_factory.mktemp("jax")
    # 1e-6 barely moves its initial policy (measured: 17-36 at every evaluation, the others 140 or
    # more from step 2048 on): the gate prunes it at step 2048, the others go on
    sweep = jax_sweep(
        "cartpole-jax", tmp_path, stop=[{"metric": "eval/mean_return", "after": 2048, "min": 80}]
    )
    return tmp_path, run_in_process(sweep)


@pytest.mark.slow
def test_a_batch_trains_together_and_each_run_ends_alone(trained: tuple[Path, Any]) -> None:
    _, handle = trained
    trials = {handle.decode(t.params)["learning_rate"]: t for t in handle.study.get_trials(deepcopy=False)}
    assert sorted(trials) == sorted(LRS)
    assert len({t.user_attrs["batch"]["id"] for t in trials.values()}) == 1  # one batch of four
    info = trials[3e-3].user_attrs["batch"]
    assert info["size"] == 4 and info["device"] == "cpu" and info["compile_s"] > 0 and info["train_s"] > 0
    pruned = trials[1e-6]
    assert pruned.state == TrialState.PRUNED
    assert pruned.user_attrs["stop_reason"].startswith("gate: eval/mean_return = ")
    assert sorted(pruned.intermediate_values) == [1024, 2048]  # masked out after its prune
    for lr in (3e-3, 2e-3, 5e-3):
        t = trials[lr]
        assert t.state == TrialState.COMPLETE
        assert sorted(t.intermediate_values) == [1024, 2048, 3072, 4096]
        assert t.value == t.intermediate_values[4096]
        metrics = {m["name"] for m in handle.metrics([t.number], None)}
        assert {"eval/mean_return", "eval/std_return", "eval/mean_length", "time/batch_fps"} <= metrics
    for t in trials.values():
        model = Path(t.user_attrs["model"])
        assert model.name == "model.msgpack" and model.parent == handle.artifact_dir(t.number)
        assert not list(model.parent.glob(".*tmp*"))  # written under a temporary name, then renamed
    # the best run learned something: CartPole's random policy scores about 20
    assert max(t.value for t in trials.values() if t.value is not None) > 100


@pytest.mark.slow
def test_saved_parameters_replay_their_evaluation_on_gymnasium(trained: tuple[Path, Any]) -> None:
    _, handle = trained
    best = max(
        (t for t in handle.study.get_trials(deepcopy=False) if t.value is not None), key=lambda t: t.value
    )
    returns = gymnasium_returns(handle.sweep.trainer, best.user_attrs["model"], 3, batched=True)
    # the same network on Gymnasium's CartPole plays about as well as gymnax's evaluation measured
    assert sum(returns) / 3 > 0.5 * best.value


@pytest.mark.slow
def test_top_and_render_work_on_a_jax_study(
    trained: tuple[Path, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, _ = trained
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert main(["top", "cartpole-jax", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert [r["values"]["learning_rate"] for r in ranked][-1] == 1e-6  # the pruned run ranks last
    assert main(["render", "cartpole-jax", "--top", "1", "--workers", "1", "--max-steps", "50"]) == 0
    gifs = list((tmp_path / "runs" / "cartpole-jax" / "render").rglob("*.gif"))
    assert len(gifs) == 1 and gifs[0].stat().st_size > 0


def test_bad_settings_are_exit_2_errors(tmp_path: Path) -> None:
    cases = [
        (
            {"algo": "ppp"},
            "trainer.algo: unknown algo 'ppp' (did you mean 'ppo'?); the jax trainer trains: ppo, dqn, pqn, sac, td3",
        ),
        (
            {"env": "CartPole-v2"},
            "trainer.env: unknown gymnax environment 'CartPole-v2' (did you mean 'CartPole-v1'?); known: CartPole-v1, Pendulum-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0, ...",
        ),
        (
            {"num_minibatches": 5},
            "trainer.num_minibatches: num_envs * num_steps = 128 does not divide into 5 minibatches; choose num_minibatches among its divisors",
        ),
        ({"n_steps": 64}, "trainer.n_steps: unknown setting 'n_steps' (did you mean 'num_steps'?)"),
        ({"batch": 0}, "trainer.batch: must be a whole number >= 1, got 0"),
        (
            {"hidden_layer_sizes": [64, 0]},
            "trainer.hidden_layer_sizes: must be a list of positive whole numbers, e.g. [64, 64], got [64, 0]",
        ),
    ]
    for change, message in cases:
        sweep = jax_sweep("bad", tmp_path)
        sweep["trainer"].update(change)
        with pytest.raises(ConfigError) as err:
            load_sweep(sweep, file="sweep.yaml")
        assert str(err.value) == f"sweep.yaml: {message}"
    sweep = jax_sweep("bad", tmp_path)
    sweep["params"]["clip_range"] = 0.2
    with pytest.raises(ConfigError) as err:
        load_sweep(sweep, file="sweep.yaml")
    assert (
        str(err.value)
        == "sweep.yaml: params.clip_range: the jax trainer has no hyperparameter 'clip_range' (did you mean 'clip_eps'?)"
    )


def test_runs_differing_in_a_shape_setting_fall_in_different_groups() -> None:
    from rlsweep.trainers.jax import JaxTrainer

    config = {"kind": "jax", "algo": "ppo", "env": "CartPole-v1", "timesteps": 1000, **TINY}
    same = JaxTrainer.batch_group(config, {"learning_rate": 1e-3, "gamma": 0.9})
    assert same == JaxTrainer.batch_group(config, {"learning_rate": 3e-4, "gamma": 0.99, "ent_coef": 0.1})
    assert same != JaxTrainer.batch_group(config, {"learning_rate": 1e-3, "num_steps": 64})
    assert same != JaxTrainer.batch_group(config, {"hidden_layer_sizes": [16]})
    assert JaxTrainer.batch_size_for(config) == 64 and JaxTrainer.batch_size_for({**config, "batch": 8}) == 8


def test_minibatch_permutations_are_uniform_and_cover_every_sample() -> None:
    import itertools

    import jax
    import numpy as np
    from rejax import PPO

    from rlsweep.trainers.jax import build

    for n in (1, 2, 7, 64, 2048, 3000):
        assert sorted(np.asarray(build.permutation(jax.random.PRNGKey(n), n)).tolist()) == list(range(n))
    # every ordering of 5 equally often: 20,000 draws, about 167 each (sd 13); a bias from ties in the
    # random keys, or a round that undid the last, would put some far outside 100-240
    drawn = np.asarray(
        jax.vmap(lambda k: build.permutation(k, 5))(jax.random.split(jax.random.PRNGKey(0), 20_000))
    )
    counts = {p: 0 for p in itertools.permutations(range(5))}
    for row in drawn.tolist():
        counts[tuple(row)] += 1
    assert 100 < min(counts.values()) and max(counts.values()) < 240, sorted(counts.values())
    # PPO's minibatches of one epoch hold each of the rollout's samples once
    algo = build.fast_shuffle(PPO).create(env="CartPole-v1", num_envs=4, num_steps=32, num_minibatches=8)
    rollout = jax.numpy.arange(128).reshape(32, 4)
    minibatches = np.asarray(algo.shuffle_and_split(rollout, jax.random.PRNGKey(1)))
    assert minibatches.shape == (8, 16) and sorted(minibatches.ravel().tolist()) == list(range(128))
    assert minibatches.ravel().tolist() != list(range(128))


def test_a_local_worker_keeps_xla_to_its_cpus() -> None:
    """With the launcher's RLSWEEP_WORKER_CPUS set, every thread of the worker, XLA's thread pool
    included, may run only on those CPUs (two workers with a pool each over both cores trained 1.4
    times slower)."""
    import os
    import subprocess
    import sys

    cpu = max(os.sched_getaffinity(0))
    code = (
        "import pathlib\n"
        "from rlsweep.trainers.jax import build\n"
        "import jax.numpy as jnp\n"
        "jnp.ones((256, 256)).dot(jnp.ones((256, 256))).block_until_ready()\n"
        "tasks = list(pathlib.Path('/proc/self/task').iterdir())\n"
        "allowed = {l.split(':')[1].strip() for t in tasks for l in (t / 'status').read_text().splitlines() if l.startswith('Cpus_allowed_list')}\n"
        "print(build.CPUS, len(tasks), sorted(allowed))\n"
    )
    env = {**os.environ, "RLSWEEP_WORKER_CPUS": str(cpu)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cpus, threads, allowed = out.stdout.strip().rsplit("\n", 1)[-1].split(" ", 2)
    assert cpus == f"[{cpu}]" and int(threads) > 1 and allowed == f"['{cpu}']", out.stdout


@pytest.mark.slow
def test_checkpoint_every_saves_states_that_render_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # checkpoint.every 1500 with evaluations every 1024 steps: a checkpoint is taken at the first
    # evaluation at or after 1500 (2048) and at or after 3000 (3072); the run ends at 4096.
    sweep = jax_sweep("jax-ckpt", tmp_path, checkpoint={"every": 1500})
    sweep["params"] = {"learning_rate": 3e-3}
    handle = run_in_process(sweep)
    (trial,) = handle.study.get_trials(deepcopy=False)
    saved = [Path(p) for p in trial.user_attrs["checkpoints"]]
    assert [p.name for p in saved] == ["step_2048.msgpack", "step_3072.msgpack"]
    assert all(p.is_file() and p.parent == handle.artifact_dir(trial.number) / "checkpoints" for p in saved)
    from rlsweep.trainers.jax import JaxTrainer, build

    # a checkpoint is a whole state: it plays, and a run can continue from it (the worker resumes a
    # lost run from its last one)
    state = build.from_bytes(saved[0].read_bytes())["state"]
    assert int(state["global_step"]) == 2048
    policy = JaxTrainer.load_policy(handle.sweep.trainer, saved[0])
    assert int(policy(JaxTrainer.make_env(handle.sweep.trainer, 0).reset(seed=0)[0])) in (0, 1)
    # what the worker does for a lost run: the rest of the budget from the last checkpoint
    from rlsweep.trainers._base import Decision, RunContext

    recorded: dict[str, Any] = {}
    config = dict(handle.sweep.trainer)
    resumed = RunContext(
        "jax-ckpt", 99, config, {"learning_rate": 3e-3}, {}, 0, 1024, 1024, 4, "eval/mean_return", tmp_path / "99",
        lambda step, metrics: Decision.CONTINUE, start_checkpoint=saved[1], start_step=3072,
        record=lambda key, value: recorded.__setitem__(key, value),
    )  # fmt: skip
    JaxTrainer(config).train_batch([resumed])
    assert recorded["start_from"] == "file"
    assert int(build.from_bytes(Path(recorded["model"]).read_bytes())["state"]["global_step"]) == 4096
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    args = ["render", "jax-ckpt", "--run", str(trial.number), "--checkpoints", "--workers", "1", "--max-steps", "20"]
    assert main(args) == 0, capsys.readouterr()
    gifs = sorted(p.name for p in (tmp_path / "runs" / "jax-ckpt" / "render").rglob("*.gif"))
    assert gifs == ["step-000002048.gif", "step-000003072.gif", "step-000004096-final.gif"], gifs


COMPILED_FROM_SHAPES = """
import fcntl, json, sys
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
from rlsweep.trainers.jax import build
from rlsweep.trainers.jax.batch import _chunk_args, _take, compile_cache
from rlsweep.trainers.jax.settings import algo_of, algo_settings

config, lrs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cache = compile_cache(config)
values = [algo_settings(config, {"learning_rate": lr}) for lr in lrs]
grp = build.Group(config, values[0], 2, "first", cache)
algos = build.stack_algos(grp.base, values, algo_of(config))
out = {"idle": grp.compile_first(algos, 4)}  # nobody compiles the initialisation: nothing to gain
lock = build._lock_path(cache, "first/init")
lock.parent.mkdir(parents=True, exist_ok=True)
with lock.open("a") as held:  # another worker compiling the initialisation
    fcntl.flock(held, fcntl.LOCK_EX)
    out["busy"] = grp.compile_first(algos, 4)
state = grp.init([0, 1, 2], values)
lanes = np.array([0, 1, 2, 0])
keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(3))
args = _chunk_args(_take(algos, lanes), _take(state, lanes), np.ones(4, int), keys, np.zeros(3, int), lanes)
jax.block_until_ready(args)
out["again"] = grp.program(*args)[1]
entries = sorted(p.name for p in Path(cache).iterdir() if p.name.endswith("-cache"))
other = build.Group(config, values[0], 2, "second", cache)  # another worker, from arrays
other.program(*args)
out["new_entries"] = len(set(p.name for p in Path(cache).iterdir() if p.name.endswith("-cache")) - set(entries))
out["programs"] = len(grp.programs)
print(json.dumps(out))
"""


def test_a_chunk_compiled_from_shapes_is_the_one_a_fresh_batch_uses(tmp_path: Path) -> None:
    """While another worker compiles a group's initialisation, a worker compiles the chunk from
    shapes alone (`Group.compile_first`). That program must be the one the fresh batch's arrays need:
    no second compilation in this worker, and the same entry of the persistent cache, which another
    worker then loads instead of compiling. (A fresh process: JAX sets its cache folder once.)"""
    import subprocess
    import sys

    config = {"kind": "jax", "algo": "ppo", "env": "CartPole-v1", "timesteps": 1000, **TINY,
              "compile_cache": str(tmp_path / "cache")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", COMPILED_FROM_SHAPES, json.dumps(config), json.dumps(LRS[:3])],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["idle"] == 0.0 and out["busy"] > 0, out
    assert out["again"] == 0.0 and out["programs"] == 1, out
    assert out["new_entries"] == 0, out
