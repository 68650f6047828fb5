"""`fleet ls | rollout | rollback | history | status | scale | restart | pause | resume | probes |
undo-wave`: parse, call fleet.ops / fleet.cache, print kubectl-style lines, tables or JSON.

Imports of the client and ops happen inside the handlers so `fleet --help` stays fast.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.api_client import ApiClient
    from fleet.kube import KubeClient
    from fleet.scope import Listing, WatchScope

WATCH_STOP_TIMEOUT = 0.3  # seconds `ls -w` waits for the cache's threads after ^C
OPS_COMMANDS = ("ls", "rollout", "rollback", "history", "status", "scale", "restart", "pause",
                "resume", "probes", "undo-wave")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """`15m`, `1h30m`, `45s` or plain seconds (`90`)."""
    if text.isdigit():
        return timedelta(seconds=int(text))
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 15m, 1h, 30s)")
    h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(hours=h, minutes=mi, seconds=s)


def _common(p: argparse.ArgumentParser, *, all_namespaces: bool = False,
            namespace_list: bool = False) -> None:
    if namespace_list:  # `-n a,b` or `-n a -n b`; the client keeps the context's namespace
        p.add_argument("-n", "--namespace", action="append", dest="namespaces",
                       metavar="NAMESPACE[,NAMESPACE...]",
                       help="namespace(s), comma-separated or repeated (default: the "
                            "context's, else default)")
        p.set_defaults(namespace=None)
    else:
        p.add_argument("-n", "--namespace",
                       help="namespace (default: the context's, else default)")
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="all namespaces")
    p.add_argument("--context", help="kubeconfig context to use")
    p.add_argument("--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG)")
    add_impersonation(p)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")


def add_impersonation(p: argparse.ArgumentParser) -> None:
    """kubectl's `--as`, `--as-group` (repeatable) and `--as-uid`; `_client` passes them on."""
    p.add_argument("--as", dest="as_user", metavar="USER",
                   help="username to impersonate for the operation (kubectl --as)")
    p.add_argument("--as-group", dest="as_groups", metavar="GROUP", action="append",
                   help="group to impersonate, can be repeated (kubectl --as-group)")
    p.add_argument("--as-uid", dest="as_uid", metavar="UID",
                   help="UID to impersonate for the operation (kubectl --as-uid)")


def impersonation(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed `--as`/`--as-group`/`--as-uid` as `KubeClient.from_kubeconfig` keywords
    (none for a command without the flags)."""
    return {"as_user": getattr(args, "as_user", None),
            "as_groups": getattr(args, "as_groups", None),
            "as_uid": getattr(args, "as_uid", None)}


def register(subparsers: argparse._SubParsersAction) -> None:
    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str,
            *, all_ns: bool = False, ns_list: bool = False) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, help=help_, description=help_)
        _common(p, all_namespaces=all_ns, namespace_list=ns_list)
        p.set_defaults(func=lambda args: _run(func, args))
        return p

    p = add("ls", cmd_ls, "list model deployments (and training jobs with --jobs)", all_ns=True,
            ns_list=True)
    p.add_argument("--jobs", action="store_true",
                   help="list training jobs (with their progress) and re-training schedules")
    p.add_argument("--schedules", action="store_true",
                   help="list only the re-training schedules (CronJobs)")
    p.add_argument("-w", "--watch", action="store_true",
                   help="after the table, print a row for every change (like kubectl get -w)")

    p = add("rollout", cmd_rollout, "roll out a new model URI or image (records change-cause)")
    p.add_argument("name")
    p.add_argument("--model-uri")
    p.add_argument("--image")
    p.add_argument("--model-version", dest="version", help="set app.kubernetes.io/version")
    p.add_argument("--reason", help="kubernetes.io/change-cause text")
    p.add_argument("--force", action="store_true",
                   help="even if another controller (KServe, Argo Rollouts) owns the deployment")

    p = add("rollback", cmd_rollback, "roll back like `kubectl rollout undo`, with a precondition")
    p.add_argument("name")
    p.add_argument("--to-revision", type=int, default=0)
    p.add_argument("--dry-run", action="store_true",
                   help="server-side dry run (kubectl --dry-run=server): validate, change nothing")
    p.add_argument("--force", action="store_true",
                   help="even if another controller (KServe, Argo Rollouts) owns the deployment")

    p = add("history", cmd_history, "rollout history (`kubectl rollout history`)")
    p.add_argument("name")
    p.add_argument("--revision", type=int, default=0, help="show one revision's pod template")

    p = add("status", cmd_status, "rollout status (`kubectl rollout status`)")
    p.add_argument("name")
    p.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--timeout", type=parse_duration, default=None)
    p.add_argument("--revision", type=int, default=0)

    p = add("scale", cmd_scale, "scale through the scale subresource (`kubectl scale`)")
    p.add_argument("name")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--current-replicas", type=int, default=None)

    for verb in ("restart", "pause", "resume"):
        p = add(verb, cmd_simple, f"`kubectl rollout {verb}` one or more deployments")
        p.add_argument("names", nargs="+", metavar="NAME")
        p.set_defaults(verb=verb)

    p = add("probes", cmd_probes, "probe specs, pod readiness and probe events of a deployment")
    p.add_argument("name")

    p = add("undo-wave", cmd_undo_wave,
            "roll back every model deployment whose rollout began within --since", all_ns=True)
    p.add_argument("--since", type=parse_duration, required=True)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


# --- plumbing ----------------------------------------------------------------------------------

def _client(args: argparse.Namespace) -> KubeClient:
    from fleet.kube import KubeClient

    return KubeClient.from_kubeconfig(args.kubeconfig, args.context, args.namespace,
                                      **impersonation(args))


def print_error(message: str) -> None:
    if message.startswith(("error: ", "Error from server", "The connection to the server",
                           "Unable to connect")):
        print(message, file=sys.stderr)
    else:
        print(f"error: {message}", file=sys.stderr)


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from fleet.errors import FleetError

    try:
        return func(args)
    except FleetError as exc:
        print_error(exc.message)
        return 1


def _json(obj: Any) -> None:
    import dataclasses

    import orjson

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        if isinstance(o, BaseException):
            return {"type": type(o).__name__, "message": str(o)}
        raise TypeError

    sys.stdout.write(orjson.dumps(obj, default=default, option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")


def _table(rows: list[list[str]]) -> None:
    from fleet.ops.history import tabwrite

    sys.stdout.write(tabwrite(rows, padding=3))


def _age(when: Any) -> str:
    from datetime import UTC, datetime

    if when is None:
        return "<unknown>"
    secs = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= 2 * size if unit != "m" else secs >= 120:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def _until(when: Any) -> str:
    """How far in the future: `in 5m`, `now`; `overdue 3m` when it is well past."""
    from datetime import UTC, datetime

    secs = int((when - datetime.now(UTC)).total_seconds())
    if secs < -60:
        return f"overdue {_age(when)}"
    if secs <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= 2 * size if unit != "m" else secs >= 120:
            return f"in {secs // size}{unit}"
    return f"in {secs}s"


def _op_result(args: argparse.Namespace, result: Any) -> int:
    if getattr(result, "warning", ""):
        print(result.warning, file=sys.stderr)
    if args.output == "json":
        _json(result)
    else:
        print(result.message)
    return 0


# --- commands --------------------------------------------------------------------------------

DEP_HEADER = ["NAMESPACE", "NAME", "MODEL", "VERSION", "REV", "READY", "UP-TO-DATE",
              "AVAILABLE", "STATE", "PROBES", "AGE"]
JOB_HEADER = ["NAMESPACE", "NAME", "KIND", "STATE", "PHASE", "EPOCH", "METRIC", "COMPLETIONS",
              "ACTIVE", "FAILED", "GPUS", "AGE", "REASON"]
SCHEDULE_HEADER = ["NAMESPACE", "NAME", "MODEL", "DEPLOYMENT", "SCHEDULE", "ACTIVE", "LAST RUN",
                   "NEXT RUN", "LAST PROMOTION", "DETAIL"]


def _dep_row(d: Any, state: str | None = None) -> list[str]:
    return [d.namespace, d.name, d.model, d.version or "-", str(d.revision),
            f"{d.ready}/{d.desired}", str(d.updated), str(d.available),
            state or str(d.rollout_state), str(d.probe_health), _age(d.created)]


def _job_row(j: Any, state: str | None = None) -> list[str]:
    comp = f"{j.succeeded}/{j.completions if j.completions is not None else 1}"
    p = j.progress
    return [j.namespace, j.name, j.kind, state or str(j.state), (p and p.phase) or "-",
            (p and p.epoch_text) or "-", (p and p.metric_text) or "-", comp, str(j.active),
            str(j.failed), str(j.gpus), _age(j.created), j.reason or "-"]


def _schedule_row(s: Any, state: str | None = None) -> list[str]:
    schedule = s.schedule or "-"
    if s.time_zone:
        schedule += f" ({s.time_zone})"
    if state:
        next_run = state
    elif s.suspended:
        next_run = "suspended"
    elif s.next_run is None:
        next_run = "<invalid schedule>" if s.schedule else "-"
    else:
        next_run = _until(s.next_run)
    last = f"{_age(s.last_schedule)} ago" if s.last_schedule else "<none>"
    promo = s.last_promotion
    result = "<none>"
    if promo is not None:
        result = (promo.result or "?") + (f" {_age(promo.time)} ago" if promo.time else "")
    return [s.namespace, s.name, s.model, s.deployment or "-", schedule, str(s.active), last,
            next_run, result, (promo and promo.detail) or "-"]


def cli_scope(args: argparse.Namespace, client: ApiClient, requested: list[str] | None = None,
              listing: Listing | None = None) -> WatchScope:
    """`fleet.scope.resolve_scope` for a command's `-n`/`-A` (`fleet ls`, `undo-wave`, `sweep
    ls`): with `-A`, every namespace if RBAC allows listing `listing` (model Deployments by
    default) there, else the ones it allows (config file, context namespace, discovery). Says
    once on stderr why RBAC narrowed `-A`."""
    from fleet.scope import MODEL_DEPLOYMENTS, resolve_scope

    all_namespaces = bool(getattr(args, "all_namespaces", False))
    configured: list[str] | None = None
    config_file = None
    if all_namespaces:
        from fleet.config import load_config

        config = load_config()
        configured = config.namespaces_for(getattr(client, "context", None))
        config_file = str(config.path) if config.path else None
    scope = resolve_scope(client, requested=requested, all_namespaces=all_namespaces,
                          context_namespace=client.namespace, configured=configured,
                          config_file=config_file, listing=listing or MODEL_DEPLOYMENTS)
    if scope.reason:
        print(scope.reason, file=sys.stderr, flush=True)
    return scope


def _ls_scope(args: argparse.Namespace) -> tuple[KubeClient, WatchScope]:
    """(client, `fleet.scope.WatchScope`) for `ls`; says once why RBAC narrowed `-A`."""
    from fleet.scope import parse_namespaces

    requested = None if args.all_namespaces else parse_namespaces(args.namespaces)
    if requested and len(requested) == 1:
        args.namespace = requested[0]  # the client's namespace, as with one `-n` before
    client = _client(args)
    return client, cli_scope(args, client, requested)


def _say_forbidden(scope: Any, cache: Any) -> None:
    """Watching namespaces one by one: one stderr line per namespace hiding resource types."""
    if scope.namespaces is not None:
        from fleet.scope import forbidden_lines

        for line in forbidden_lines(cache):
            print(f"warning: {line}; shown without them", file=sys.stderr, flush=True)


def cmd_ls(args: argparse.Namespace) -> int:
    from fleet.cache import FleetCache

    client, scope = _ls_scope(args)
    namespaces = scope.namespaces
    # the NAMESPACE column: with -A (even narrowed by RBAC) and with several namespaces
    wide = bool(args.all_namespaces or namespaces is None or len(namespaces) > 1)
    if args.watch:
        return _watch_ls(args, FleetCache(client, namespaces), scope, wide)
    cache = FleetCache(client, namespaces).load_once()
    _say_forbidden(scope, cache)
    items: Sequence[Any]
    if args.schedules:
        items = cache.retrain_schedules()
    else:
        items = cache.jobs() if args.jobs else cache.deployments()
    if args.output == "json":
        _json(items)  # --jobs: the jobs only (--schedules has the schedules)
        return 0
    header, row = _layout(args)
    tables = [[header] + [row(i) for i in items]]
    if args.jobs and (schedules := cache.retrain_schedules()):
        tables.append([SCHEDULE_HEADER] + [_schedule_row(s) for s in schedules])
    if not wide:
        tables = [[r[1:] for r in rows] for rows in tables]
    if len(tables) == 1 and len(tables[0]) == 1:
        if wide:  # kubectl's wording for an empty `get -A` / `get -n NS`
            print("No resources found", file=sys.stderr)
        else:
            ns = namespaces[0] if namespaces else client.namespace
            print(f"No resources found in {ns} namespace.", file=sys.stderr)
        return 0
    for i, rows in enumerate(tables):
        if i:
            sys.stdout.write("\n")
        _table(rows)
    return 0


def _layout(args: argparse.Namespace) -> tuple[list[str], Callable[..., list[str]]]:
    if args.schedules:
        return SCHEDULE_HEADER, _schedule_row
    return (JOB_HEADER, _job_row) if args.jobs else (DEP_HEADER, _dep_row)


def _watch_ls(args: argparse.Namespace, cache: Any, scope: Any, wide: bool) -> int:
    """`fleet ls -w`: the table, then one row per change (like `kubectl get -w`) until ^C."""
    import queue

    changes: queue.Queue = queue.Queue()
    cache.subscribe(changes.put)
    cache.start()
    try:
        if not cache.wait_synced(60):
            print_error(f"cache did not sync within 60s: {cache.last_error or 'no answer'}")
            return 1
        _say_forbidden(scope, cache)
        cut = 0 if wide else 1
        # (header, row, records now, which FleetChange fields carry its upserts/deletes)
        kinds: list[tuple[list[str], Callable[..., list[str]], Sequence[Any], str]] = []
        if args.schedules:
            kinds.append((SCHEDULE_HEADER, _schedule_row, cache.retrain_schedules(), "schedules"))
        elif args.jobs:  # the schedules' table follows once there is one
            kinds.append((JOB_HEADER, _job_row, cache.jobs(), "jobs"))
            kinds.append((SCHEDULE_HEADER, _schedule_row, cache.retrain_schedules(), "schedules"))
        else:
            kinds.append((DEP_HEADER, _dep_row, cache.deployments(), "deployments"))
        emitters = [_WatchTable(header, row, list(items), field, cut, first=i == 0)
                    for i, (header, row, items, field) in enumerate(kinds)]
        while True:
            change = changes.get()
            if change.connection is not None:
                error = change.error
                if scope.namespaces is not None and error in cache.forbidden():
                    error = None  # a 403 said above, once per namespace
                detail = f" ({error})" if error else ""
                print(f"connection: {change.connection}{detail}", file=sys.stderr, flush=True)
            for table in emitters:
                table.apply(getattr(change, f"{table.field}_upserted"),
                            getattr(change, f"{table.field}_deleted"))
    finally:
        # ^C returns at once even with a LIST hanging on a black-holed API: the threads are
        # daemons, so stop() only flags them, closes the watches and waits briefly.
        cache.stop(timeout=WATCH_STOP_TIMEOUT)


class _WatchTable:
    """One kind's rows in `ls -w`: the table (its header once it has a row, or at once for the
    first kind), then one row per change, aligned to the first table's widths."""

    def __init__(self, header: list[str], row: Callable[..., list[str]], items: list[Any],
                 field: str, cut: int, *, first: bool) -> None:
        self.header, self.row, self.field, self.cut = header, row, field, cut
        self.first = first
        self.last = {it.key: it for it in items}
        self.shown = False
        rows = self._measure(items)
        if first or items:
            self._header()
            for r in rows[1:]:
                self.emit(r)

    def _measure(self, items: list[Any]) -> list[list[str]]:
        rows = [self.header] + [self.row(it) for it in items]
        self.widths = [max(len(r[c]) for r in rows) for c in range(len(self.header))][self.cut:]
        return rows

    def _header(self) -> None:
        if not self.first:
            print(flush=True)
        self.shown = True
        self.emit(self.header)

    def emit(self, cells: list[str]) -> None:
        cells = cells[self.cut:]
        w = self.widths
        line = "".join(c.ljust(w[i]) + "   " for i, c in enumerate(cells[:-1])) + cells[-1]
        print(line, flush=True)

    def apply(self, upserted: list[Any], deleted: list[Any]) -> None:
        if upserted and not self.shown:  # the first rows of this kind: size the table to them
            self._measure(upserted)
            self._header()
        for item in upserted:
            self.last[item.key] = item
            self.emit(self.row(item))
        for key in deleted:
            if key in self.last:
                self.emit(self.row(self.last.pop(key), "deleted"))


def cmd_rollout(args: argparse.Namespace) -> int:
    from fleet.ops.rollout import rollout

    client = _client(args)
    result = rollout(client, client.namespace, args.name, model_uri=args.model_uri,
                     image=args.image, version=args.version, reason=args.reason,
                     force=args.force)
    return _op_result(args, result)


def cmd_rollback(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fleet.ops.rollback import rollback

    client = _client(args)
    result = rollback(client, client.namespace, args.name, args.to_revision, dry_run=args.dry_run,
                      on_warning=lambda w: print(w, file=sys.stderr, flush=True),
                      force=args.force)
    return _op_result(args, replace(result, warning=""))


def cmd_history(args: argparse.Namespace) -> int:
    from fleet.ops.history import format_history, format_revision, history, revision_template

    client = _client(args)
    if args.revision > 0:
        template = revision_template(client, client.namespace, args.name, args.revision)
        if args.output == "json":
            _json(template)
        else:
            sys.stdout.write(format_revision(args.name, args.revision, template))
        return 0
    revs = history(client, client.namespace, args.name)
    if args.output == "json":
        _json(revs)
    else:
        sys.stdout.write(format_history(args.name, revs))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from fleet.ops.status import rollout_status

    client = _client(args)
    printer = None if args.output == "json" else (lambda m: print(m, flush=True))
    result = rollout_status(
        client, client.namespace, args.name, watch=args.watch,
        timeout=args.timeout.total_seconds() if args.timeout else None,
        revision=args.revision, on_message=printer,
    )
    if args.output == "json":
        _json(result)
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    from fleet.ops.scale import scale

    client = _client(args)
    result = scale(client, client.namespace, args.name, args.replicas,
                   current_replicas=args.current_replicas)
    return _op_result(args, result)


def cmd_simple(args: argparse.Namespace) -> int:
    from fleet.ops import restart
    from fleet.ops.bulk import run_bulk

    client = _client(args)
    fn = getattr(restart, args.verb)
    if len(args.names) == 1:
        return _op_result(args, fn(client, client.namespace, args.names[0]))
    bulk = run_bulk(lambda ns, n: fn(client, ns, n),
                        [(client.namespace, n) for n in args.names])
    return _print_bulk(args, bulk)


def _print_bulk(args: argparse.Namespace, bulk: Any) -> int:
    if args.output == "json":
        _json(bulk)
    else:
        for r in bulk.results:
            if r.ok and r.result is not None and r.result.warning:
                print(r.result.warning, file=sys.stderr)
            if r.ok:
                print(r.message)
            else:
                print_error(r.message)
    return 0 if bulk.ok else 1


def cmd_probes(args: argparse.Namespace) -> int:
    from fleet.ops.probes import inspect
    from fleet.probe_report_text import format_probe_report

    client = _client(args)
    report = inspect(client, client.namespace, args.name)
    if args.output == "json":
        _json(report)
    else:
        sys.stdout.write(format_probe_report(report))
    return 0


def cmd_undo_wave(args: argparse.Namespace) -> int:
    from fleet.ops.bulk import undo_wave, undo_wave_candidates

    client = _client(args)
    # -A: cluster-wide if RBAC allows it, else the namespaces it allows (said once)
    cands = undo_wave_candidates(client, args.since, cli_scope(args, client).namespaces)
    if not cands:
        print(f"No model deployment started a rollout in the last {args.since}.", file=sys.stderr)
        return 0
    rows = [["NAMESPACE", "NAME", "REVISION", "BACK TO", "STARTED", "CHANGE-CAUSE"]]
    rows += [[c.namespace, c.name, str(c.revision), str(c.previous_revision),
              _age(c.started_at) + " ago", c.change_cause or "<none>"] for c in cands]
    out = sys.stderr if args.output == "json" else sys.stdout
    out.write(f"These {len(cands)} deployment(s) will be rolled back:\n")
    from fleet.ops.history import tabwrite

    out.write(tabwrite(rows, padding=3))
    out.flush()
    if not args.yes:
        if not sys.stdin.isatty():
            print_error("refusing to roll back without confirmation: pass --yes")
            return 1
        answer = input(f"Roll back {len(cands)} deployment(s)? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("aborted; nothing was changed", file=sys.stderr)
            return 1
    return _print_bulk(args, undo_wave(client, cands))
