"""`rlsweep import FORMAT FILE -o sweep.yaml`: another tool's sweep or hyperparameters as a sweep file.

  rlsweep import ml-agents trainer_config.yaml -o sweep.yaml --command "mlagents-learn {config_file} --run-id={run_id}"
  rlsweep import policy-params agent.json --env env.json -o sweep.yaml
  rlsweep import zoo hyperparams/ppo.yml --env CartPole-v1 -o sweep.yaml
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "import", help="write a sweep file from ML-Agents, policy-params or rl-zoo3 files", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("format", choices=("ml-agents", "policy-params", "zoo"))
    p.add_argument("file", help="the trainer config (ml-agents), agent JSON (policy-params) or hyperparameters YAML (zoo)")
    p.add_argument("-o", "--output", required=True, help="the sweep file to write")
    p.add_argument("--env", help="policy-params: the environment JSON; zoo: the env id of the entry")
    p.add_argument("--command", help="ml-agents: the command line, with {config_file} and {run_id}")
    p.add_argument("--algo", help="policy-params, zoo: the algorithm (default: from the file)")
    p.add_argument("--timesteps", type=int, help="ml-agents: steps per run (default: the config's max_steps)")
    p.add_argument("--study", help="the study's name (default: the output file's name)")
    return p


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from rlsweep.errors import ConfigError

    study = args.study or Path(args.output).stem
    notes: list[str] = []
    if args.format == "ml-agents":
        from rlsweep.importers.mlagents import import_mlagents

        sweep = import_mlagents(args.file, command=args.command, study=study, timesteps=args.timesteps)
    elif args.format == "policy-params":
        from rlsweep.importers.policy_params import import_policy_params

        if not args.env:
            raise ConfigError("policy-params needs --env env.json (the environment id and step budget)", key="--env")
        sweep = import_policy_params(args.file, args.env, study=study, algo=args.algo)
    else:
        from rlsweep.importers.zoo import import_zoo

        if not args.env:
            raise ConfigError("zoo needs --env ENV_ID: the entry of the hyperparameters file to import", key="--env")
        sweep, notes = import_zoo(args.file, env=args.env, study=study, algo=args.algo)
    Path(args.output).write_text(yaml.safe_dump(sweep, sort_keys=False))
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {args.output}: study '{study}'; 'rlsweep grid {args.output}' lists its runs")
    return 0
