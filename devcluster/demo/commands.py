"""`fleet demo`: bring the local cluster up, seed a realistic fleet, open the TUI."""

from __future__ import annotations

import argparse
import os
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="local cluster + seeded model fleet + the TUI (make demo)")
    p.add_argument("--state-dir", help="cluster state directory (default: the demo cluster)")
    p.add_argument("--deployments", type=int, default=300, help="model deployments (default 300)")
    p.add_argument("--no-jobs", action="store_true", help="skip the training jobs")
    p.add_argument("--workers", type=int, default=12, help="concurrent API writers (default 12)")
    p.add_argument("--no-tui", action="store_true", help="seed only (for scripts and CI)")
    p.add_argument("--no-live", action="store_true",
                   help="skip HDFS, the live digits deployments, the training run and the "
                   "sweeps")
    p.add_argument("--no-sweeps", action="store_true",
                   help="skip PostgreSQL, the digits training run and the sweeps")
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

    sweeps = not args.no_live and not args.no_sweeps
    try:
        binaries.build(progress=_say)
        # One process-kubelet node with 4 simulated GPUs beside the kwok nodes.
        local = LocalCluster(args.state_dir)
        info = local.up(nodes=3, gpu_nodes=2, gpus_per_node=4, local_nodes=1, local_gpus=4,
                        hdfs=not args.no_live, postgres=sweeps, progress=_say)
    except ClusterError as exc:
        _say(f"error: {exc}" + ("\n(`fleet demo --no-sweeps` runs without PostgreSQL)"
                                if sweeps and "PostgreSQL" in str(exc) else ""))
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
        if sweeps and _lifecycle(client, hdfs, info.optuna_storage) != 0:
            return 1
    _say(f"export KUBECONFIG={info.kubeconfig}")
    if args.no_tui:
        return 1 if stats.failures else 0
    # The TUI is another area: go through the `fleet` entry point, the one dispatcher.
    from fleet.cli import main as fleet_main

    return fleet_main(["tui", "--kubeconfig", str(info.kubeconfig), "-A",
                       *(["--readonly"] if args.readonly else [])])


def _lifecycle(client: object, hdfs: object, storage: str) -> int:
    """Training run + sweeps in models-live (devcluster/demo/lifecycle.py)."""
    from devcluster.demo import lifecycle
    from fleet.errors import FleetError
    from tuning import sweep_spec

    url = storage or os.environ.get(sweep_spec.STORAGE_ENV, "")
    problems = sweep_spec.check_storage(url) if url else [
        "no PostgreSQL for the sweeps' studies (the cluster was started without it)"]
    if problems:
        for p in problems:
            _say(f"error: {p}")
        return 1
    _say(f"training and sweeps in namespace {lifecycle.NAMESPACE} (real pods on the process "
         "kubelet, studies in PostgreSQL):")
    t0 = time.monotonic()
    try:
        done = lifecycle.seed_lifecycle(client, hdfs, url, _say)
    except (FleetError, RuntimeError, OSError, ValueError) as exc:
        _say(f"error: {getattr(exc, 'message', None) or exc}")
        return 1
    _say(f"  {'; '.join(done) or 'nothing to do'} ({time.monotonic() - t0:.1f}s)")
    _say("the sweeps run in the background; follow them with")
    for hint in lifecycle.follow_hints():
        _say(f"  {hint}")
    return 0
