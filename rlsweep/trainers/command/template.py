"""Placeholders in a command and in the wrapped tool's config: `{seed}`, `{run_id}`, a searched value
by its dotted name, ... `{{` and `}}` stand for literal braces, as in Python's str.format.

A command is a list of argv items (never a shell line). An item may itself be a list: a group kept
only when every placeholder in it has a value, so `["--load", "{checkpoint_in}"]` appears only for
a run that continues a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rlsweep.errors import ConfigError, closest

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")

#: Placeholders every run has, and what each is (README and error messages reuse these lines).
RUN_PLACEHOLDERS: dict[str, str] = {
    "seed": "the run's seed",
    "run_id": "a name unique in the study: <study>-<run number>",
    "study": "the study's name",
    "number": "the run's number (its Optuna trial number)",
    "run_dir": "the run's artifact folder (absolute); stdout.log and stderr.log are kept there",
    "budget": "environment steps this run trains (a PBT generation: one interval)",
    "start_step": "environment steps already trained by the checkpoint it continues (0 for a fresh run)",
    "end_step": "start_step + budget: the step at which the run ends",
    "config_file": "the rendered config of the wrapped tool (needs trainer.config or trainer.config_template)",
    "python": "trainer.python (another environment's interpreter), by default the Python running rlsweep",
    "checkpoint_in": "the checkpoint this run continues (PBT); only inside an optional group [..]",
    "checkpoint_out": "where the program saves its checkpoint; recorded for PBT when the file exists after it exits",
}
#: Placeholders whose value some runs lack: they may only stand inside an optional group.
OPTIONAL = ("checkpoint_in",)


def fields(text: str, where: str, file: str | None) -> list[str]:
    """The placeholder names in `text`, in order; a lone brace is an error naming `where`."""
    names = []
    for match in _FIELD.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ConfigError(f"a lone '{token}' in {text!r}; write '{token}{token}' for a literal brace", file=file, key=where)
        if not name.strip():
            raise ConfigError(f"an empty placeholder '{{}}' in {text!r}; name a value, e.g. {{seed}}", file=file, key=where)
        names.append(name.strip())
    return names


def render(text: str, values: Mapping[str, Any]) -> str:
    """`text` with each placeholder replaced by str(value) (checked names only: see `fields`)."""

    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return _text(values[match.group(1).strip()])

    return _FIELD.sub(sub, text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # what YAML and most argument parsers read back
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def command_items(command: Sequence[Any]) -> Iterator[tuple[str, str, bool]]:
    """(key path, text, in a group) for each string of a command."""
    for i, item in enumerate(command):
        if isinstance(item, list):
            for j, sub in enumerate(item):
                yield f"trainer.command[{i}][{j}]", sub, True
        else:
            yield f"trainer.command[{i}]", item, False


def render_command(command: Sequence[Any], values: Mapping[str, Any]) -> list[str]:
    """argv: each item rendered; a group is dropped when one of its placeholders has no value (None)."""
    argv: list[str] = []
    for item in command:
        group = item if isinstance(item, list) else [item]
        if isinstance(item, list) and any(values.get(name) is None for text in item for name in fields(text, "", None)):
            continue
        argv.extend(render(text, values) for text in group)
    return argv


def render_tree(tree: Any, values: Mapping[str, Any]) -> Any:
    """A config with placeholders in its strings rendered (a string that is exactly one placeholder
    takes the value itself, so `max_steps: "{budget}"` stays a number)."""
    if isinstance(tree, Mapping):
        return {k: render_tree(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [render_tree(v, values) for v in tree]
    if isinstance(tree, str):
        names = fields(tree, "", None)
        if len(names) == 1 and tree.strip() == "{" + names[0] + "}":
            return values[names[0]]
        return render(tree, values) if names or "{{" in tree or "}}" in tree else tree
    return tree


def tree_strings(tree: Any, path: str) -> Iterator[tuple[str, str]]:
    """(key path, text) for every string in a config tree."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from tree_strings(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from tree_strings(value, f"{path}[{i}]")
    elif isinstance(tree, str):
        yield path, tree


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted names of every leaf: {"policy_kwargs": {"net_arch": [64]}} -> {"policy_kwargs.net_arch": [64]}
    (and the mapping itself under its own name, so `{policy_kwargs}` works too)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out[name] = value
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
    return out


def unknown(name: str, known: Sequence[str], file: str | None, key: str) -> ConfigError:
    return ConfigError(
        f"unknown placeholder {{{name}}}{closest(name, known)}; use a run value ({', '.join(RUN_PLACEHOLDERS)}) "
        "or a value of params by its dotted name",
        file=file,
        key=key,
    )
