"""The README's "From Python" block runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_block_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## From Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    script = tmp_path / "readme_example.py"
    script.write_text(blocks[0])
    # As a user runs it: a script of its own (the decorated function lives in its __main__).
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "config_id" in out.stdout and "mean" in out.stdout
    import rlsweep

    study = rlsweep.load("from-python", storage=f"sqlite:///{tmp_path}/runs/from-python/study.db")
    assert study.counts().get("done", 0) + study.counts().get("pruned", 0) == 16
    child = rlsweep.load("from-python-reseed", storage=f"sqlite:///{tmp_path}/runs/from-python/study.db")
    assert child.counts() == {"done": 6}
