#!/usr/bin/env python
"""PPO on a discrete-action Gymnasium task in one file, in the style of CleanRL's ppo.py (written for
rlsweep's examples; nothing in it knows rlsweep). It has its own command line, writes TensorBoard
scalars, and saves and loads a checkpoint by path, which is all a command trainer needs:

    python examples/cleanrl_ppo.py --env-id CartPole-v1 --total-timesteps 100000 --seed 1 \
        --tb-dir runs/ppo --save-path ckpt.pt [--load-path other.pt]

With --load-path it continues the saved agent, optimiser and step count (a PBT generation continues
its own or a donor's checkpoint) with the learning rate and coefficients given on this command line.
Each update logs charts/mean_episodic_return (the last 20 episodes), charts/episodic_return per
episode, losses and charts/SPS; SIGTERM or SIGINT saves the checkpoint before exiting.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time
from collections import deque

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="CartPole-v1")
    p.add_argument("--total-timesteps", type=int, default=150_000, help="train until the step count reaches this")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=2.5e-3)
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--num-steps", type=int, default=128, help="steps per env per rollout")
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--num-minibatches", type=int, default=4)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--clip-coef", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--tb-dir", default="runs/cleanrl_ppo", help="TensorBoard folder")
    p.add_argument("--save-path", default=None, help="write the checkpoint here at the end")
    p.add_argument("--load-path", default=None, help="continue from this checkpoint")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def layer(i: int, o: int, std: float = float(np.sqrt(2))) -> nn.Linear:
    lin = nn.Linear(i, o)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.constant_(lin.bias, 0.0)
    return lin


class Agent(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer(obs_dim, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(), layer(hidden, 1, 1.0))
        self.actor = nn.Sequential(
            layer(obs_dim, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(), layer(hidden, n_actions, 0.01)
        )

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def act(self, x: torch.Tensor, action: torch.Tensor | None = None):  # type: ignore[no-untyped-def]
        dist = Categorical(logits=self.actor(x))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.critic(x)


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
    envs = gym.vector.SyncVectorEnv([lambda: gym.wrappers.RecordEpisodeStatistics(gym.make(args.env_id)) for _ in range(args.num_envs)])
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(obs_dim, int(envs.single_action_space.n), args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    global_step = 0
    if args.load_path:
        state = torch.load(args.load_path, weights_only=True)
        agent.load_state_dict(state["agent"])
        optimizer.load_state_dict(state["optimizer"])
        global_step = int(state["global_step"])
        for group in optimizer.param_groups:  # this generation's learning rate, not the donor's
            group["lr"] = args.learning_rate
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    writer = SummaryWriter(args.tb_dir)
    batch_size = args.num_envs * args.num_steps
    minibatch = batch_size // args.num_minibatches
    obs_buf = torch.zeros((args.num_steps, args.num_envs, obs_dim))
    act_buf = torch.zeros((args.num_steps, args.num_envs), dtype=torch.long)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros((args.num_steps, args.num_envs)) for _ in range(4))
    next_obs = torch.tensor(envs.reset(seed=args.seed)[0], dtype=torch.float32)
    next_done = torch.zeros(args.num_envs)
    returns_window: deque[float] = deque(maxlen=20)
    start = time.time()
    start_step = global_step
    while global_step + batch_size <= args.total_timesteps and not stop:
        for t in range(args.num_steps):
            global_step += args.num_envs
            obs_buf[t], done_buf[t] = next_obs, next_done
            with torch.no_grad():
                action, logp, _, value = agent.act(next_obs)
            act_buf[t], logp_buf[t], val_buf[t] = action, logp, value.flatten()
            obs, reward, term, trunc, info = envs.step(action.numpy())
            rew_buf[t] = torch.tensor(reward, dtype=torch.float32)
            next_obs = torch.tensor(obs, dtype=torch.float32)
            next_done = torch.tensor(np.logical_or(term, trunc), dtype=torch.float32)
            if "episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    returns_window.append(float(info["episode"]["r"][i]))
                    writer.add_scalar("charts/episodic_return", float(info["episode"]["r"][i]), global_step)
        with torch.no_grad():  # generalised advantage estimation
            next_value = agent.value(next_obs).flatten()
            adv = torch.zeros_like(rew_buf)
            last = torch.zeros(args.num_envs)
            for t in reversed(range(args.num_steps)):
                nonterminal = 1.0 - (next_done if t == args.num_steps - 1 else done_buf[t + 1])
                following = next_value if t == args.num_steps - 1 else val_buf[t + 1]
                delta = rew_buf[t] + args.gamma * following * nonterminal - val_buf[t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                adv[t] = last
            ret = adv + val_buf
        b_obs, b_act = obs_buf.reshape(-1, obs_dim), act_buf.reshape(-1)
        b_logp, b_adv, b_ret = logp_buf.reshape(-1), adv.reshape(-1), ret.reshape(-1)
        for _ in range(args.update_epochs):
            for idx in torch.randperm(batch_size).split(minibatch):
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
        if returns_window:
            writer.add_scalar("charts/mean_episodic_return", float(np.mean(returns_window)), global_step)
        writer.flush()  # readers (rlsweep, TensorBoard) see each update at once
    if args.save_path:
        save(args.save_path, agent, optimizer, global_step)
    writer.close()
    envs.close()


if __name__ == "__main__":
    main()
