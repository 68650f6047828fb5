"""The `fleet` command: builds one argparse tree from per-area registrars.

Each area owns a module with `register(subparsers)` that adds its subcommands and sets
`func` (a callable taking the parsed args and returning an exit code). Heavy areas
(`tui`, `serving`) are imported only when their command runs, so `fleet ls` never
pays for TensorFlow or Textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that contribute subcommands. Library code never imports tui/serving;
# only this entry point dispatches to them.
COMMAND_MODULES: tuple[str, ...] = (
    "devcluster.cluster.commands",
    "fleet.commands",
    "fleet.commands_deploy",
    "fleet.commands_pods",
    "devcluster.demo.commands",
    "serving.commands",
    "tuning.commands",
    "tui.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleet", description="Operate fleets of model-serving deployments on Kubernetes."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list or args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        # `fleet` alone (or with TUI flags only) opens the TUI, like k9s.
        args_list = ["tui", *args_list]
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `fleet … | head`: the reader left; exit quietly like kubectl (128 + SIGPIPE)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
