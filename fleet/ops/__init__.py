"""Operations on Deployments with kubectl's semantics, one module per family.

Use them module-qualified: `from fleet.ops import rollback; rollback.rollback(client, ns, name)`.
The package attributes are the submodules (access, bulk, history, probes, restart, rollback,
rollout, scale, status, sweeps), so no function shadows its module.
"""

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def __getattr__(name: str) -> ModuleType:
    """Submodules load on first use: a one-shot command such as `fleet rollback` imports
    only its own operation (start-up time is part of the kubectl parity budget)."""
    if name in __all__:
        return importlib.import_module(f"fleet.ops.{name}")
    raise AttributeError(f"module 'fleet.ops' has no attribute {name!r}")
