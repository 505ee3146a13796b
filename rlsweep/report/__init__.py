"""The static HTML report of a study and its figures (matplotlib loads on first use)."""

from __future__ import annotations

from rlsweep.report.html import build_report

__all__ = ["build_report"]
