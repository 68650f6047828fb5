"""Operations on Deployments with kubectl's semantics, one module per family.

Use them module-qualified: `from fleet.ops import rollback; rollback.rollback(client, ns, name)`.
The package attributes are the submodules (access, bulk, history, probes, restart, rollback,
rollout, scale, status, sweeps), so no function shadows its module.
"""

from fleet.ops import (
    access,
    bulk,
    history,
    probes,
    restart,
    rollback,
    rollout,
    scale,
    status,
    sweeps,
)

__all__ = ["access", "bulk", "history", "probes", "restart", "rollback", "rollout", "scale",
           "status", "sweeps"]
