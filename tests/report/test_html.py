"""The HTML report on synthetic data: every image and link resolves inside the folder, and 200
runs build well within the 30 s target."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.render.gif import write_gif
from rlsweep.report import build_report


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        for key in ("src", "href"):
            value = a.get(key)
            if value is None:
                continue
            if "://" in value or value.startswith("//") or value.startswith("/"):
                self.external.append(value)
            (self.srcs if key == "src" else self.hrefs).append(value)


def synthetic_runs(n_configs: int = 20, seeds: int = 10, points: int = 20) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    runs = []
    for c in range(n_configs):
        lr = float(10 ** rng.uniform(-5, -2))
        params = {
            "learning_rate": lr,
            "gamma": float(rng.uniform(0.9, 0.999)),
            "net_arch": str([64, 64] if c % 2 else [256]),
        }
        skill = rng.uniform(50, 500)
        for s in range(seeds):
            number = len(runs)
            steps = np.linspace(1000, 20000, points)
            ret = skill * (1 - np.exp(-steps / 6000)) + rng.normal(0, 10, points)
            state = "COMPLETE" if number % 17 else "PRUNED"
            curves = {
                "eval/mean_return": list(zip(steps.tolist(), ret.tolist(), strict=True)),
                "train/loss": list(zip(steps.tolist(), (1 / (1 + steps / 5000)).tolist(), strict=True)),
                "time/fps": list(zip(steps.tolist(), rng.uniform(900, 1100, points).tolist(), strict=True)),
            }
            if state == "PRUNED":
                curves = {k: v[: points // 2] for k, v in curves.items()}
            runs.append({
                "number": number, "state": state, "value": float(ret[-1]) if state == "COMPLETE" else None,
                "params": params, "config_id": f"c{c:02d}", "seed": s, "curves": curves,
            })  # fmt: skip
    return runs


def _gallery(tmp: Path, n: int) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        frames = [np.full((24, 32, 3), (i * 20 % 255, t * 40 % 255, 90), dtype=np.uint8) for t in range(4)]
        path = write_gif(frames, tmp / f"run{i}.gif", fps=10)
        items.append(
            {
                "path": str(path),
                "return": 100.0 + i,
                "seed": i % 3,
                "config_id": f"c{i % 4:02d}",
                "run": i,
                "cluster": 2 if i == 0 else i % 2,
            }
        )
    return items


def test_report_for_200_runs_is_self_contained_and_fast(tmp_path: Path) -> None:
    runs = synthetic_runs()
    gallery = _gallery(tmp_path, 12)
    t0 = time.perf_counter()
    index = build_report(
        tmp_path / "report",
        runs=runs,
        objective="eval/mean_return",
        study={
            "name": "cartpole-ppo",
            "strategy": "tpe",
            "budget": "20000 steps x 200 runs",
            "wall time": "1:02:03",
        },
        gallery=gallery,
        importance={"learning_rate": 0.6, "gamma": 0.3, "net_arch": 0.1},
        mature=[{"run": 3, "config_id": "c00", "seed": 3, "score": 480.0}],
    )
    seconds = time.perf_counter() - t0
    assert seconds < 30, seconds
    assert index == tmp_path / "report" / "index.html"
    refs = _Refs()
    refs.feed(index.read_text())
    assert refs.external == []
    assert len(refs.srcs) >= 5 + 2 * 12  # curves (3) + history + parallel + importance, gallery twice
    for src in refs.srcs:
        assert (index.parent / src).is_file(), src
    for href in refs.hrefs:
        if href.startswith("#"):
            assert href[1:] in refs.ids, href
        else:
            assert (index.parent / href).exists(), href
    # Images are bounded by the number of metrics, not the number of runs.
    assert len(list((index.parent / "img").glob("*.png"))) == 6
    text = index.read_text()
    assert "behaviour 2 (1 policy) · rare" in text
    assert text.count("<svg") == len(runs)


def test_report_without_finished_runs(tmp_path: Path) -> None:
    runs = [
        {
            "number": 0,
            "state": "RUNNING",
            "value": None,
            "params": {},
            "config_id": "a",
            "seed": 0,
            "curves": {},
        }
    ]
    index = build_report(tmp_path, runs=runs, objective="eval/mean_return")
    text = index.read_text()
    assert "No finished runs yet" in text and "No rendered episodes" in text
    assert not (tmp_path / "img").exists() or not list((tmp_path / "img").iterdir())
