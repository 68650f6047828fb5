"""`fleet tui`: argument parsing only; Textual is imported when the command runs."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.app import FleetApp


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tui", help="open the on-call terminal UI (the default command)")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fleet.commands import add_impersonation

    p.add_argument("--context", help="kubeconfig context (default: current-context)")
    p.add_argument("--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG)")
    add_impersonation(p)  # --as, --as-group, --as-uid: every backend, every context switched to
    p.add_argument("-n", "--namespace", action="append", dest="namespaces", metavar="NS",
                   help="watch only these namespaces (comma-separated or repeated)")
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="watch every namespace (the default)")
    p.add_argument("--readonly", action="store_true",
                   help="disable every write action (rollback, scale, restart, …)")
    p.add_argument("--jobs", action="store_true", help="open on the training jobs view")
    p.add_argument("--sweeps", action="store_true", help="open on the sweeps view")


def run(args: argparse.Namespace) -> int:
    from tui._start_time import mark_start

    mark_start(time.perf_counter())
    # The cluster connection starts in a worker after the first frame: starting it before
    # (in parallel with Textual's imports) was measured slower, as both fight for the GIL.
    build_app(args).run()
    return 0


def build_app(args: argparse.Namespace) -> FleetApp:
    """The app for parsed `fleet tui` arguments. Its backend factory closes over the
    kubeconfig and the impersonation flags, so a context or namespace switched to in the TUI
    keeps them (as kubectl with the same flags would)."""
    from fleet.commands import impersonation
    from fleet.scope import parse_namespaces
    from tui.app import FleetApp
    from tui.backend import KubeBackend

    kubeconfig = args.kubeconfig
    namespaces = None if args.all_namespaces else parse_namespaces(args.namespaces)
    identity = impersonation(args)

    def factory(context: str | None, nss: list[str] | None) -> KubeBackend:
        return KubeBackend(kubeconfig, context, nss, **identity)

    return FleetApp(factory, context=args.context, namespaces=namespaces,
                    readonly=args.readonly,
                    start_view="sweeps" if args.sweeps else "jobs" if args.jobs
                    else "deployments")
