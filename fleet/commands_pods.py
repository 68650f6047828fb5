"""`fleet logs | predict`: the pods behind a model deployment (parse, call fleet.ops, print).

Imports of the client and ops happen inside the handlers so `fleet --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet.commands import (
    _client,
    _common,
    _json,
    _run,
    add_impersonation,
    parse_duration,
    print_error,
)

POD_COMMANDS = ("logs", "predict")


def register(subparsers: argparse._SubParsersAction) -> None:
    help_ = ("print the logs of every pod of a deployment or job (training, sweeps), prefixed "
             "[pod/NAME/CONTAINER] (like kubectl logs -l … --prefix)")
    p = subparsers.add_parser("logs", help=help_, description=help_)
    p.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    p.add_argument("--context", help="kubeconfig context to use")
    p.add_argument("--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG)")
    add_impersonation(p)
    p.add_argument("name", metavar="NAME",
                   help="a Deployment, or job/NAME (a bare name falls back to a Job)")
    p.add_argument("-f", "--follow", action="store_true",
                   help="stream new lines from all pods concurrently until ^C")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the previous (terminated) instance of each container")
    p.add_argument("--since", type=parse_duration, default=None,
                   help="only lines newer than this, e.g. 10m, 1h, 30s")
    p.add_argument("--tail", type=int, default=-1, help="last N lines of each stream (-1: all)")
    p.add_argument("-c", "--container", help="this container (default: each pod's default)")
    p.add_argument("--all-containers", action="store_true", help="every container of each pod")
    p.add_argument("--timestamps", action="store_true", help="RFC 3339 timestamp on each line")
    p.add_argument("--max-log-requests", type=int, default=5,
                   help="most concurrent streams with -f (kubectl's default: 5)")
    p.set_defaults(func=lambda args: _run(cmd_logs, args))

    help_ = ("send one prediction to a Ready pod (through the API's port-forward) and print "
             "it, the pod that answered and the latency")
    p = subparsers.add_parser("predict", help=help_, description=help_)
    _common(p)
    p.add_argument("name", metavar="NAME", help="the model Deployment")
    p.add_argument("--pod", help="this pod of the deployment (default: a Ready one)")
    p.add_argument("--protocol", choices=("v1", "v2"), default="v2",
                   help="v1 = TF Serving REST (:predict), v2 = Open Inference (/infer)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="FILE", help="JSON request body from FILE, or - (stdin)")
    src.add_argument("--example", action="store_true",
                     help="build a valid input (zeros) from the model's metadata signature")
    p.add_argument("--model", help="model name in the URL (default: MODEL_NAME of the pod)")
    p.add_argument("--via", choices=("port-forward", "pod-ip"), default="port-forward",
                   help="reach the pod through the API's port-forward, or dial its pod IP")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request")
    p.set_defaults(func=lambda args: _run(cmd_predict, args))


# --- logs ------------------------------------------------------------------------------------

def cmd_logs(args: argparse.Namespace) -> int:
    from fleet.ops import logs as ops

    if args.container and args.all_containers:
        print_error("--container and --all-containers cannot be used together")
        return 1
    client = _client(args)
    sources = ops.sources_for(client, client.namespace, args.name, container=args.container,
                              all_containers=args.all_containers)
    if args.follow and len(sources) > args.max_log_requests:
        print_error(f"you are attempting to follow {len(sources)} log streams, but maximum "
                    f"allowed concurrency is {args.max_log_requests}, use --max-log-requests "
                    "to increase the limit")
        return 1
    options = ops.LogOptions(
        follow=args.follow, previous=args.previous,
        since_seconds=int(args.since.total_seconds()) if args.since else None,
        tail_lines=args.tail if args.tail >= 0 else None, timestamps=args.timestamps,
    )
    logs = ops.DeploymentLogs(client, sources, options)
    failed = 0
    out = sys.stdout
    try:
        for item in logs.lines():  # only this thread writes: the streams feed a queue
            if isinstance(item, ops.LogFailure):
                failed += 1
                text = item.error.message
                out.flush()
                print(f"{item.source.prefix}{text}" if item.error.from_server
                      else f"error: {item.source.prefix}{text}", file=sys.stderr)
                continue
            out.write(item.render() + "\n")
            if args.follow:
                out.flush()
    except KeyboardInterrupt:
        logs.stop()
        out.flush()
        return 130
    finally:
        logs.stop()
    return 1 if failed else 0


# --- predict ---------------------------------------------------------------------------------

def _read_input(spec: str) -> bytes:
    from fleet.errors import FleetError

    if spec == "-":
        return sys.stdin.buffer.read()
    try:
        with open(spec, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise FleetError(f"cannot read input {spec}: {exc.strerror or exc}") from exc


def _compact(value: Any) -> str:
    import orjson

    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def cmd_predict(args: argparse.Namespace) -> int:
    from fleet.ops import predict as ops

    client = _client(args)
    body = None if args.example else _read_input(args.input)
    res = ops.predict(
        client, client.namespace, args.name, body=body, example=args.example,
        protocol=args.protocol, pod=args.pod, model=args.model, via=args.via,
        timeout=args.timeout,
    )
    if args.output == "json":
        _json(res)
    elif res.ok:
        print(_compact(res.response))
    if args.output != "json":
        print(f"pod: {res.pod}")
        print(f"latency: {res.latency_ms:.1f} ms")
        print(f"connect: {res.connect_ms:.1f} ms ({res.via})")
    if not res.ok:
        print_error(f'model "{res.model}" on pod/{res.pod} answered {res.status}: {res.error}')
        return 1
    return 0
