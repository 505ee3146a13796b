"""`rlsweep dashboard` serves optuna-dashboard on 127.0.0.1 and the study is readable there."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from rlsweep.cli import main
from tests.conftest import synthetic_sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_serves_the_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("optuna_dashboard")
    monkeypatch.chdir(tmp_path)
    sweep = synthetic_sweep("dash", tmp_path, strategy={"name": "random", "runs": 3})
    Path("s.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["run", "s.yaml", "--workers", "1", "--quiet"]) == 0
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rlsweep", "dashboard", "dash", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "dashboard did not answer"
        assert [s["study_name"] for s in body["study_summaries"]] == ["dash"]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
