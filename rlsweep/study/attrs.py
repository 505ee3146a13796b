"""The names of rlsweep's own study attributes (constants only, so any layer may import them)."""

from __future__ import annotations

import re

SWEEP_ATTR = "rlsweep:sweep"
SPACE_ATTR = "rlsweep:space_hash"
FILE_ATTR = "rlsweep:file"
PARENT_ATTR = "rlsweep:parent"  # a child study (reseed, replay) names its parent
CHILDREN_ATTR = "rlsweep:children"

# Run attributes a trainer records (through `run.record`) once a file is renamed into place: by
# that contract a recorded path is a complete file. PBT and replay continue from the checkpoint,
# evaluation and rendering load the model.
CHECKPOINT_ATTR = "checkpoint"
MODEL_ATTR = "model"
# Periodic checkpoints (checkpoint.every), oldest first, each file named step_<environment steps>
# with the trainer's extension: `render --checkpoints` plays them, a lost run resumes from the last.
CHECKPOINTS_ATTR = "checkpoints"
CHECKPOINT_STEP = re.compile(r"step_(\d+)\.(?:zip|msgpack)$")
