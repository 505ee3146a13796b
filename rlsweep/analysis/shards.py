"""`--shard K/N`: split after-search work (maturity evaluation, rendering) between N independent
commands, e.g. the tasks of a SLURM array, with no coordination but the order of the runs.

Every shard lists the same items (finished runs of a finished study) in the same stable order and
takes every N-th one starting at K, so the shards are disjoint, cover everything and stay balanced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rlsweep.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int  # K, counted from 0 like $SLURM_ARRAY_TASK_ID
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: Sequence[T], key: Callable[[T], Any]) -> list[T]:
        """This shard's items: every `count`-th of `items` sorted by `key`, from `index` on (the
        items keep their given order)."""
        order = sorted(range(len(items)), key=lambda i: key(items[i]))
        mine = set(order[self.index :: self.count])
        return [item for i, item in enumerate(items) if i in mine]


def parse_shard(text: str | tuple[int, int] | Shard | None, flag: str = "--shard") -> Shard | None:
    """`"K/N"` (or `(K, N)`) -> Shard; ConfigError naming `flag` and the fix on anything else."""
    if text is None or isinstance(text, Shard):
        return text
    if isinstance(text, tuple):
        index, count = text
        shown = f"{index}/{count}"
    else:
        shown = str(text)
        head, sep, tail = shown.strip().partition("/")
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise ConfigError(_bad(flag, shown))
        index, count = int(head), int(tail)
    if not (isinstance(index, int) and isinstance(count, int) and count >= 1 and 0 <= index < count):
        raise ConfigError(_bad(flag, shown))
    return Shard(index, count)


def _bad(flag: str, shown: str) -> str:
    return (
        f"{flag} must be K/N, shard K of N counted from 0 (0 <= K < N), e.g. {flag} 0/8 ... {flag} 7/8 "
        f"or {flag} $SLURM_ARRAY_TASK_ID/8 with --array=0-7; got {shown!r}"
    )
