"""Local stand-ins for `make demo`, tests and benchmarks: never imported by the product.

- `devcluster.cluster`: the embedded control plane (etcd, kube-apiserver, controller-manager,
  scheduler, kwok) on loopback.
- `devcluster.runner`: the process kubelet that really runs opted-in pods as host processes.
- `devcluster.demo`: seeding the demo fleet.

On a real cluster the real kubelet and control plane do all of this; `fleet/` keeps only what
runs against production clusters.
"""
