"""The package import and `rlsweep --help` must not pull in heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_commands_that_read_results_leave_the_trainer_unimported(tmp_path: Path) -> None:
    # An SB3 study: its sweep was checked whole when the study was made, so `status`, `top` and
    # `export` (and `lineage`, `report`) read it back without the trainer's checks, which import SB3 and torch
    # (2-3 s of each command). `render` and the other commands that train or load policies keep them.
    from rlsweep.config import load_sweep
    from rlsweep.study import StudyHandle

    root = Path(__file__).resolve().parents[1]
    url = f"sqlite:///{tmp_path}/s.db"
    StudyHandle.create_or_load(load_sweep(root / "examples" / "cartpole-ppo.yaml"), url)
    for command in (["status"], ["top"], ["export", "--format", "csv", "--out", str(tmp_path / "out")]):
        code = (
            "from rlsweep.cli import main\n"
            f"code = main([{command[0]!r}, 'cartpole-ppo', '--storage', {url!r}, *{command[1:]!r}])\n"
            "assert code in (0, None), code"
        )
        loaded = _loaded_after(code)
        assert "torch" not in loaded and "stable_baselines3" not in loaded, (command, loaded)
    # The checks are still made where asked for (the default): a worker joining the study.
    code = f"from rlsweep.study import StudyHandle\nStudyHandle.load('cartpole-ppo', {url!r})"
    assert "stable_baselines3" in _loaded_after(code)
