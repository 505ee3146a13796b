"""The layers stay layered: nothing below cli/ imports cli/, and analysis/render/report only read the
study (they never call a method that writes to the storage). Checked on the source (AST), so a new
module is covered as soon as it exists."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rlsweep"
READ_ONLY = ("analysis", "render", "report")
# Methods that write to the storage (StudyHandle, Optuna's study and storage, SQLAlchemy).
WRITES = {
    "set_user_attr", "set_system_attr", "set_attr", "set_trial_user_attr", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_param", "enqueue", "enqueue_trial", "create_trial",
    "create_or_load", "create_new_trial", "create_study", "delete_study", "finish", "record_evaluation",
    "set_row", "requeue", "reap_lost", "heartbeat", "register_worker", "tell", "optimize", "begin",
    "claim", "claim_batch", "fail_lost", "ask",
}  # fmt: skip
# The study's writing units: analysis/render/report read through `rlsweep.study.view` (and the
# constants in `rlsweep.study.attrs`), never these or the StudyHandle that composes them.
STUDY_WRITERS = ("rlsweep.study.queue", "rlsweep.study.trials", "rlsweep.study.metrics", "rlsweep.study.workers")


def modules(under: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def imported(tree: ast.AST, path: Path) -> set[str]:
    names: set[str] = set()
    package = ".".join(("rlsweep", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_below_cli_imports_cli() -> None:
    offenders = []
    for path in modules():
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("cli", "__main__.py"):
            continue
        for name in imported(ast.parse(path.read_text()), path):
            if name == "rlsweep.cli" or name.startswith("rlsweep.cli."):
                offenders.append(f"{rel}: imports {name}")
    assert offenders == []


def test_analysis_render_and_report_do_not_write_to_the_storage() -> None:
    offenders = []
    for part in READ_ONLY:
        for path in modules(PACKAGE / part):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: .{node.func.attr}(...)")
    assert offenders == []


def test_analysis_render_and_report_import_only_the_view_of_the_study() -> None:
    offenders = []
    for part in READ_ONLY:
        for path in modules(PACKAGE / part):
            for name in imported(ast.parse(path.read_text()), path):
                writer = name.startswith(STUDY_WRITERS) or name in ("rlsweep.study", "rlsweep.study.StudyHandle", "rlsweep.study.open_study")
                if writer:
                    offenders.append(f"{path.relative_to(PACKAGE)}: imports {name}")
    assert offenders == []


def test_the_study_view_has_no_write_method() -> None:
    from rlsweep.study import StudyHandle, StudyView

    public = {name for name in dir(StudyView) if not name.startswith("_")}
    assert public & WRITES == set()
    assert {"enqueue", "claim", "set_row", "create_trial", "finish", "record_evaluation", "register_worker", "heartbeat"} <= set(dir(StudyHandle))


def test_only_the_trial_store_uses_optunas_private_api() -> None:
    """`study._storage`, `_study_id` and `FrozenTrial._trial_id` are Optuna's internals: one module holds them."""
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in modules()
        if any(f".{name}" in path.read_text() for name in ("_storage", "_study_id", "_trial_id"))
    )
    assert users == ["study/trials.py"]


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """The scanners find a cli import and a storage write when there is one (so the tests above can fail)."""
    bad = PACKAGE / "worker.py"
    tree = ast.parse("from rlsweep.cli.run import execute\nimport rlsweep.cli\n")
    assert {"rlsweep.cli.run", "rlsweep.cli"} <= imported(tree, bad)
    calls = [n.func.attr for n in ast.walk(ast.parse("h.study.set_user_attr('k', 1)\nh.engine.begin()\n")) if isinstance(n, ast.Call)]
    assert set(calls) <= WRITES and calls
    names = imported(ast.parse("from rlsweep.study.queue import RunQueue\nfrom rlsweep.study import StudyHandle\n"), PACKAGE / "report" / "x.py")
    assert any(n.startswith(STUDY_WRITERS) for n in names) and "rlsweep.study.StudyHandle" in names


# Imports go down only: cli -> api -> launchers -> worker -> strategies, trainers -> study -> storage.
LEVEL = {"cli": 6, "api": 5, "launchers": 4, "worker": 3, "strategies": 2, "trainers": 2, "study": 1, "storage": 0}


def _level(dotted: str) -> int | None:
    parts = dotted.split(".")
    return LEVEL.get(parts[1]) if len(parts) > 1 and parts[0] == "rlsweep" else None


def test_imports_go_down_only() -> None:
    offenders = []
    for path in modules():
        rel = path.relative_to(PACKAGE)
        mine = LEVEL.get(rel.parts[0].removesuffix(".py"))
        if mine is None:
            continue
        for name in imported(ast.parse(path.read_text()), path):
            theirs = _level(name)
            if theirs is not None and theirs > mine:
                offenders.append(f"{rel} imports {name}")
    assert offenders == []
