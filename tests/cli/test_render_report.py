"""`rlsweep render` and `rlsweep report` end to end: a tiny SB3 study (mature, render, a checkpoint
timeline, the report loaded in headless Chromium), a synthetic-trainer study (report without a
gallery), and a PBT toy study (the report's lineage section)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from rlsweep.cli import main
from tests.conftest import synthetic_sweep

# Probe added to a copy of the page: after every image has loaded (or failed), record which failed.
PROBE = (
    "<script>window.addEventListener('load',()=>{const bad=[...document.images]"
    ".filter(i=>!(i.complete&&i.naturalWidth>0)).map(i=>i.getAttribute('src'));"
    "document.body.setAttribute('data-images',document.images.length);"
    "document.body.setAttribute('data-broken',JSON.stringify(bad));});</script>"
)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag in ("img", "video") and a.get("src"):
            self.srcs.append(str(a["src"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))
        if tag == "body":
            self.body = a


def check_page(index: Path) -> _Page:
    """Every image is a non-empty file inside the report folder; every in-page link has its anchor."""
    page = _Page()
    page.feed(index.read_text())
    for src in page.srcs:
        assert "://" not in src and not src.startswith("/"), src
        path = index.parent / src
        assert path.is_file() and path.stat().st_size > 0, src
        assert path.resolve().is_relative_to(index.parent.resolve()), src
    for href in page.hrefs:
        assert href.startswith("#") and href[1:] in page.ids, href
    return page


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("RLSWEEP_REQUIRE_CHROMIUM"):
            pytest.fail(
                "RLSWEEP_REQUIRE_CHROMIUM is set but no chromium is installed (scripts/system-deps.sh)"
            )
        pytest.skip("chromium is not installed: the page is checked with html.parser only")
    return exe


def load_in_chromium(index: Path, shot: Path) -> _Page:
    """Load the page in headless Chromium: no broken image (probe on a copy of the page), and a
    screenshot that is a real picture of it."""
    exe = chromium()
    flags = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ]
    probe = index.with_name(".probe.html")
    probe.write_text(index.read_text().replace(' loading="lazy"', "").replace("</body>", PROBE + "</body>"))
    try:
        dom = subprocess.run(
            [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=True
        ).stdout
    finally:
        probe.unlink()
    loaded = _Page()
    loaded.feed(dom)
    assert loaded.body.get("data-broken") == "[]", loaded.body
    assert int(loaded.body.get("data-images") or 0) > 0
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,2000", index.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "screenshot is nearly blank"
    return loaded


SB3_SWEEP = {
    "study": "cp",
    "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 2048, "n_envs": 1},
    "eval": {"every": 1024, "episodes": 2},
    "checkpoint": {"every": 1024},
    "strategy": {"name": "grid", "seeds": 2},
    "params": {"n_steps": {"choice": [256]}, "batch_size": {"choice": [64]}},
}


def sidecar(path: Path) -> dict[str, object]:
    return json.loads(path.with_name(path.name + ".json").read_text())


@pytest.mark.slow
def test_sb3_study_render_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    Path("s.yaml").write_text(yaml.safe_dump(SB3_SWEEP))
    assert main(["run", "s.yaml", "--workers", "2", "--quiet"]) == 0
    small = ["--size", "160x120"]

    # Before `mature`: a one-line error naming the fix.
    capsys.readouterr()
    assert main(["render", "cp", "--mature"]) == 2
    assert "run 'rlsweep mature cp --threshold X' first" in capsys.readouterr().err

    # A reseed child in the same storage: its policy is rendered and reported beside the parent's.
    assert main(["reseed", "cp", "--top", "1", "--seeds", "1", "--workers", "1", "--quiet"]) == 0
    assert (
        main(["mature", "cp", "--threshold", "-1", "--episodes", "2", "--source", "all", "--workers", "1"])
        == 0
    )
    assert main(["render", "cp", "--mature", *small, "--workers", "2"]) == 0  # the process pool
    render = Path("runs/cp/render")
    for name, study, run in [("run0", "cp", 0), ("run1", "cp", 1), ("cp-reseed-run0", "cp-reseed", 0)]:
        meta = sidecar(render / f"{name}.gif")
        assert (meta["study"], meta["run"], meta["seed"]) == (study, run, 0)
        assert meta["size"] == [160, 120] and meta["frames"] == meta["length"] + 1  # type: ignore[operator]
        assert meta["return"] == meta["length"]  # CartPole: +1 per step

    # Same policy, same seed: the same episode, in this process this time.
    first = sidecar(render / "run0.gif")
    assert main(["render", "cp", "--run", "0", *small, "--workers", "1"]) == 0
    assert sidecar(render / "run0.gif") == first

    assert main(["render", "cp", "--run", "0", "--checkpoints", *small, "--workers", "1"]) == 0
    timeline = render / "run0-checkpoints"
    names = sorted(p.name for p in timeline.glob("*.gif"))
    # The checkpoint at step 2048 is the final model: rendered once, as the final.
    assert names == ["step-000001024.gif", "step-000002048-final.gif"]
    assert [sidecar(timeline / n)["step"] for n in names] == [1024, 2048]
    assert sidecar(timeline / "step-000002048-final.gif")["model"] == first["model"]

    capsys.readouterr()
    assert main(["report", "cp"]) == 0
    index = Path("runs/cp/report/index.html")
    assert f"wrote {index}" in capsys.readouterr().out
    page = check_page(index)
    text = index.read_text()
    for heading in (
        "Top configurations",
        "Learning curves",
        "Hyperparameters",
        "Behaviour gallery",
        "Mature policies",
    ):
        assert heading in text
    gifs = [s for s in page.srcs if s.endswith(".gif")]
    assert len(gifs) == 3 * 2 + 2  # three policies by configuration and by behaviour, two timeline steps
    assert "Checkpoint timelines" in text and "run-0" in page.ids and 'href="#run-1"' in text
    assert "Reseed studies" in text and "run-cp-reseed-0" in page.ids
    assert text.count('href="#run-cp-reseed-0"') == 3  # its tile twice, its mature row
    assert "3 of 3 policies have mean return &gt;= -1.0 over 2 held-out episodes." in text
    loaded = load_in_chromium(index.resolve(), tmp_path / "report.png")
    assert int(loaded.body["data-images"] or 0) == len(page.srcs)

    # Clear errors, exit 2, before anything renders.
    for argv, message in [
        (["render", "cp", "--run", "7"], "study 'cp' has no run 7 (runs 0..1)"),
        (["render", "cp", "--top", "1", "--checkpoints"], "--checkpoints needs --run N"),
        (["render", "cp", "--run", "0", "--size", "big"], "--size must be WIDTHxHEIGHT"),
    ]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    for ckpt in Path("runs/cp/artifacts/1/checkpoints").glob("*.zip"):
        ckpt.unlink()
    assert main(["render", "cp", "--run", "1", "--checkpoints"]) == 2
    assert (
        "run 1 of study 'cp' has no saved checkpoints (its checkpoint files are missing)"
        in capsys.readouterr().err
    )


def test_report_of_a_synthetic_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = synthetic_sweep("syn", tmp_path, strategy={"name": "random", "runs": 6, "seeds": 1})
    Path("s.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["run", "s.yaml", "--workers", "2", "--quiet"]) == 0
    assert main(["report", "syn"]) == 0
    index = Path("runs/syn/report/index.html")
    text = index.read_text()
    page = check_page(index)
    assert "No rendered episodes" in text and "None selected" in text
    assert "fANOVA importance" in text and "img/importance.png" in page.srcs
    assert "Population" not in text and "Reseed studies" not in text
    assert {f"run-{n}" for n in range(6)} <= page.ids
    capsys.readouterr()
    assert main(["render", "syn", "--top", "1"]) == 2
    assert (
        "render plays saved policies; study 'syn' uses the 'function' trainer, which saves none that rlsweep can load"
        in capsys.readouterr().err
    )


def test_report_of_a_pbt_study_shows_lineage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import webbrowser

    monkeypatch.chdir(tmp_path)
    opened: list[str] = []
    monkeypatch.setattr(
        webbrowser, "open", lambda url: opened.append(url) and False
    )  # as on a headless machine
    sweep = {
        "study": "toy",
        "trainer": {
            "kind": "function",
            "target": "rlsweep.examples.toy_pbt:train",
            "timesteps": 40,
            "lr": 0.01,
        },
        "objective": {"metric": "Q"},
        "strategy": {"name": "pbt", "population": 4, "interval": 4},
        "params": {"h0": {"uniform": [0, 1]}, "h1": {"uniform": [0, 1]}},
    }
    Path("pbt.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["run", "pbt.yaml", "--workers", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", "toy", "--open"]) == 0
    index = Path("runs/toy/report/index.html")
    assert opened == [index.resolve().as_uri()]
    assert f"no browser to open here; open {index.resolve()} by hand" in capsys.readouterr().out
    page = check_page(index)
    text = index.read_text()
    assert "Population: lineage and schedules" in text and "Winner's hyperparameter schedule" in text
    assert "4 members, 10 generations, 40 runs" in text
    assert {"img/lineage-tree.png", "img/lineage-schedules.png"} <= set(page.srcs)
