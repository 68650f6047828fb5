"""Operations on Deployments with kubectl's semantics (one module per family)."""

from fleet.ops.access import can_i
from fleet.ops.bulk import (
    BulkResult,
    TargetResult,
    WaveCandidate,
    run_bulk,
    undo_wave,
    undo_wave_candidates,
)
from fleet.ops.history import format_history, history
from fleet.ops.probes import inspect as inspect_probes
from fleet.ops.restart import pause, restart, resume
from fleet.ops.rollback import rollback
from fleet.ops.rollout import rollout
from fleet.ops.scale import scale
from fleet.ops.status import rollout_status, status_message

__all__ = [
    "BulkResult", "TargetResult", "WaveCandidate", "can_i", "format_history", "history",
    "inspect_probes", "pause", "restart", "resume", "rollback", "rollout", "rollout_status",
    "run_bulk", "scale", "status_message", "undo_wave", "undo_wave_candidates",
]
