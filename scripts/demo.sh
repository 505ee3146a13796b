#!/usr/bin/env bash
# Set everything up and run the demo: a real PPO sweep on CartPole-v1, SQLite storage, 2 local workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh sb3,samplers
. .venv/bin/activate
export SDL_VIDEODRIVER=dummy
rlsweep run examples/cartpole-ppo.yaml "$@"
rlsweep top cartpole-ppo -n 5
