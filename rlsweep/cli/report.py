"""`rlsweep report STUDY [--open]`: a static HTML report in runs/<study>/report/ (index.html plus its
images; relative links only, so the folder opens offline and can be copied anywhere)."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="static HTML report: curves, importance, lineage, gallery, mature list",
        description=__doc__,
    )
    add_study_args(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<study>/report)")
    p.add_argument("-n", "--top", type=int, default=10, help="configurations in the top table (default 10)")
    p.add_argument("--open", action="store_true", help="open the report in a web browser when written")
    return p


def execute(args: argparse.Namespace) -> int:
    import time

    from rlsweep.api import Study
    from rlsweep.errors import ConfigError

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, got {args.top}")
    t0 = time.perf_counter()
    index = Study(open_handle(args, trainer_checks=False)).report(args.out, top=args.top)
    print(f"wrote {index} in {time.perf_counter() - t0:.1f}s")
    if args.open:
        open_in_browser(index)
    return 0


def open_in_browser(index: Any) -> None:
    """Best effort: a headless machine has no browser, and that is not an error."""
    import webbrowser

    try:
        opened = webbrowser.open(index.resolve().as_uri())
    except Exception as exc:  # webbrowser can raise on a broken $BROWSER; the report is written anyway
        opened = False
        print(f"could not open a browser ({type(exc).__name__}: {exc})")
    if not opened:
        print(f"no browser to open here; open {index.resolve()} by hand")
