"""A storage password never leaves the URL the user typed: not in any output, log, file under the run
folder, stored attribute, export or process command line. The password (`Sentinel@Pass:7`, given
percent-encoded as SQLAlchemy wants it) is a real PostgreSQL role's, set up by scripts/servers.sh, and
the URL is a bare `postgresql://` one, which must reach the installed driver (psycopg2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import server_url, synthetic_sweep

SENTINEL = "Sentinel"  # in both spellings of the password: Sentinel@Pass:7 and Sentinel%40Pass:7


def cmdlines() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines


ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # this checkout's rlsweep


def rlsweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=ENV)


def test_the_storage_password_is_never_shown_or_stored(tmp_path: Path, study_name: str) -> None:
    url = server_url("postgres_secret")
    assert url.startswith("postgresql://") and "Sentinel%40Pass:7@" in url
    sweep = synthetic_sweep(study_name, tmp_path, strategy__runs=4, trainer__sleep=0.3, storage=url)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    run = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", "sweep.yaml", "--workers", "2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )  # fmt: skip
    seen: list[str] = []
    while run.poll() is None:
        seen.extend(line for line in cmdlines() if "rlsweep" in line)
        time.sleep(0.1)
    out = run.communicate()[0]
    assert run.returncode == 0, out
    assert any(" worker" in line or "rlsweep run" in line for line in seen)  # the snapshots saw the processes
    assert "4/4 finished" in out, out

    outputs = [out]
    for args in (
        ["status", study_name, "--storage", url],
        ["top", study_name, "--storage", url, "--json"],
        ["export", study_name, "--storage", url, "--format", "json", "--out", "export"],
        ["export", study_name, "--storage", url, "--format", "csv", "--out", "export"],
        ["report", study_name, "--storage", url, "--out", "report"],
    ):
        done = rlsweep(*args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        outputs += [done.stdout, done.stderr]
    exported = json.loads((tmp_path / "export" / f"{study_name}.json").read_text())
    assert exported["sweep"]["storage"] == "postgresql://rlsecret:***@127.0.0.1:5432/optuna_secret"

    import optuna

    from rlsweep.storage import with_driver

    study = optuna.load_study(study_name=study_name, storage=with_driver(url))
    stored = json.dumps([study.user_attrs, [t.user_attrs for t in study.trials], [t.system_attrs for t in study.trials]])
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "sweep.yaml"]
    assert any(p.suffix == ".log" for p in files) and any(p.name.endswith(".json") for p in files)
    leaks = [str(p) for p in files if SENTINEL.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(outputs) if SENTINEL in text]
    leaks += ["stored attributes"] * (SENTINEL in stored)
    leaks += [f"command line: {line}" for line in seen if SENTINEL in line]
    assert leaks == []
