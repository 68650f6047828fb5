"""`fleet cluster up | down | status | env | build`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="run a local Kubernetes control plane (kwok nodes)")
    p.add_argument("--state-dir", help="cluster state directory "
                   "(default: $MODELFLEET_CLUSTER_DIR or ~/.local/state/modelfleet/cluster)")
    csub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)

    up = csub.add_parser("up", help="start (or reuse) the cluster")
    up.add_argument("--nodes", type=int, default=2, help="plain nodes (default 2)")
    up.add_argument("--gpu-nodes", type=int, default=1, help="nodes with GPUs (default 1)")
    up.add_argument("--gpus-per-node", type=int, default=4, help="nvidia.com/gpu per GPU node")
    up.add_argument("--local-nodes", type=int, default=1,
                    help="process-kubelet nodes that really run pods of RuntimeClass "
                         "fleet-local (default 1; 0 = kwok only)")
    up.add_argument("--local-gpus", type=int, default=0,
                    help="simulated nvidia.com/gpu per runner node (default 0)")
    up.add_argument("--local-cpu", help="CPU capacity of each runner node (default: the host's)")
    up.add_argument("--local-memory",
                    help="memory capacity of each runner node, e.g. 8Gi (default: the host's)")
    up.add_argument("--hdfs", action="store_true",
                    help="also start the HDFS minicluster (needs Java and Maven); "
                         "`fleet cluster env` then exports FLEET_HDFS_URL/FLEET_WEBHDFS_URL")
    up.add_argument("--postgres", action="store_true",
                    help="also start PostgreSQL on 127.0.0.1 (Optuna's RDB storage; Debian's "
                         "postgresql package); `fleet cluster env` then exports "
                         "FLEET_OPTUNA_STORAGE")
    up.add_argument("--postgres-max-connections", type=int, metavar="N",
                    help="PostgreSQL max_connections (default: as recorded, else 100)")
    up.add_argument("--enable-exec", action="store_true",
                    help="let `kubectl exec` reach runner pods (kwok does not authenticate "
                         "callers: any local process could then run commands in pods)")
    up.add_argument("--apiserver-port", type=int, help="fixed apiserver port (default: free)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds per component")
    up.set_defaults(func=_up)

    down = csub.add_parser("down", help="stop the processes the cluster started")
    down.add_argument("--keep", action="store_true", help="keep the state dir (etcd data, PKI)")
    down.set_defaults(func=_down)

    status = csub.add_parser("status", help="component health and nodes")
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    status.set_defaults(func=_status)

    env = csub.add_parser("env", help="print `export KUBECONFIG=…` for this cluster (and "
                          "FLEET_HDFS_URL, FLEET_OPTUNA_STORAGE with --hdfs, --postgres)")
    env.set_defaults(func=_env)

    build = csub.add_parser("build", help="find or build the control-plane binaries")
    build.set_defaults(func=_build)


def _cluster(args: argparse.Namespace):
    from devcluster.cluster import LocalCluster

    return LocalCluster(args.state_dir)


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _up(args: argparse.Namespace) -> int:
    from devcluster.cluster import ClusterError, binaries

    try:
        binaries.build(progress=_say)
        info = _cluster(args).up(
            nodes=args.nodes, gpu_nodes=args.gpu_nodes, gpus_per_node=args.gpus_per_node,
            local_nodes=args.local_nodes, local_gpus=args.local_gpus,
            local_cpu=args.local_cpu, local_memory=args.local_memory,
            enable_exec=args.enable_exec, hdfs=args.hdfs, postgres=args.postgres,
            postgres_max_connections=args.postgres_max_connections,
            apiserver_port=args.apiserver_port,
            progress=_say, timeout=args.timeout,
        )
    except ClusterError as exc:
        return _fail(exc)
    _print_env(info)
    return 0


def _print_env(info: Any) -> None:
    print(f"export KUBECONFIG={info.kubeconfig}")
    if info.hdfs_url:
        print(f"export FLEET_HDFS_URL={info.hdfs_url}")
        print(f"export FLEET_WEBHDFS_URL={info.webhdfs_url}")
    if info.optuna_storage:  # SQLAlchemy URL (psycopg 3) for optuna.storages.RDBStorage
        print(f"export FLEET_OPTUNA_STORAGE={info.optuna_storage}")
    if info.runtime_class:  # fleet deploy/train default --runtime-class
        print(f"export FLEET_RUNTIME_CLASS={info.runtime_class}")


def _down(args: argparse.Namespace) -> int:
    stopped = _cluster(args).down(keep=args.keep)
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    st = cluster.status()
    caps = cluster.runner_capabilities()
    if args.output == "json":
        print(json.dumps({
            "stateDir": str(st.state_dir), "server": st.server, "healthy": st.healthy,
            "components": [{"name": c.name, "pid": c.pid, "running": c.running,
                            "healthy": c.healthy} for c in st.components],
            "nodes": st.nodes, "runner": caps,
        }, indent=2))
        return 0 if st.healthy else 1
    if not st.components:
        print(f"no local cluster in {st.state_dir}; start one with `fleet cluster up`.")
        return 1
    print(f"server: {st.server}   state: {st.state_dir}")
    print(f"{'COMPONENT':<26}{'PID':>8}  STATUS")
    for c in st.components:
        health = "healthy" if c.healthy else ("running, unhealthy" if c.running else "stopped")
        print(f"{c.name:<26}{c.pid or '-':>8}  {health}")
    if caps:
        print(f"\nrunner: {caps.get('limits')}; mount namespaces: "
              f"{caps.get('mountNamespaces')}")
    if st.nodes:
        print(f"\n{'NODE':<16}{'READY':<7}{'CPU':>5}{'GPUS':>6}")
        for n in st.nodes:
            print(f"{n['name']:<16}{'True' if n['ready'] else 'False':<7}{n['cpu']:>5}"
                  f"{n['gpus']:>6}")
    return 0 if st.healthy else 1


def _env(args: argparse.Namespace) -> int:
    from devcluster.cluster import ClusterError

    try:
        info = _cluster(args).info()
    except ClusterError as exc:
        return _fail(exc)
    _print_env(info)
    return 0


def _build(args: argparse.Namespace) -> int:
    from devcluster.cluster import ClusterError, binaries

    try:
        bins = binaries.build(progress=_say)
    except ClusterError as exc:
        return _fail(exc)
    for name in ("etcd", "kwok", "kube_apiserver", "kube_controller_manager", "kube_scheduler",
                 "kubectl", "metrics_server"):
        print(f"{name.replace('_', '-'):<26}{getattr(bins, name)}")
    return 0
