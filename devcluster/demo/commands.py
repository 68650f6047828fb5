"""`fleet demo`: bring the local cluster up, seed a realistic fleet, open the TUI."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="local cluster + seeded model fleet + the TUI (make demo)")
    p.add_argument("--state-dir", help="cluster state directory (default: the demo cluster)")
    p.add_argument("--deployments", type=int, default=300, help="model deployments (default 300)")
    p.add_argument("--no-jobs", action="store_true", help="skip the training jobs")
    p.add_argument("--workers", type=int, default=12, help="concurrent API writers (default 12)")
    p.add_argument("--no-tui", action="store_true", help="seed only (for scripts and CI)")
    p.add_argument("--no-live", action="store_true",
                   help="skip HDFS and the live digits deployments on the process kubelet")
    p.add_argument("--readonly", action="store_true", help="open the TUI read-only")
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from devcluster.cluster import ClusterError, LocalCluster, binaries
    from devcluster.demo.plan import demo_plan
    from devcluster.demo.seed import print_progress, seed_fleet
    from fleet.errors import FleetError
    from fleet.kube import KubeClient

    try:
        binaries.build(progress=_say)
        # One process-kubelet node with 4 simulated GPUs beside the kwok nodes.
        local = LocalCluster(args.state_dir)
        info = local.up(nodes=3, gpu_nodes=2, gpus_per_node=4, local_nodes=1, local_gpus=4,
                        hdfs=not args.no_live, progress=_say)
    except ClusterError as exc:
        _say(f"error: {exc}")
        return 1
    plan = demo_plan(args.deployments, jobs=not args.no_jobs)
    client = KubeClient.from_kubeconfig(str(info.kubeconfig))
    _say(f"seeding {len(plan.deployments)} deployments ({plan.revision_count} revisions) and "
         f"{len(plan.jobs)} jobs in {', '.join(plan.namespaces)}")
    try:
        stats = seed_fleet(client, plan, workers=args.workers, progress=print_progress)
    except FleetError as exc:
        _say(f"\nerror: {exc.message}")
        return 1
    _say(f"\nseeded in {stats.elapsed:.1f}s ({stats.deployments_skipped} deployments were "
         "already there)")
    for line in stats.failures[:20]:
        _say(f"  failed: {line}")
    if not args.no_live:
        from devcluster.demo.real import NAMESPACE, seed_live

        hdfs = local.hdfs()
        if hdfs is None:
            _say("error: the HDFS minicluster is not answering; see `fleet cluster status`")
            return 1
        _say(f"live models in namespace {NAMESPACE} (really serving, on the process kubelet):")
        try:
            for line in seed_live(client, hdfs, _say):
                _say(f"  {line}")
        except (FleetError, RuntimeError) as exc:
            _say(f"error: {exc}")
            return 1
    _say(f"export KUBECONFIG={info.kubeconfig}")
    if args.no_tui:
        return 1 if stats.failures else 0
    # The TUI is another area: go through the `fleet` entry point, the one dispatcher.
    from fleet.cli import main as fleet_main

    return fleet_main(["tui", "--kubeconfig", str(info.kubeconfig), "-A",
                       *(["--readonly"] if args.readonly else [])])
