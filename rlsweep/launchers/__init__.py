"""Launchers start `rlsweep worker` processes and watch them; the storage does the coordinating."""

from rlsweep.launchers._base import Launcher

__all__ = ["Launcher"]
