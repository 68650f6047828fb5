"""`fleet serve` and `fleet model demo`; heavy imports happen only inside the commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from serving import config
    from serving.server import configure_logging, run

    try:
        cfg = config.from_namespace(args)
    except ValueError as exc:
        print(f"fleet serve: {exc}", file=sys.stderr)
        return 2
    configure_logging()
    return run(cfg)


def _demo(args: argparse.Namespace) -> int:
    from serving.demo_model import build_demo
    from serving.server import configure_logging

    configure_logging()
    version = build_demo(args.output, epochs=args.epochs, version=args.version,
                         webhdfs_url=args.webhdfs_url)
    print(f"{args.output.rstrip('/')}/{version}")
    return 0


def register(subparsers: Any) -> None:
    from serving import config

    serve = subparsers.add_parser("serve", help="run the model server (= python -m serving)")
    config.add_arguments(serve)
    serve.set_defaults(func=_serve)

    model = subparsers.add_parser("model", help="model artifacts")
    model_sub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    demo = model_sub.add_parser(
        "demo", help="train the digits image-tagging CNN and publish it into a model store")
    demo.add_argument("--output", required=True,
                      help="store base URI: a directory, hdfs://… or webhdfs://…")
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--version", type=int, default=0, help="version to write (0: next)")
    demo.add_argument("--webhdfs-url", default="", help="WebHDFS base for hdfs:// outputs")
    demo.set_defaults(func=_demo)
    model.set_defaults(func=lambda _args: (model.print_help(), 2)[1])
