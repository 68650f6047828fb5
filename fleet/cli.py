"""The `fleet` command: builds one argparse tree from per-area registrars.

Each area owns a module with `register(subparsers)` that adds its subcommands and sets
`func` (a callable taking the parsed args and returning an exit code). `fleet CMD ...`
imports only the module that registers CMD (`COMMANDS`), so `fleet rollback` does not pay
for the deploy, pods, tuning, serving or cluster parsers; `fleet`, `fleet --help` and an
unknown command build the whole tree (help lists everything, a typo gets argparse's
"invalid choice" with every choice). Handlers import their implementation when they run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Top-level command -> the module that registers it, in help order. Library code never
# imports tui/serving; only this entry point dispatches to them. tests/fleet/test_cli_imports.py
# checks this table against what each module registers.
COMMANDS: dict[str, str] = {
    "cluster": "devcluster.cluster.commands",
    **dict.fromkeys(("ls", "rollout", "rollback", "history", "status", "scale", "restart",
                     "pause", "resume", "probes", "undo-wave"), "fleet.commands"),
    "deploy": "fleet.commands_deploy",
    "logs": "fleet.commands_pods",
    "predict": "fleet.commands_pods",
    "demo": "devcluster.demo.commands",
    "serve": "serving.commands",
    "model": "serving.commands",
    **dict.fromkeys(("train", "promote", "retrain", "sweep"), "tuning.commands"),
    "tui": "tui.commands",
}
# Modules that contribute subcommands (a module missing from an install is skipped).
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or for `command` alone when `COMMANDS` knows it and its
    module is installed."""
    parser = argparse.ArgumentParser(
        prog="fleet", description="Operate fleets of model-serving deployments on Kubernetes."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    module = COMMANDS.get(command) if command else None
    if module is not None and _register(module, sub):
        return parser
    for name in COMMAND_MODULES:
        _register(name, sub)
    return parser


def _register(name: str, sub: argparse._SubParsersAction) -> bool:
    """Add `name`'s subcommands; False when that module is not installed."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return False
    module.register(sub)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        # `fleet` alone (or with TUI flags only) opens the TUI, like k9s.
        args_list = ["tui", *args_list]
    parser = build_parser(args_list[0])
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        build_parser().print_help()  # the whole tree, not only the command's module
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
