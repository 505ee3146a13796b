"""The SB3 trainer on tiny budgets: validation messages, reproducibility, files, divergence,
continuing from a checkpoint (PBT), and the render helpers."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("stable_baselines3")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from rlsweep.errors import ConfigError, TrainerError  # noqa: E402
from rlsweep.trainers._base import Decision, RunContext  # noqa: E402
from rlsweep.trainers.sb3 import SB3Trainer, load_policy, make_env  # noqa: E402
from rlsweep.trainers.sb3.algos import load_for_continuing, weights_hash  # noqa: E402
from rlsweep.trainers.sb3.spaces import SPACES, default_space, merge_space  # noqa: E402

CARTPOLE = {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 1024, "n_envs": 2}
TINY_PPO = {"n_steps": 128, "batch_size": 64, "n_epochs": 2, "policy_kwargs": {"net_arch": [16, 16]}}


class Collector:
    """A report function that records every report and answers with a fixed or scripted decision."""

    def __init__(self, decisions: list[Decision] | None = None) -> None:
        self.reports: list[tuple[int, dict[str, float]]] = []
        self.decisions = decisions or []

    def __call__(self, step: int, metrics: Mapping[str, float]) -> Decision:
        self.reports.append((step, dict(metrics)))
        return self.decisions.pop(0) if self.decisions else Decision.CONTINUE

    def curve(self, name: str = "eval/mean_return") -> list[tuple[int, float]]:
        return [(s, m[name]) for s, m in self.reports if name in m]


def make_run(
    tmp_path: Path, config: dict[str, Any], hyper: dict[str, Any], **kw: Any
) -> tuple[RunContext, Collector, dict[str, Any]]:
    collector = kw.pop("collector", None) or Collector()
    records: dict[str, Any] = {}
    run = RunContext(
        study="test",
        number=0,
        config=config,
        hyperparams=hyper,
        params={},
        seed=kw.pop("seed", 3),
        budget=kw.pop("budget", config["timesteps"]),
        eval_every=kw.pop("eval_every", 512),
        eval_episodes=kw.pop("eval_episodes", 3),
        objective="eval/mean_return",
        artifact_dir=tmp_path,
        report=collector,
        record=records.__setitem__,
        **kw,
    )
    return run, collector, records


def train(
    tmp_path: Path, config: dict[str, Any], hyper: dict[str, Any], **kw: Any
) -> tuple[Collector, dict[str, Any]]:
    run, collector, records = make_run(tmp_path, config, hyper, **kw)
    SB3Trainer(config).train(run)
    return collector, records


# ------------------------------------------------------------------ validation (exit-2 errors)
def error_of(settings: dict[str, Any], hyper: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        SB3Trainer.validate({**CARTPOLE, **settings}, hyper or {}, "sweep.yaml")
    assert info.value.exit_code == 2
    return str(info.value)


ALGOS = "PPO, A2C, DQN, SAC, TD3, DDPG, TQC, QRDQN, TRPO, ARS, RecurrentPPO, CrossQ"


@pytest.mark.parametrize(
    ("settings", "hyper", "message"),
    [
        (
            {"algo": "ppo2"},
            {},
            f"sweep.yaml: trainer.algo: unknown algorithm 'ppo2' (did you mean 'PPO'?); known: {ALGOS}",
        ),
        (
            {"env": "CartPole-v9"},
            {},
            "sweep.yaml: trainer.env: unknown environment 'CartPole-v9' (did you mean 'CartPole-v1'?); "
            "for a custom env write 'your_module:CartPole-v9' so rlsweep imports the module that registers it",
        ),
        (
            {"env": "nomodule_xyz:Foo-v0"},
            {},
            "sweep.yaml: trainer.env: cannot import module 'nomodule_xyz' for env 'nomodule_xyz:Foo-v0' "
            "(No module named 'nomodule_xyz'); check the name and PYTHONPATH",
        ),
        (
            {},
            {"learnin_rate": 1e-3},
            "sweep.yaml: params.learnin_rate: PPO does not accept 'learnin_rate' (did you mean 'learning_rate'?); see PPO's constructor arguments",
        ),
        (
            {},
            {"policy_kwargs": {"net_archh": [64]}},
            "sweep.yaml: params.policy_kwargs.net_archh: ActorCriticPolicy (PPO MlpPolicy) does not accept 'net_archh' (did you mean 'net_arch'?)",
        ),
        (
            {},
            {"learning_rate": "1e-3"},
            "sweep.yaml: params.learning_rate: PPO's learning_rate takes a number, got the text '1e-3' (YAML reads 1e-3 as text; write 1.0e-3)",
        ),
        ({}, {"n_steps": 10.5}, "sweep.yaml: params.n_steps: PPO's n_steps takes a whole number, got 10.5"),
        (
            {},
            {"seed": 1},
            "sweep.yaml: params.seed: 'seed' is set by rlsweep; use the run's seed (sweep 'seed' and strategy.seeds) instead",
        ),
        (
            {"n_env": 2},
            {},
            "sweep.yaml: trainer.n_env: unknown key 'n_env' (did you mean 'n_envs'?) for the sb3 trainer",
        ),
        (
            {"policy": "MLPPolicy"},
            {},
            "sweep.yaml: trainer.policy: PPO has no policy 'MLPPolicy' (did you mean 'MlpPolicy'?); known: MlpPolicy, CnnPolicy, MultiInputPolicy",
        ),
        (
            {"algo": "DQN", "env": "Pendulum-v1"},
            {},
            "sweep.yaml: trainer.algo: DQN cannot act in Pendulum-v1's Box action space (it needs Discrete); "
            "algorithms that can: PPO, A2C, SAC, TD3, DDPG, TQC, TRPO, ARS, RecurrentPPO, CrossQ",
        ),
        (
            {"env_kwargs": {"foo": 1}},
            {},
            "sweep.yaml: trainer.env_kwargs: CartPole-v1 rejects these arguments: CartPoleEnv.__init__() got an unexpected keyword argument 'foo'",
        ),
        (
            {"kwargs": {"gamma": 0.9}},
            {"gamma": 0.95},
            "sweep.yaml: params.gamma: 'gamma' is set in both trainer.kwargs and params; keep one",
        ),
        (
            {"normalize": {"norm_ob": True}},
            {},
            "sweep.yaml: trainer.normalize.norm_ob: VecNormalize has no setting 'norm_ob' (did you mean 'norm_obs'?)",
        ),
        ({"device": "gpu"}, {}, "sweep.yaml: trainer.device: device takes auto, cpu or cuda, got 'gpu'"),
        (
            {"timesteps": 0},
            {},
            "sweep.yaml: trainer.timesteps: needs a positive whole number of environment steps, got 0",
        ),
    ],
)
def test_validation_errors(settings: dict[str, Any], hyper: dict[str, Any], message: str) -> None:
    assert error_of(settings, hyper) == message


def test_activation_names_checked() -> None:
    message = error_of({}, {"policy_kwargs": {"activation_fn": "tanhh"}})
    assert message.startswith(
        "sweep.yaml: params.policy_kwargs.activation_fn: unknown activation 'tanhh' (did you mean 'tanh'?); known: tanh, relu"
    )


def test_valid_settings_pass() -> None:
    SB3Trainer.validate(
        {**CARTPOLE, "algo": "ppo", "normalize": {"norm_reward": False}, "frame_stack": 2}, TINY_PPO, "f.yaml"
    )
    SB3Trainer.validate(
        {"kind": "sb3", "algo": "td3", "env": "Pendulum-v1", "timesteps": 100},
        {
            "action_noise": {"normal": 0.1},
            "train_freq": [1, "episode"],
            "policy_kwargs": {"activation_fn": "relu"},
        },
        "f.yaml",
    )


@pytest.mark.parametrize("algo", sorted(SPACES))
def test_default_spaces_validate(algo: str) -> None:
    """Every default space passes validation for several values of each marker."""
    from rlsweep.space import build_space

    env = "CartPole-v1" if algo in ("PPO", "A2C", "DQN") else "Pendulum-v1"
    settings = {"kind": "sb3", "algo": algo, "env": env, "timesteps": 1000}
    space = build_space(settings, default_space(algo))
    for pick in (0, -1):
        values = {
            p.name: (p.choices[pick] if p.kind == "choice" else (p.low if pick == 0 else p.high))
            for p in space.params
        }
        values = {n: int(v) if space[n].kind == "int" else v for n, v in values.items()}
        trainer, hyper = space.fill(values)
        SB3Trainer.validate(trainer, hyper, "f.yaml")


def test_ppo_space_batch_always_fits_rollout() -> None:
    space = SPACES["PPO"]
    assert max(space["batch_size"]["choice"]) <= min(space["n_steps"]["choice"])  # n_envs >= 1
    assert all(n % b == 0 for n in space["n_steps"]["choice"] for b in space["batch_size"]["choice"])


def test_default_space_errors_and_merge() -> None:
    assert default_space("ppo") == SPACES["PPO"]
    with pytest.raises(ConfigError) as info:
        default_space("tqc")
    assert (
        str(info.value)
        == "trainer.algo: no default search space for 'tqc'; defaults exist for PPO, A2C, DQN, SAC, TD3; write a params: section for other algorithms"
    )
    merged = merge_space(default_space("ppo"), {"gamma": 0.99, "policy_kwargs": {"net_arch": [32]}})
    assert merged["gamma"] == 0.99
    assert merged["policy_kwargs"] == {"net_arch": [32], "activation_fn": {"choice": ["tanh", "relu"]}}


def test_space_command_prints_pasteable_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from rlsweep.cli import main

    assert main(["space", "sac"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {"params": default_space("sac")}
    assert main(["space", "nope"]) == 2


@pytest.mark.parametrize(
    ("settings", "hyper", "updates"),
    [
        ({"algo": "PPO", "n_envs": 8}, {"n_steps": 128, "batch_size": 64, "n_epochs": 20}, 20 * 16 / 1024),
        ({"algo": "PPO"}, {}, 10 * 32 / 2048),  # SB3's defaults: 2048-step rollouts, batches of 64
        ({"algo": "PPO", "n_envs": 4}, {"n_steps": 10, "batch_size": 16}, 10 * 3 / 40),  # a last, short batch
        ({"algo": "A2C", "n_envs": 4}, {}, 1 / 20),
        ({"algo": "DQN"}, {}, 1 / 4),
        ({"algo": "SAC", "n_envs": 2}, {"train_freq": [4, "step"], "gradient_steps": 2}, 2 / 8),
        ({"algo": "SAC"}, {"gradient_steps": -1}, 1.0),
        ({"algo": "SAC"}, {"train_freq": [1, "episode"]}, None),  # steps per episode are not known
        ({"algo": "PPO"}, {"n_steps": 0}, None),
        ({"algo": "PPO", "n_envs": 0}, {}, None),
        ({"algo": "ARS"}, {}, None),
    ],
)
def test_updates_per_step_weigh_a_configuration(
    settings: dict[str, Any], hyper: dict[str, Any], updates: float | None
) -> None:
    assert SB3Trainer.updates_per_step(settings, hyper) == (None if updates is None else pytest.approx(updates))


def test_updates_per_step_assume_the_defaults_sb3_has() -> None:
    """The hook keeps its own copy of SB3's defaults (reading them would import SB3 into the
    display): for every algorithm installed here, leaving a hyperparameter unset costs what SB3's
    own default for it costs, so a new SB3 release that changes a default fails here."""
    from rlsweep.trainers.sb3.algos import ALGORITHMS, algorithm_class, constructor_defaults

    checked = []
    for name, module in ALGORITHMS.items():
        if module != "stable_baselines3" and importlib.util.find_spec(module) is None:
            continue
        defaults = constructor_defaults(algorithm_class(name))
        given = {k: defaults[k] for k in ("n_steps", "batch_size", "n_epochs", "train_freq", "gradient_steps") if k in defaults}
        settings = {"algo": name, "n_envs": 3}
        assert SB3Trainer.updates_per_step(settings, {}) == SB3Trainer.updates_per_step(settings, given), (name, given)
        checked.append(name)
    assert {"PPO", "A2C", "DQN", "SAC", "TD3", "DDPG"} <= set(checked), checked


def test_package_import_stays_light() -> None:
    code = "import sys, rlsweep.trainers, rlsweep.trainers.sb3.spaces, rlsweep.cli.space; print(any(m in sys.modules for m in ('torch', 'stable_baselines3', 'gymnasium')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------ training
def test_ppo_reports_files_and_plain_load(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from rlsweep.tensorboard import read_scalars

    collector, records = train(tmp_path, CARTPOLE, TINY_PPO, checkpoint_every=512)
    steps = [s for s, _ in collector.reports]
    assert steps == [512, 1024]
    last = collector.reports[-1][1]
    for name in (
        "eval/mean_return",
        "eval/std_return",
        "eval/mean_length",
        "train/episode_return",
        "train/fps",
        "train/value_loss",
        "train/entropy_loss",
    ):
        assert math.isfinite(last[name]), name
    assert records["model"] == str(tmp_path / "model.zip")
    assert records["best_model"] == str(tmp_path / "best_model.zip")
    assert records["checkpoints"] == [
        str(tmp_path / "checkpoints" / "step_512.zip"),
        str(tmp_path / "checkpoints" / "step_1024.zip"),
    ]
    assert all(Path(p).exists() for p in records["checkpoints"])
    assert not list(tmp_path.rglob(".*tmp*")), "temporary files left behind"
    model = PPO.load(records["model"])  # plain SB3, no env, no custom objects
    assert model.num_timesteps == 1024
    scalars = read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["eval/mean_return"]] == [512, 1024]


def test_stop_decision_ends_promptly_and_still_saves(tmp_path: Path) -> None:
    collector = Collector([Decision.PRUNE])
    _, records = train(tmp_path, {**CARTPOLE, "timesteps": 4096}, TINY_PPO, collector=collector)
    assert [s for s, _ in collector.reports] == [512]
    assert Path(records["model"]).exists()


@pytest.mark.parametrize(
    ("config", "hyper"),
    [
        (CARTPOLE, TINY_PPO),
        (
            {"kind": "sb3", "algo": "DQN", "env": "CartPole-v1", "timesteps": 1500},
            {
                "learning_starts": 200,
                "train_freq": 4,
                "target_update_interval": 200,
                "policy_kwargs": {"net_arch": [16]},
            },
        ),
    ],
    ids=["PPO", "DQN"],
)
def test_same_seed_same_curve(tmp_path: Path, config: dict[str, Any], hyper: dict[str, Any]) -> None:
    first, _ = train(tmp_path / "a", config, hyper, eval_every=250)
    second, _ = train(tmp_path / "b", config, hyper, eval_every=250)
    other, _ = train(tmp_path / "c", config, hyper, eval_every=250, seed=4)
    assert len(first.curve()) >= 3
    assert first.curve() == second.curve()
    assert first.curve("train/episode_return") == second.curve("train/episode_return")
    assert first.curve("train/episode_return") != other.curve("train/episode_return")


# ------------------------------------------------------------------ divergence
class RewardAfter(gym.Wrapper):  # type: ignore[type-arg]
    """CartPole whose reward becomes `value` (NaN, or huge so the losses overflow) after `after` steps."""

    def __init__(self, value: float, after: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.value, self.after, self.steps = value, after, 0

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return obs, (self.value if self.steps > self.after else reward), terminated, truncated, info


if "rlsweep-test/RewardAfter-v0" not in gym.registry:
    gym.register("rlsweep-test/RewardAfter-v0", entry_point=RewardAfter)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings are the point here
@pytest.mark.parametrize(
    ("value", "expected"),
    [(float("nan"), "diverged: reward not finite at step 102"), (1e38, "diverged: ")],
    ids=["nan-reward", "overflowing-loss"],
)
def test_divergence_raises_trainer_error(tmp_path: Path, value: float, expected: str) -> None:
    config = {
        **CARTPOLE,
        "env": "rlsweep-test/RewardAfter-v0",
        "env_kwargs": {"value": value, "after": 50},
        "timesteps": 2048,
    }
    with pytest.raises(TrainerError) as info:
        train(tmp_path, config, TINY_PPO)
    assert str(info.value).startswith(expected)
    assert not (tmp_path / "model.zip").exists()


# ------------------------------------------------------------------ continuing (PBT)
def test_continue_from_checkpoint_applies_new_hyperparameters(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    config = {**CARTPOLE, "normalize": True}
    _, donor = train(tmp_path / "donor", config, {**TINY_PPO, "learning_rate": 3e-4}, checkpoint_every=512)
    checkpoint = Path(donor["checkpoints"][0])
    assert (checkpoint.parent / "step_512_vecnormalize.pkl").exists()
    new = {
        **TINY_PPO,
        "learning_rate": 1.234e-3,
        "clip_range": 0.1,
        "gamma": 0.9,
        "n_epochs": 3,
        "ent_coef": 0.01,
    }

    from rlsweep.trainers.sb3.env import make_vec_env
    from rlsweep.trainers.sb3.training import _build_model

    run, _, _ = make_run(
        tmp_path / "next", config, new, start_checkpoint=checkpoint, start_step=512, budget=512
    )
    model, venv = _build_model(run, PPO, make_vec_env(config, 2), new, "cpu")
    try:
        assert weights_hash(model) == weights_hash(PPO.load(checkpoint))
        assert [g["lr"] for g in model.policy.optimizer.param_groups] == [1.234e-3]
        assert model.lr_schedule(1.0) == 1.234e-3 and model.learning_rate == 1.234e-3
        assert (
            model.clip_range(1.0) == 0.1
            and model.gamma == 0.9
            and model.n_epochs == 3
            and model.ent_coef == 0.01
        )
        assert venv.obs_rms.count > 1  # the donor's normalisation statistics, not fresh ones
    finally:
        venv.close()

    collector, records = train(
        tmp_path / "next",
        config,
        new,
        start_checkpoint=checkpoint,
        start_step=512,
        budget=512,
        checkpoint_every=512,
    )
    assert [s for s, _ in collector.reports] == [1024]  # the lineage's step, not the run's
    assert collector.reports[-1][1]["train/learning_rate"] == pytest.approx(1.234e-3)
    assert records["checkpoints"] == [str(tmp_path / "next" / "checkpoints" / "step_1024.zip")]
    assert PPO.load(records["model"]).num_timesteps == 1024


def test_continue_off_policy_sets_every_optimizer(tmp_path: Path) -> None:
    from stable_baselines3 import SAC

    from rlsweep.trainers.sb3.env import make_vec_env
    from rlsweep.trainers.sb3.training import _build_model

    config = {"kind": "sb3", "algo": "SAC", "env": "Pendulum-v1", "timesteps": 300}
    hyper = {"learning_starts": 100, "batch_size": 32, "policy_kwargs": {"net_arch": [16]}}
    _, donor = train(tmp_path / "donor", config, hyper, eval_every=300, eval_episodes=1)
    new = {**hyper, "learning_rate": 2e-3, "tau": 0.02}
    run, _, _ = make_run(
        tmp_path / "next", config, new, start_checkpoint=Path(donor["model"]), start_step=300, budget=300
    )
    model, venv = _build_model(run, SAC, make_vec_env(config, 1), new, "cpu")
    try:
        assert weights_hash(model) == weights_hash(SAC.load(donor["model"]))
        optimizers = [model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer]
        assert [g["lr"] for opt in optimizers for g in opt.param_groups] == [2e-3] * 3
        assert model.tau == 0.02
        assert model.learning_starts >= model.num_timesteps + 32  # refill the (unsaved) replay buffer first
    finally:
        venv.close()


def test_continue_refuses_a_different_network(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    _, donor = train(tmp_path / "donor", CARTPOLE, TINY_PPO)
    from rlsweep.trainers.sb3.env import make_vec_env

    venv = make_vec_env(CARTPOLE, 2)
    try:
        with pytest.raises(TrainerError, match="list 'policy_kwargs' under strategy.fixed"):
            load_for_continuing(
                PPO, donor["model"], venv, "cpu", {"policy_kwargs": {"net_arch": [32, 32]}}, seed=1
            )
        same = load_for_continuing(
            PPO, donor["model"], venv, "cpu", {"policy_kwargs": {"net_arch": [16, 16]}}, seed=1
        )
        assert same.policy_kwargs["net_arch"] == [16, 16]
    finally:
        venv.close()


# ------------------------------------------------------------------ render helpers
def test_make_env_and_load_policy(tmp_path: Path) -> None:
    config = {**CARTPOLE, "normalize": True, "frame_stack": 3}
    _, records = train(tmp_path, config, TINY_PPO)
    assert Path(records["vecnormalize"]) == tmp_path / "vecnormalize.pkl"
    env = make_env(config, seed=7)
    assert env.observation_space.shape == (12,)
    policy = load_policy(records["best_model"], config)
    obs, _ = env.reset()
    total = 0.0
    for _ in range(20):
        action = policy(obs)
        assert env.action_space.contains(action.item())
        obs, reward, terminated, truncated, _ = env.step(action.item())
        total += float(reward)
        if terminated or truncated:
            break
    assert total > 0
    (tmp_path / "best_model_vecnormalize.pkl").unlink()
    with pytest.raises(TrainerError, match="best_model_vecnormalize.pkl is missing"):
        load_policy(records["best_model"], config)


def test_make_env_is_seeded() -> None:
    first = make_env(CARTPOLE, seed=11).reset()[0]
    second = make_env(CARTPOLE, seed=11).reset()[0]
    np.testing.assert_array_equal(first, second)


def test_sweep_without_params_uses_the_default_space_and_overrides_key_by_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rlsweep.config import load_sweep
    from rlsweep.trainers.sb3.spaces import default_space

    base = {"study": "d", "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 1000}}
    loaded = load_sweep({**base, "strategy": {"name": "tpe"}})
    assert loaded.sweep.params == default_space("ppo")
    override = {"learning_rate": {"loguniform": [1e-4, 1e-3]}}
    loaded = load_sweep({**base, "default_params": True, "params": override})
    assert loaded.sweep.params == {**default_space("ppo"), **override}
    # a grid without params is one fixed configuration over seeds, not a search
    assert load_sweep({**base, "strategy": {"name": "grid", "seeds": 3}}).space.params == []


def test_atari_preprocessing_and_frame_stack(tmp_path: Path) -> None:
    """`atari: true` applies SB3's AtariWrapper (84x84 grey frames), `frame_stack: 4` stacks them; a
    CNN policy trains a few hundred steps on Pong and the saved model loads with plain SB3."""
    pytest.importorskip("ale_py")
    from stable_baselines3 import PPO

    config = {"kind": "sb3", "algo": "PPO", "env": "ALE/Pong-v5", "timesteps": 256, "n_envs": 1,
              "atari": True, "frame_stack": 4, "policy": "CnnPolicy"}  # fmt: skip
    SB3Trainer.validate(config, {}, "pong.yaml")
    env = make_env(config, 0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    env.close()
    hyper = {"n_steps": 128, "batch_size": 64, "n_epochs": 1}
    collector, records = train(tmp_path, config, hyper, eval_episodes=1, eval_every=256)
    assert [s for s, _ in collector.reports] == [256]
    model = PPO.load(records["model"])
    assert model.observation_space.shape == (4, 84, 84)  # SB3 transposes images for the CNN
