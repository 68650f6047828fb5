"""`fleet cluster`: a real Kubernetes control plane on loopback, with kwok nodes.

Used by the tests, `make demo` and the benchmarks; users point `fleet` at real clusters.
Names are imported lazily so that `fleet --help` does not load httpx and cryptography.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devcluster.cluster.cluster import ClusterInfo, ClusterStatus, LocalCluster
    from devcluster.cluster.errors import ClusterError

__all__ = ["ClusterError", "ClusterInfo", "ClusterStatus", "LocalCluster"]
_HOMES = {"ClusterError": "devcluster.cluster.errors"}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module(_HOMES.get(name, "devcluster.cluster.cluster"))
        return getattr(module, name)
    raise AttributeError(name)
