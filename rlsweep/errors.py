"""The one error family. A known error prints one line and exits with its code; no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RlsweepError(Exception):
    """Base of every error rlsweep raises on purpose."""

    exit_code = 1


class ConfigError(RlsweepError):
    """Bad input (sweep file, command line, names). Raised before any run starts."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.message = message  # without the file and key prefix
        prefix = ""
        if file and key:
            prefix = f"{file}: {key}: "
        elif file:
            prefix = f"{file}: "
        elif key:
            prefix = f"{key}: "
        super().__init__(prefix + message)


class StorageError(RlsweepError):
    """The storage cannot be reached or holds something unexpected."""

    exit_code = 2


class TrainerError(RlsweepError):
    """A trainer cannot run a configuration (raised inside a run; the run fails, the sweep goes on)."""

    exit_code = 1


def closest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest known name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
