"""`fleet train`, `fleet train publish-example`, `fleet promote`, `fleet retrain`.

Progress goes to stderr, results to stdout. Exit codes: 0 done; 1 the run failed, timed out or
the API refused (the reason in one line); 2 the request was invalid (nothing was created).
Heavy imports (TensorFlow) happen only in the commands that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from fleet.commands import _client, _json, _run, add_impersonation, parse_duration


def _target(p: argparse.ArgumentParser) -> None:
    """-n/--context/--kubeconfig/--as… (no -o: `--output` names the model store here)."""
    p.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    p.add_argument("--context", help="kubeconfig context to use")
    p.add_argument("--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG)")
    add_impersonation(p)
    p.add_argument("--json", dest="output", action="store_const", const="json",
                   default="table", help="print the result as JSON")


WEBHDFS_ENV = "FLEET_WEBHDFS_URL"
RUNTIME_CLASS_ENV = "FLEET_RUNTIME_CLASS"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _train_spec(args: argparse.Namespace, namespace: str) -> Any:
    from tuning.jobs import TrainSpec, parse_params

    return TrainSpec(
        name=args.name, namespace=namespace, code_uri=args.code or "", data_uri=args.data or "",
        output_uri=args.output_uri or "", gpus=args.gpus, workers=args.workers,
        params=parse_params(args.param), epochs=args.epochs, image=args.image,
        runtime_class=args.runtime_class or os.environ.get(RUNTIME_CLASS_ENV) or None,
        cpu=args.cpu, memory=args.memory, backoff_limit=args.backoff_limit,
        webhdfs_url=args.webhdfs_url or os.environ.get(WEBHDFS_ENV, ""),
        collective_timeout=args.collective_timeout, model=args.model or "",
        source="fleet train")


def cmd_train(args: argparse.Namespace) -> int:
    if args.name == "publish-example":
        return cmd_publish_example(args)
    from tuning import jobs, train_ops

    client = _client(args)
    try:
        spec = _train_spec(args, client.namespace)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = jobs.validate(spec)
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print("nothing was created", file=sys.stderr)
        return 2
    try:
        train_ops.create(client, spec, _say)
    except train_ops.TrainFailed as exc:
        print(f"error: job {spec.name}: {exc.message}", file=sys.stderr)
        return 1
    if not args.wait:
        print(f"job.batch/{spec.name}")
        return 0
    timeout = args.timeout.total_seconds() if args.timeout else None
    try:
        run = train_ops.follow(client, spec.namespace, spec.name, timeout=timeout,
                               on_progress=lambda line: _say(f"  {line}"),
                               unschedulable_after=args.unschedulable_timeout.total_seconds())
    except train_ops.TrainFailed as exc:
        print(f"error: job {spec.name} {exc.message}", file=sys.stderr)
        return 1
    if args.output == "json":
        _json({"job": spec.name, "namespace": spec.namespace, "state": run.state,
               "model_uri": run.result, "progress": run.progress})
    else:
        print(f"job {spec.name} complete" + (f": model {run.result}" if run.result else ""))
    return 0


def cmd_publish_example(args: argparse.Namespace) -> int:
    from tuning import example

    if not args.to:
        print("error: fleet train publish-example needs --to URI (e.g. "
              "hdfs://127.0.0.1:PORT/examples/digits)", file=sys.stderr)
        return 2
    try:
        code_uri, data_uri = example.publish_example(
            args.to, webhdfs_url=args.webhdfs_url or os.environ.get(WEBHDFS_ENV, ""), say=_say)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: publish-example: {exc}", file=sys.stderr)
        return 1
    print(f"code: {code_uri}")
    print(f"data: {data_uri}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    help_ = "train a model in a pod (a Job): code installed at start, data staged from HDFS"
    p = subparsers.add_parser(
        "train", help=help_, description=help_ + ". `fleet train publish-example --to URI` "
        "uploads the digits trainer wheel and dataset and prints their URIs.")
    _target(p)
    p.add_argument("name", metavar="NAME", help="Job name (DNS label, <= 52 characters), or "
                   "publish-example")
    p.add_argument("--code", help="training code: a wheel or sdist (hdfs://… or a path)")
    p.add_argument("--data", help="dataset: a version directory or a base of numbered versions "
                   "(the newest is used)")
    p.add_argument("--output", dest="output_uri", metavar="URI",
                   help="model store base; the model goes to URI/<next version>/")
    p.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu per pod (default 0)")
    p.add_argument("--workers", type=int, default=1,
                   help="pods for distributed TensorFlow (MultiWorkerMirroredStrategy)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="training parameter (repeatable), e.g. learning_rate=0.003")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--model", help="model name label (default: NAME)")
    p.add_argument("--image", default="modelfleet/trainer:0.1.0", help="trainer image")
    p.add_argument("--runtime-class", help=f"pod runtimeClassName (default ${RUNTIME_CLASS_ENV};"
                   " fleet-local runs pods as processes on the local cluster)")
    p.add_argument("--cpu", help="CPU request = limit per pod")
    p.add_argument("--memory", help="memory request = limit per pod")
    p.add_argument("--backoff-limit", type=int, default=2,
                   help="retries for failures that are not deterministic (default 2)")
    p.add_argument("--collective-timeout", type=int, default=120,
                   help="seconds before a lost peer fails distributed training (default 120)")
    p.add_argument("--webhdfs-url", help=f"WebHDFS base for hdfs:// URIs (default ${WEBHDFS_ENV})")
    p.add_argument("--wait", action="store_true", help="follow the run to its end")
    p.add_argument("--timeout", type=parse_duration, default=None,
                   help="with --wait: give up waiting after this long (the Job keeps running)")
    p.add_argument("--unschedulable-timeout", type=parse_duration,
                   default=parse_duration("30s"),
                   help="with --wait: report a pod that stays unschedulable this long "
                   "(default 30s)")
    p.add_argument("--to", help="publish-example: the base URI to upload under")
    p.set_defaults(func=lambda args: _run(cmd_train, args))
    from tuning import promote_commands, sweep_commands

    promote_commands.register(subparsers)
    sweep_commands.register(subparsers)


