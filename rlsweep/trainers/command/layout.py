"""The wrapped tool's own config as part of the sweep: `trainer.config_template: file.yaml` is read
and inlined as `trainer.config` when the sweep is loaded, so its markers are searched like any other
and the stored sweep needs no file beside it on another host.

ML-Agents' layout gets its own rule: a marker under `default_settings` applies to every behavior
separately (ML-Agents copies default_settings into each behavior that does not set the value), so
3 x 3 markers under default_settings with two behaviors make 81 configurations. `opt_stop`
entries ({tag, step, min, max}) are taken out of the config and become threshold gates.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError
from rlsweep.space import is_marker

OPT_STOP_KEYS = ("tag", "step", "min", "max")


def expand_sweep(data: dict[str, Any], file: str) -> dict[str, Any]:
    """The sweep with its config template inlined, default_settings markers given to each behavior
    and opt_stop turned into `stop:` gates. Loading the result again changes nothing."""
    trainer = data.get("trainer")
    if not isinstance(trainer, Mapping):
        return data
    trainer = dict(trainer)
    if "config_template" in trainer:
        if "config" in trainer:
            raise ConfigError(
                "give either config_template (a file) or config (inline), not both", file=file, key="trainer.config_template"
            )
        source = trainer.pop("config_template")
        trainer["config"], fmt = read_template(source, file)
        trainer.setdefault("config_format", fmt)
    config = trainer.get("config")
    if not isinstance(config, Mapping):
        return {**data, "trainer": trainer}
    config = per_behavior(copy.deepcopy(dict(config)))
    stops = take_opt_stop(config, "trainer.config", file)
    trainer["config"] = config
    out = {**data, "trainer": trainer}
    if stops:
        out["stop"] = [*(data.get("stop") or []), *(gate(s, trainer, file) for s in stops)]
    return out


def read_template(source: Any, file: str) -> tuple[dict[str, Any], str]:
    """The template's content and its format (yaml or json, from the extension). A relative path is
    relative to the sweep file's folder."""
    if not isinstance(source, str) or not source:
        raise ConfigError(f"takes the path of a YAML or JSON file, got {source!r}", file=file, key="trainer.config_template")
    path = Path(source)
    if not path.is_absolute() and file and not file.startswith("<"):
        path = Path(file).parent / path
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {str(path)!r} ({exc.strerror}); a relative path is relative to the sweep file's folder",
            file=file,
            key="trainer.config_template",
        ) from None
    fmt = "json" if path.suffix == ".json" else "yaml"
    try:
        import yaml

        content = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, Exception) as exc:  # json.JSONDecodeError, yaml.YAMLError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{str(path)!r} is not valid {fmt.upper()}: {first}", file=file, key="trainer.config_template") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{str(path)!r} must hold a mapping, got {type(content).__name__}", file=file, key="trainer.config_template")
    return content, fmt


def per_behavior(config: dict[str, Any]) -> dict[str, Any]:
    """Each marker under default_settings copied into every behavior that does not set that value
    itself, and removed from default_settings; plain defaults stay for the tool to apply."""
    defaults, behaviors = config.get("default_settings"), config.get("behaviors")
    if not isinstance(defaults, dict) or not isinstance(behaviors, dict) or not behaviors:
        return config
    markers = list(_markers(defaults, ()))
    if not markers:
        return config
    for name, settings in behaviors.items():
        if settings is None:
            settings = behaviors[name] = {}
        if not isinstance(settings, dict):
            continue
        for path, marker in markers:
            _set_default(settings, path, marker)
    for path, _ in markers:
        _remove(defaults, path)
    return config


def _markers(tree: Mapping[str, Any], path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for key, value in tree.items():
        if is_marker(value):
            found.append(((*path, key), value))
        elif isinstance(value, Mapping):
            found.extend(_markers(value, (*path, key)))
    return found


def _set_default(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            return  # the behavior sets the whole section itself
        node = child
    if path[-1] not in node:
        node[path[-1]] = copy.deepcopy(value)


def _remove(tree: dict[str, Any], path: tuple[str, ...]) -> None:
    node = tree
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    if not node and len(path) > 1:
        _remove(tree, path[:-1])  # an emptied section would read as "null settings" to the tool


def take_opt_stop(tree: Any, path: str, file: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Remove every `opt_stop` entry from the config; returns (key path, entry) for each."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(tree, dict):
        if "opt_stop" in tree:
            value = tree.pop("opt_stop")
            entries = value if isinstance(value, list) else [value]
            for i, entry in enumerate(entries):
                key = f"{path}.opt_stop" + (f"[{i}]" if isinstance(value, list) else "")
                found.append((key, _check_stop(entry, key, file)))
        for key, value in tree.items():
            found.extend(take_opt_stop(value, f"{path}.{key}", file))
    return found


def _check_stop(entry: Any, key: str, file: str) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"takes {{tag, step, min, max}}, got {entry!r}", file=file, key=key)
    for name in entry:
        if name not in OPT_STOP_KEYS:
            raise ConfigError(f"unknown key '{name}'; known: {', '.join(OPT_STOP_KEYS)}", file=file, key=f"{key}.{name}")
    if not isinstance(entry.get("tag"), str):
        raise ConfigError(f"needs tag: the metric (TensorBoard tag) to watch, got {entry.get('tag')!r}", file=file, key=f"{key}.tag")
    if entry.get("min") is None and entry.get("max") is None:
        raise ConfigError("needs min or max: the threshold a run must pass", file=file, key=key)
    return entry


def gate(found: tuple[str, Mapping[str, Any]], trainer: dict[str, Any], file: str) -> dict[str, Any]:
    """An opt_stop entry as a `stop:` gate on the tag's rlsweep name (metrics.tags renames it; a tag
    it does not list is added under its own name, so the gate's metric is reported)."""
    _, entry = found
    metrics = trainer.get("metrics")
    tags = metrics.get("tags") if isinstance(metrics, Mapping) else None
    metric = entry["tag"]
    if isinstance(metrics, Mapping) and isinstance(tags, Mapping):
        if metric in tags:
            metric = tags[metric]
        else:
            trainer["metrics"] = {**metrics, "tags": {**tags, metric: metric}}
    out: dict[str, Any] = {"metric": metric, "after": entry.get("step", 0)}
    for bound in ("min", "max"):
        if entry.get(bound) is not None:
            out[bound] = entry[bound]
    return out
