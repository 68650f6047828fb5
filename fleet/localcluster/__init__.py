"""`fleet cluster`: a real Kubernetes control plane on loopback, with kwok nodes.

Used by the tests, `make demo` and the benchmarks; users point `fleet` at real clusters.
"""

from fleet.localcluster.cluster import ClusterInfo, ClusterStatus, LocalCluster
from fleet.localcluster.errors import ClusterError

__all__ = ["ClusterError", "ClusterInfo", "ClusterStatus", "LocalCluster"]
