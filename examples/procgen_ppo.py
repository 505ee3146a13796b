#!/usr/bin/env python
"""PPO on a Procgen game in one file (CNN policy, in the style of CleanRL's ppo_procgen.py; written
for rlsweep's examples and nothing in it knows rlsweep). It runs in Procgen's own environment
(procgen-mirror needs numpy<2 and gym 0.26: `bash scripts/procgen-env.sh` makes .procgen-venv):

    .procgen-venv/bin/python examples/procgen_ppo.py --env-name bigfish --num-levels 200 \
        --start-level 0 --distribution-mode easy --total-timesteps 200000 --tb-dir runs/pg

It trains on levels [start_level, start_level + num_levels) and every --eval-every steps plays
--eval-episodes episodes on those training levels and on unseen ones (from start_level +
num_levels on), logging eval/train_return, eval/test_return and eval/generalisation_gap (train
minus test) to TensorBoard, beside charts/mean_episodic_return (the last 20 training episodes).
--save-path / --load-path save and continue agent, optimiser and step count; SIGTERM or SIGINT
saves the checkpoint before exiting.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time
from collections import deque
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from procgen import ProcgenEnv
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-name", default="bigfish")
    p.add_argument("--num-levels", type=int, default=200, help="training levels (0: unlimited)")
    p.add_argument("--start-level", type=int, default=0)
    p.add_argument("--distribution-mode", default="easy", choices=["easy", "hard", "extreme", "memory", "exploration"])
    p.add_argument("--total-timesteps", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=128, help="steps per env per rollout")
    p.add_argument("--gamma", type=float, default=0.999)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--num-minibatches", type=int, default=8)
    p.add_argument("--update-epochs", type=int, default=3)
    p.add_argument("--clip-coef", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--eval-every", type=int, default=16384, help="environment steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=16, help="episodes per evaluation, on each level set")
    p.add_argument("--tb-dir", default="runs/procgen_ppo", help="TensorBoard folder")
    p.add_argument("--save-path", default=None, help="write the checkpoint here at the end")
    p.add_argument("--load-path", default=None, help="continue from this checkpoint")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def make_env(args: argparse.Namespace, n: int, start: int, levels: int, seed: int) -> Any:
    return ProcgenEnv(
        num_envs=n, env_name=args.env_name, num_levels=levels, start_level=start,
        distribution_mode=args.distribution_mode, rand_seed=seed,
    )  # fmt: skip


def frames(obs: dict[str, np.ndarray]) -> torch.Tensor:
    """(n, 64, 64, 3) uint8 frames -> (n, 3, 64, 64) floats in [0, 1]."""
    return torch.tensor(obs["rgb"], dtype=torch.float32).permute(0, 3, 1, 2) / 255.0


def layer(module: nn.Module, std: float = float(np.sqrt(2))) -> nn.Module:
    nn.init.orthogonal_(module.weight, std)  # type: ignore[arg-type]
    nn.init.constant_(module.bias, 0.0)  # type: ignore[arg-type]
    return module


class Agent(nn.Module):
    """A small CNN (three convolutions, one dense layer) shared by the policy and value heads."""

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            layer(nn.Conv2d(3, 16, 8, stride=4)), nn.ReLU(),
            layer(nn.Conv2d(16, 32, 4, stride=2)), nn.ReLU(),
            layer(nn.Conv2d(32, 32, 3, stride=1)), nn.ReLU(),
            nn.Flatten(), layer(nn.Linear(32 * 4 * 4, 256)), nn.ReLU(),
        )  # fmt: skip
        self.actor = layer(nn.Linear(256, n_actions), 0.01)
        self.critic = layer(nn.Linear(256, 1), 1.0)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.body(x))

    def act(self, x: torch.Tensor, action: torch.Tensor | None = None):  # type: ignore[no-untyped-def]
        hidden = self.body(x)
        dist = Categorical(logits=self.actor(hidden))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.critic(hidden)


class Evaluation:
    """Episodes on a level set, played by the current policy (sampling its actions). Procgen's
    environments reset themselves and ignore a reset after the first, so each evaluation goes on
    from where the last stopped and drops every episode that began before it."""

    def __init__(self, env: Any) -> None:
        self.env, self.obs = env, env.reset()

    def mean_return(self, agent: Agent, episodes: int) -> float:
        returns: list[float] = []
        running, stale = np.zeros(self.env.num_envs), np.ones(self.env.num_envs, dtype=bool)
        while len(returns) < episodes:
            with torch.no_grad():
                action, _, _, _ = agent.act(frames(self.obs))
            self.obs, reward, done, _ = self.env.step(action.numpy())
            running += reward
            for i in np.flatnonzero(done):
                if not stale[i]:
                    returns.append(float(running[i]))
                running[i], stale[i] = 0.0, False
        return float(np.mean(returns[:episodes]))


def save(path: str, agent: Agent, optimizer: torch.optim.Optimizer, step: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"  # a reader never sees half a checkpoint
    torch.save({"agent": agent.state_dict(), "optimizer": optimizer.state_dict(), "global_step": step}, tmp)
    os.replace(tmp, path)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    envs = make_env(args, args.num_envs, args.start_level, args.num_levels, args.seed)
    train_levels = Evaluation(make_env(args, 8, args.start_level, args.num_levels, args.seed + 1))
    unseen = Evaluation(make_env(args, 8, args.start_level + max(args.num_levels, 1), 100_000, args.seed + 2))
    agent = Agent(int(envs.action_space.n))
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    global_step = 0
    if args.load_path:
        state = torch.load(args.load_path, weights_only=True)
        agent.load_state_dict(state["agent"])
        optimizer.load_state_dict(state["optimizer"])
        global_step = int(state["global_step"])
        for group in optimizer.param_groups:  # this run's learning rate, not the checkpoint's
            group["lr"] = args.learning_rate
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    writer = SummaryWriter(args.tb_dir)
    n, steps = args.num_envs, args.num_steps
    batch_size = n * steps
    obs_buf = torch.zeros((steps, n, 3, 64, 64))
    act_buf = torch.zeros((steps, n), dtype=torch.long)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros((steps, n)) for _ in range(4))
    next_obs, next_done = frames(envs.reset()), torch.zeros(n)
    running, window = np.zeros(n), deque(maxlen=20)
    next_eval = (global_step // args.eval_every + 1) * args.eval_every
    start, start_step = time.time(), global_step
    while global_step + batch_size <= args.total_timesteps and not stop:
        for t in range(steps):
            global_step += n
            obs_buf[t], done_buf[t] = next_obs, next_done
            with torch.no_grad():
                action, logp, _, value = agent.act(next_obs)
            act_buf[t], logp_buf[t], val_buf[t] = action, logp, value.flatten()
            obs, reward, done, _ = envs.step(action.numpy())
            rew_buf[t] = torch.tensor(reward, dtype=torch.float32)
            next_obs, next_done = frames(obs), torch.tensor(done, dtype=torch.float32)
            running += reward
            for i in np.flatnonzero(done):
                window.append(float(running[i]))
                running[i] = 0.0
        with torch.no_grad():  # generalised advantage estimation
            next_value = agent.value(next_obs).flatten()
            adv, last = torch.zeros_like(rew_buf), torch.zeros(n)
            for t in reversed(range(steps)):
                nonterminal = 1.0 - (next_done if t == steps - 1 else done_buf[t + 1])
                following = next_value if t == steps - 1 else val_buf[t + 1]
                delta = rew_buf[t] + args.gamma * following * nonterminal - val_buf[t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                adv[t] = last
            ret = adv + val_buf
        b_obs, b_act = obs_buf.reshape(-1, 3, 64, 64), act_buf.reshape(-1)
        b_logp, b_adv, b_ret = logp_buf.reshape(-1), adv.reshape(-1), ret.reshape(-1)
        for _ in range(args.update_epochs):
            for idx in torch.randperm(batch_size).split(batch_size // args.num_minibatches):
                _, logp, entropy, value = agent.act(b_obs[idx], b_act[idx])
                ratio = (logp - b_logp[idx]).exp()
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                v_loss = 0.5 * ((value.flatten() - b_ret[idx]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("charts/SPS", (global_step - start_step) / (time.time() - start), global_step)
        if window:
            writer.add_scalar("charts/mean_episodic_return", float(np.mean(window)), global_step)
        if global_step >= next_eval:
            train_return = train_levels.mean_return(agent, args.eval_episodes)
            test_return = unseen.mean_return(agent, args.eval_episodes)
            writer.add_scalar("eval/train_return", train_return, global_step)
            writer.add_scalar("eval/test_return", test_return, global_step)
            writer.add_scalar("eval/generalisation_gap", train_return - test_return, global_step)
            next_eval = (global_step // args.eval_every + 1) * args.eval_every
        writer.flush()  # readers (rlsweep, TensorBoard) see each update at once
    if args.save_path:
        save(args.save_path, agent, optimizer, global_step)
    writer.close()
    for env in (envs, train_levels.env, unseen.env):
        env.close()


if __name__ == "__main__":
    main()
