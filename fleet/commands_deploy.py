"""`fleet deploy NAME --model-uri URI ...`: a new model from manifests/ (fleet.ops.deploy).

Progress goes to stderr, the result to stdout (`-o json` for scripts). Exit 0 when the
Deployment is Available (or, with --no-wait/--dry-run, when everything was applied/validated),
1 on an error or a timeout.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from fleet.commands import _client, _common, _json, _run, parse_duration
from fleet.model import SERVING_MODES, SERVING_RUNTIMES


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--env {text!r}: use KEY=VALUE")
    return key, value


def register(subparsers: argparse._SubParsersAction) -> None:
    help_ = "deploy a new model: Deployment, Service, HTTPRoute, HPA and PDB from manifests/"
    p = subparsers.add_parser(
        "deploy", help=help_, description=help_ + ". Server-side apply (field manager "
        "modelfleet), then waits until the Deployment is Available. An existing deployment "
        "is refused: use `fleet rollout` to change it.")
    _common(p)
    p.add_argument("name", metavar="NAME", help="model and object name (DNS-1035 label)")
    p.add_argument("--model-uri", required=True,
                   help="hdfs://NAMENODE:PORT/PATH, webhdfs://HOST:PORT/PATH or a container path")
    p.add_argument("--version", help="app.kubernetes.io/version label (default: the base's)")
    p.add_argument("--replicas", type=int, help="initial replicas (default: the HPA minimum)")
    p.add_argument("--mode", choices=SERVING_MODES, default="latency",
                   help="the overlay: manifests/overlays/MODE (default latency)")
    p.add_argument("--runtime", choices=SERVING_RUNTIMES,
                   help="serving runtime (SERVING_RUNTIME; default: the server's auto)")
    p.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu per pod (default 0)")
    p.add_argument("--min-replicas", type=int, help="HPA minimum (default: the overlay's)")
    p.add_argument("--max-replicas", type=int, help="HPA maximum (default: the overlay's)")
    p.add_argument("--cpu-target", type=int, help="HPA target CPU utilization, percent")
    p.add_argument("--cpu", help="CPU request = limit per pod (overlay: 2 latency, 4 throughput)")
    p.add_argument("--memory", help="memory request = limit per pod (e.g. 1Gi)")
    p.add_argument("--ephemeral-storage",
                   help="local-disk request per pod (base: 512Mi; 0 on nodes that report none)")
    p.add_argument("--runtime-class", help="pod runtimeClassName (fleet-local on the local "
                   "cluster runs pods as processes)")
    p.add_argument("--image", help="server image (default: the base's modelfleet/model-server)")
    p.add_argument("--env", action="append", type=_env_pair, default=[], metavar="KEY=VALUE",
                   help="extra server environment, e.g. WEBHDFS_URL=http://nn:9870 (repeatable)")
    p.add_argument("--gateway", help="parent Gateway NAMESPACE/NAME "
                   "(default: $FLEET_GATEWAY or fleet-system/fleet-gateway)")
    p.add_argument("--hostname", help="route this host (all paths) instead of /models/NAME")
    p.add_argument("--require-route", action="store_true",
                   help="fail (before writing) when the cluster has no Gateway API or Gateway")
    p.add_argument("--dry-run", action="store_true",
                   help="validate everything with the server (dryRun=All), print, write nothing")
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                   help="wait until the Deployment is Available (default)")
    p.add_argument("--timeout", type=parse_duration, default=parse_duration("5m"),
                   help="how long to wait (default 5m)")
    p.add_argument("--rollback-on-failure", action="store_true",
                   help="on a timeout, delete what this deploy created")
    p.add_argument("--manifests", help="manifests directory (default: $FLEET_MANIFESTS or the "
                   "repository's manifests/)")
    p.set_defaults(func=lambda args: _run(cmd_deploy, args))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Progress:
    """One updating line on a terminal; a line per change otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.width = 0

    def __call__(self, text: str) -> None:
        if self.tty:
            line = f"  {text}"[:200]
            sys.stderr.write("\r" + line.ljust(self.width))
            self.width = len(line)
            sys.stderr.flush()
        else:
            _say(f"  {text}")

    def end(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.width = 0


def _dump_yaml(objs: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(objs, sort_keys=False)


def cmd_deploy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fleet.ops.deploy import DeploySpec, deploy, timeout_error

    client = _client(args)
    spec = DeploySpec(
        name=args.name, namespace=client.namespace, model_uri=args.model_uri,
        version=args.version, replicas=args.replicas, mode=args.mode, runtime=args.runtime,
        gpus=args.gpus, min_replicas=args.min_replicas, max_replicas=args.max_replicas,
        cpu_target=args.cpu_target, cpu=args.cpu,
        runtime_class=args.runtime_class or os.environ.get("FLEET_RUNTIME_CLASS") or None,
        memory=args.memory, ephemeral_storage=args.ephemeral_storage, image=args.image,
        env=tuple(args.env), gateway=args.gateway, hostname=args.hostname,
    )
    timeout = args.timeout.total_seconds()
    progress = _Progress()
    try:
        result, objs = deploy(
            client, spec, dry_run=args.dry_run, wait=args.wait, timeout=timeout,
            rollback_on_failure=args.rollback_on_failure, require_route=args.require_route,
            manifests=Path(args.manifests) if args.manifests else None,
            on_message=_say, on_progress=progress,
        )
    finally:
        progress.end()
    if args.dry_run:
        _say(f"dry run: the server accepted all {len(objs)} objects; nothing was written")
        if args.output == "json":
            _json({"result": result, "objects": objs})
        else:
            sys.stdout.write(_dump_yaml(objs))
        return 0
    if result.available is False:
        if args.rollback_on_failure:
            for o in result.objects:
                if o.action == "deleted":
                    _say(f"{o.ref} deleted (rollback)")
        if args.output == "json":
            _json(result)
        raise timeout_error(result, timeout)
    if args.output == "json":
        _json(result)
        return 0
    for o in result.objects:
        print(f"{o.ref} created")
    if result.available:
        print(f'deployment "{result.name}" is Available: {result.ready}/{result.replicas} '
              f"pods ready in {result.elapsed_s:.0f}s")
    if result.route:
        print(f"route: {result.route} (HTTPRoute {result.name})")
    print(f"reach it: kubectl port-forward -n {result.namespace} svc/{result.name} 8080:8080")
    return 0
