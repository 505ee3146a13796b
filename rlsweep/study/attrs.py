"""The names of rlsweep's own study attributes (constants only, so any layer may import them)."""

from __future__ import annotations

SWEEP_ATTR = "rlsweep:sweep"
SPACE_ATTR = "rlsweep:space_hash"
FILE_ATTR = "rlsweep:file"
PARENT_ATTR = "rlsweep:parent"  # a child study (reseed, replay) names its parent
CHILDREN_ATTR = "rlsweep:children"
