"""The package import and `rlsweep --help` must not pull in heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "jax", "ray", "optuna", "stable_baselines3", "sqlalchemy", "matplotlib", "pandas")


def _loaded_after(code: str) -> set[str]:
    # The answer goes to stderr: the help text itself is printed on stdout.
    probe = f"import sys\n{code}\nprint(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})), file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stderr.strip().splitlines()[-1:]
    out = out[0] if out else ""
    return {m.split(".")[0] for m in out.split(",") if m}


def test_import_rlsweep_is_light() -> None:
    assert _loaded_after("import rlsweep") == set()


def test_help_is_light() -> None:
    code = "from rlsweep.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _loaded_after(code) == set()
    for command in ("run", "top", "render", "report", "worker"):
        code = f"from rlsweep.cli import main\ntry:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass"
        assert _loaded_after(code) == set(), command
