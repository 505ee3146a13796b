"""`rlsweep space ALGO`: print an algorithm's default search space as a `params:` section to paste."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("space", help="print the default search space of an algorithm", description=__doc__)
    p.add_argument("algo", help="algorithm with a default space: ppo, a2c, dqn, sac or td3")
    return p


def execute(args: argparse.Namespace) -> int:
    from rlsweep.trainers import QUICKSTART_KIND, get_trainer_class

    # the quick-start trainer is the one whose algorithms have default spaces
    space = get_trainer_class(QUICKSTART_KIND).default_space({"kind": QUICKSTART_KIND, "algo": args.algo}) or {}
    print(f"# default search space for {args.algo.upper()}; paste under a sweep file, change or drop any key")
    print("params:")
    print(to_yaml(space, indent=1), end="")
    return 0


def to_yaml(tree: dict[str, Any], indent: int = 0) -> str:
    """Sections as blocks, markers and values on one line each (`lr: {loguniform: [1.0e-05, 0.003]}`),
    so the output reads like a hand-written sweep file."""
    import yaml

    from rlsweep.space import is_marker

    pad = "  " * indent
    lines = []
    for key, value in tree.items():
        if (
            isinstance(value, dict)
            and not is_marker(value)
            and any(isinstance(v, dict) for v in value.values())
        ):
            lines.append(f"{pad}{key}:\n{to_yaml(value, indent + 1)}")
        else:
            flow = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
            flow = flow.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"{pad}{key}: {flow}\n")
    return "".join(lines)
