"""An off-policy model's replay buffer saved beside its checkpoint (`checkpoint: {replay_buffer: true}`).

The file is a plain `.npz` of the buffer's arrays, read back with `allow_pickle=False`: a member
continuing a donor's checkpoint restores the donor's experience without unpickling anything another
run wrote (SB3's own `save_replay_buffer` pickles the whole buffer object).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.errors import TrainerError
from rlsweep.trainers._base import atomic_path, commit_file

__all__ = ["load_replay_buffer", "replay_buffer_path", "save_replay_buffer"]

# The arrays of SB3's ReplayBuffer and DictReplayBuffer, each shaped (buffer_size, n_envs, ...).
FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def replay_buffer_path(model_path: str | Path) -> Path:
    """`replay_buffer.npz` beside the final `model.zip`, `<name>_replay_buffer.npz` beside any other
    `<name>.zip` (checkpoints), like the VecNormalize statistics."""
    path = Path(model_path)
    name = path.name.removesuffix(".zip")
    if name == "model":
        return path.with_name("replay_buffer.npz")
    return path.with_name(f"{name}_replay_buffer.npz")


def _check_kind(buffer: Any) -> None:
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

    if type(buffer) not in (ReplayBuffer, DictReplayBuffer):
        raise TrainerError(
            f"checkpoint.replay_buffer saves SB3's ReplayBuffer and DictReplayBuffer, not {type(buffer).__name__}; "
            "set checkpoint.replay_buffer: false for this algorithm"
        )


def _arrays(buffer: Any) -> dict[str, np.ndarray]:
    """field name (`observations.<key>` for dict observations) -> the buffer's whole array."""
    out: dict[str, np.ndarray] = {}
    for name in FIELDS:
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            out.update({f"{name}.{key}": array for key, array in value.items()})
        elif value is not None:  # next_observations is None under optimize_memory_usage
            out[name] = value
    return out


def save_replay_buffer(buffer: Any, path: Path) -> Path:
    """Write the filled part of `buffer` to `path` (a temporary file renamed into place when complete)."""
    _check_kind(buffer)
    size, pos, full = int(buffer.buffer_size), int(buffer.pos), bool(buffer.full)
    rows = size if full else pos
    arrays: dict[str, Any] = {"pos": np.int64(pos), "full": np.bool_(full), "buffer_size": np.int64(size)}
    for name, array in _arrays(buffer).items():
        # under optimize_memory_usage the last transition's next observation sits at observations[pos]
        keep = min(rows + 1, size) if buffer.optimize_memory_usage and name.startswith("observations") else rows
        arrays[name] = array[:keep]
    tmp = atomic_path(path)
    with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the temporary name
        np.savez(f, **arrays)
    return commit_file(tmp, path)


def load_replay_buffer(buffer: Any, path: Path) -> int:
    """Fill `buffer` (a fresh one, of the continuing model) from `path`; returns the transitions
    restored. A buffer of the saved size gets the saved layout exactly (`pos`, `full`); a smaller or
    larger one gets the newest transitions that fit, oldest first."""
    _check_kind(buffer)
    with np.load(path, allow_pickle=False) as data:
        saved_size, pos, full = int(data["buffer_size"]), int(data["pos"]), bool(data["full"])
        rows = saved_size if full else pos
        size = int(buffer.buffer_size)
        if size == saved_size:
            order = np.arange(rows)
        elif buffer.optimize_memory_usage:
            raise TrainerError(
                f"cannot restore the replay buffer {path} into a buffer of another size ({saved_size} -> {size}) "
                "under optimize_memory_usage; keep buffer_size fixed (strategy.fixed)"
            )
        else:  # oldest first, then the newest that fit
            order = (np.r_[pos:saved_size, 0:pos] if full else np.arange(rows))[-size:]
        targets = _arrays(buffer)
        missing = sorted(set(targets) - set(data.files))
        if missing:
            raise TrainerError(f"cannot restore the replay buffer {path}: it has no '{missing[0]}' array")
        for name, target in targets.items():
            source = data[name]
            if source.shape[1:] != target.shape[1:]:
                raise TrainerError(
                    f"cannot restore the replay buffer {path}: its {name} are {source.shape[1:]} per step, this run's "
                    f"are {target.shape[1:]} (n_envs and the environment's spaces must match the checkpoint's)"
                )
            if size == saved_size:
                target[: len(source)] = source
            else:
                target[: len(order)] = source[order]
    if size == saved_size:
        buffer.pos, buffer.full = pos, full
    else:
        buffer.pos, buffer.full = len(order) % size, len(order) == size
    return len(order)
