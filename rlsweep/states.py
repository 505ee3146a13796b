"""Run states in the queue table and the reasons a run is queued again, defined once.

They are plain strings because they are stored as such (the queue's `state` column, a trial's
`failure_reason`), and every storage driver binds a plain `str` without surprises.
"""

from __future__ import annotations

from typing import Final

WAITING: Final = "waiting"  # queued, not yet claimed
RUNNING: Final = "running"  # claimed by a worker
DONE: Final = "done"  # finished with a value (trial COMPLETE)
PRUNED: Final = "pruned"  # stopped early by a pruner or gate (trial PRUNED)
FAILED: Final = "failed"  # the trainer raised, diverged or reported no objective (trial FAIL)
LOST: Final = "lost"  # its worker went silent; queued again as `<key>/retry:<n>`
INTERRUPTED: Final = "interrupted"  # stopped by Ctrl-C; queued again, resumed by the next `run`

STATES: Final = (WAITING, RUNNING, DONE, PRUNED, FAILED, LOST, INTERRUPTED)
ENDED: Final = (DONE, PRUNED, FAILED)  # a run in one of these is never trained again
ACTIVE: Final = (WAITING, RUNNING)  # work that keeps workers waiting

# Why a run was queued again; a trial failed for one of these reasons is not a result.
WORKER_LOST: Final = "worker lost"
INTERRUPTED_REASON: Final = "interrupted"
REQUEUED_REASONS: Final = (WORKER_LOST, INTERRUPTED_REASON)
