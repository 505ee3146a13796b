"""The names of rlsweep's own study attributes (constants only, so any layer may import them)."""

from __future__ import annotations

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
