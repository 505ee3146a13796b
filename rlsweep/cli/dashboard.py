"""`rlsweep dashboard STUDY`: optuna-dashboard on the study's storage, bound to 127.0.0.1 unless --host says otherwise."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, storage_url


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("dashboard", help="serve optuna-dashboard for the study (127.0.0.1)", description=__doc__)
    add_study_args(p)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    return p


def execute(args: argparse.Namespace) -> int:
    import sys

    from rlsweep.errors import ConfigError
    from rlsweep.storage import open_optuna_storage, redact

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise ConfigError("the dashboard needs optuna-dashboard: pip install 'rlsweep[report]'") from None
    url = storage_url(args, args.study)
    storage = open_optuna_storage(url, create=False)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: binding to {args.host} makes the dashboard (and write access to the study) reachable "
            "from other machines; it has no authentication",
            file=sys.stderr,
        )
    print(f"optuna-dashboard for {redact(url)} (study '{args.study}') at http://{args.host}:{args.port}/dashboard ; Ctrl-C stops it", flush=True)
    run_server(storage, host=args.host, port=args.port)
    return 0
