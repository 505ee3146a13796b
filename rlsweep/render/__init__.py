"""Episodes of trained policies -> GIF/MP4 files with JSON sidecars; checkpoint timelines.

Importing this package is cheap: Pillow, pygame, torch and the trainer load on first use.
"""

from __future__ import annotations

from rlsweep.render.episodes import Episode, RenderResult, draw_overlay, record_episode, render_policy
from rlsweep.render.gif import write_gif, write_mp4
from rlsweep.render.pool import RenderJob, RenderOutcome, render_many, timeline_jobs

__all__ = [
    "Episode",
    "RenderJob",
    "RenderOutcome",
    "RenderResult",
    "draw_overlay",
    "record_episode",
    "render_many",
    "render_policy",
    "timeline_jobs",
    "write_gif",
    "write_mp4",
]
