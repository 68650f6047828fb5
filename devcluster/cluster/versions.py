"""Pinned versions of the control-plane components the embedded cluster runs."""

from __future__ import annotations

KUBERNETES = "v1.37.2"
ETCD = "v3.6.16"
KWOK = "v0.8.0"
METRICS_SERVER = "v0.8.0"

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ALL_BINARIES = ("etcd", "kwok", *KUBE_BINARIES, "metrics-server")


def cache_key() -> str:
    """Directory name for one set of binaries in the user cache.

    metrics-server is not part of the key: it was added later, and a missing binary in an
    existing directory is built on its own (`build_binaries.sh` skips what is there).
    """
    return f"k8s-{KUBERNETES}_etcd-{ETCD}_kwok-{KWOK}"
