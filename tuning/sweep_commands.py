"""`fleet sweep launch | ls | show | stop | resume | promote | example` (see tuning/sweeps.py).

Exit codes: 0 done; 1 an operation failed (the reason in one line); 2 the spec or the flags
were invalid (every problem listed, nothing created).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from fleet.commands import _client, _common, _json, _run, cli_scope, parse_duration

STORAGE_ENV = "FLEET_OPTUNA_STORAGE"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _age(ts: str | None) -> str:
    if not ts:
        return "-"
    secs = int((datetime.now(UTC) - datetime.fromisoformat(ts.replace("Z", "+00:00")))
               .total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _best(r: dict[str, Any]) -> str:
    if r.get("best_value") is None:
        return "-"
    return f"{r['best_value']:.4f} (#{r['best_trial']})"


def sweep_line(r: dict[str, Any], pods: dict[str, Any] | None = None) -> str:
    line = (f"{r['state']}: {r['complete']} complete, {r['running']} running, "
            f"{r['pruned']} pruned, {r['failed']} failed of {r.get('max_trials') or '?'}; "
            f"best {r.get('metric') or 'value'} {_best(r)}")
    if pods is not None:
        line += f"; pods {pods['running']} running"
        if pods["pending"]:
            line += f", {pods['pending']} pending" + (
                f" ({pods['pending_reason']})" if pods["pending_reason"] else "")
    return line


def cmd_launch(args: argparse.Namespace) -> int:
    from tuning import sweep_spec, sweeps

    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file) as fh:
                text = fh.read()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        spec, warns = sweep_spec.resolve(
            text, source=args.file, name=args.name, max_trials=args.max_trials,
            parallelism=args.parallelism, code=args.code, data=args.data)
    except sweep_spec.SpecError as exc:
        for p in exc.problems:
            print(f"error: {p}", file=sys.stderr)
        print("nothing was created", file=sys.stderr)
        return 2
    # --storage is used, never stored: the spec lands on Kubernetes objects, and a URL with
    # a password belongs in a Secret (the launch puts it in one for the pods).
    url = args.storage or spec.storage or os.environ.get(STORAGE_ENV, "")
    problems = sweep_spec.check_storage(url, field="--storage" if args.storage
                                        else f"${STORAGE_ENV}") if url else [
        f"no storage: give --storage URL, `storage:` in the spec or ${STORAGE_ENV} "
        "(`fleet cluster up --postgres` exports it)"]
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print("nothing was created", file=sys.stderr)
        return 2
    for w in warns:
        _say(f"warning: {w}")
    client = _client(args)
    launched = sweeps.launch(
        client, spec, warns, url, runtime_class=args.runtime_class
        or os.environ.get("FLEET_RUNTIME_CLASS") or None,
        webhdfs_url=args.webhdfs_url or os.environ.get("FLEET_WEBHDFS_URL", ""),
        image=args.image, say=_say)
    print(f"sweep {launched.name} launched (job.batch/{launched.job}, study {launched.study})")
    if not args.wait:
        return 0
    return _follow(client, launched.namespace, launched.name, args.timeout)


def _follow(client: Any, ns: str, name: str, timeout: Any) -> int:
    from tuning import sweeps

    deadline = None if not timeout else time.monotonic() + timeout.total_seconds()
    last = ""
    while True:
        job = sweeps.get_job(client, ns, name)
        row = sweeps.job_row(job)
        line = sweep_line(row, sweeps.pod_states(client, ns, name))
        if line != last:
            _say(f"  {line}")
            last = line
        conds = {c["type"] for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("status") == "True"}
        if "Complete" in conds or "Failed" in conds:
            break
        if deadline is not None and time.monotonic() >= deadline:
            print(f"error: timed out waiting for sweep {name} ({line}); it keeps running",
                  file=sys.stderr)
            return 1
        time.sleep(1.0)
    row = sweeps.job_row(sweeps.get_job(client, ns, name))
    promo = row.get("promotion")
    if row["state"] == "complete":
        print(f"sweep {name} complete: best {row.get('metric')} {_best(row)}"
              + (f"; promotion {promo.get('result')}: {promo.get('detail')}" if promo else ""))
        return 0
    print(f"error: sweep {name} {row['state']}: {row.get('reason') or 'see fleet sweep show'}",
          file=sys.stderr)
    return 1


def cmd_ls(args: argparse.Namespace) -> int:
    from fleet.model import COMPONENT_LABEL, SWEEP_COMPONENT
    from fleet.scope import Listing
    from tuning import sweeps

    client = _client(args)
    # -A: cluster-wide if RBAC allows listing the sweep Jobs, else namespace by namespace
    sweep_jobs = Listing("batch/v1", "jobs", f"{COMPONENT_LABEL}={SWEEP_COMPONENT}")
    namespaces = cli_scope(args, client, listing=sweep_jobs).namespaces
    rows = [r for ns in (namespaces or [None]) for r in sweeps.list_sweeps(client, ns)]
    if args.output == "json":
        _json(rows)
        return 0
    if not rows:
        print("No sweeps found.", file=sys.stderr)
        return 0
    table = [["NAMESPACE", "NAME", "STATE", "TRIALS", "RUNNING", "PRUNED", "FAILED", "BEST",
              "PODS", "AGE"]]
    for r in rows:
        table.append([r["namespace"], r["name"], r["state"],
                      f"{r['complete']}/{r.get('max_trials') or '?'}", str(r["running"]),
                      str(r["pruned"]), str(r["failed"]), _best(r),
                      f"{r['pods_ready']}/{r['pods_active']}", _age(r["created"])])
    print(_table(table if args.all_namespaces else [row[1:] for row in table]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tuning import sweeps

    client = _client(args)
    ns = client.namespace
    row = sweeps.job_row(sweeps.get_job(client, ns, args.name))
    trials = sweeps.trials_of(client, ns, args.name)
    if args.output == "json":
        _json({"sweep": row, "trials": trials})
        return 0
    print(f"sweep {args.name} ({ns}): "
          f"{sweep_line(row, sweeps.pod_states(client, ns, args.name))}")
    if row.get("reason"):
        print(f"reason: {row['reason']}")
    if row.get("promotion"):
        print(f"promotion: {row['promotion'].get('result')}: {row['promotion'].get('detail')}")
    if not trials:
        return 0
    names = sorted({k for t in trials for k in t.get("params", {})})
    table = [["#", "STATE", "VALUE", *[n.upper() for n in names], "POD", "MODEL"]]
    for t in trials:
        value = "-" if t.get("value") is None else f"{t['value']:.4f}"
        table.append([str(t["n"]), t["state"], value,
                      *[str(t.get("params", {}).get(n, "")) for n in names],
                      t.get("pod", ""), t.get("model_uri", "") or t.get("reason", "")[:60]])
    print(_table(table))
    return 0


def _storage(args: argparse.Namespace) -> str | None:
    return args.storage or os.environ.get(STORAGE_ENV) or None


def cmd_stop(args: argparse.Namespace) -> int:
    from tuning import sweeps

    client = _client(args)
    url = _storage(args)
    if url is None:
        _say(f"warning: no ${STORAGE_ENV}: the Job is suspended and its workers hand their "
             "trials back themselves; the sweep's state row is left as it is")
    sweeps.stop(client, client.namespace, args.name, url, _say)
    print(f"sweep {args.name} stopped")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from tuning import sweeps

    client = _client(args)
    sweeps.resume(client, client.namespace, args.name, _storage(args), _say)
    print(f"sweep {args.name} resumed")
    if args.wait:
        return _follow(client, client.namespace, args.name, None)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from tuning import sweeps
    from tuning.promote import PromotionError, promote

    client = _client(args)
    ns = client.namespace
    job = sweeps.get_job(client, ns, args.name)
    spec = sweeps.spec_of(job)
    promo = spec.get("promotion") or {}
    deployment = args.deployment or promo.get("deployment")
    if not deployment:
        print("error: no --deployment and the spec has no promotion.deployment",
              file=sys.stderr)
        return 2
    min_delta = args.min_delta if args.min_delta is not None else float(
        promo.get("min_delta") or 0.0)
    row = sweeps.job_row(job)
    trials = [t for t in sweeps.trials_of(client, ns, args.name)
              if t["state"] == "complete" and t.get("model_uri")]
    if args.trial is not None:
        pick = [t for t in trials if t["n"] == args.trial]
        if not pick:
            print(f"error: trial {args.trial} is not a complete trial with a model",
                  file=sys.stderr)
            return 1
        best = pick[0]
    elif trials:
        choose = max if row.get("direction", "maximize") == "maximize" else min
        best = choose(trials, key=lambda t: t["value"])
    else:
        raise PromotionError(f"sweep {args.name} has no complete trial with a model yet")
    p = promote(client, ns, deployment, best["model_uri"], min_delta=min_delta,
                force=args.force, source=f"sweep {args.name} trial {best['n']}",
                webhdfs_url=args.webhdfs_url or os.environ.get("FLEET_WEBHDFS_URL", ""),
                timeout=args.timeout.total_seconds(), say=_say)
    if args.output == "json":
        _json({**p.to_dict(), "trial": best["n"]})
    else:
        print(f"{p.result}: {p.detail}")
    return 0 if p.result in ("promoted", "kept", "bootstrapped") else 1


def cmd_example(_args: argparse.Namespace) -> int:
    from tuning.sweep_spec import EXAMPLE

    sys.stdout.write(EXAMPLE)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    help_ = "hyperparameter sweeps: Optuna trials in parallel GPU pods, winner into serving"
    p = subparsers.add_parser("sweep", help=help_, description=help_)
    sub = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND")

    def add(name: str, func: Any, help_: str, *, storage: bool = False,
            all_ns: bool = False) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_, description=help_)
        _common(q, all_namespaces=all_ns)
        if storage:
            q.add_argument("--storage", help=f"study storage URL (default ${STORAGE_ENV})")
        q.set_defaults(func=lambda a: _run(func, a))
        return q

    q = add("launch", cmd_launch, "validate a sweep spec, create its study and worker Job",
            storage=True)
    q.add_argument("file", metavar="FILE", help="the YAML spec (- for stdin)")
    q.add_argument("--name", help="override the spec's name")
    q.add_argument("--max-trials", type=int, help="override budget.max_trials")
    q.add_argument("--parallelism", type=int, help="override parallelism (worker pods)")
    q.add_argument("--code", help="override the trainer code URI")
    q.add_argument("--data", help="override the dataset URI")
    q.add_argument("--wait", action="store_true", help="follow the sweep to its end")
    q.add_argument("--timeout", type=parse_duration, default=None)
    q.add_argument("--image", default="modelfleet/trainer:0.1.0")
    q.add_argument("--runtime-class", help="pod runtimeClassName (default $FLEET_RUNTIME_CLASS)")
    q.add_argument("--webhdfs-url", help="WebHDFS base for hdfs:// URIs "
                   "(default $FLEET_WEBHDFS_URL)")
    add("ls", cmd_ls, "list sweeps (from their Jobs)", all_ns=True)
    q = add("show", cmd_show, "a sweep's state and trials (from Kubernetes objects)")
    q.add_argument("name", metavar="NAME")
    q = add("stop", cmd_stop, "stop a sweep: suspend its pods, hand back running trials",
            storage=True)
    q.add_argument("name", metavar="NAME")
    q = add("resume", cmd_resume, "continue a stopped sweep to the same exact budget",
            storage=True)
    q.add_argument("name", metavar="NAME")
    q.add_argument("--wait", action="store_true")
    q = add("promote", cmd_promote, "promote the best (or --trial N) model into serving")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--trial", type=int)
    q.add_argument("--deployment", help="default: the spec's promotion.deployment")
    q.add_argument("--min-delta", type=float, default=None)
    q.add_argument("--force", action="store_true")
    q.add_argument("--timeout", type=parse_duration, default=parse_duration("5m"))
    q.add_argument("--webhdfs-url")
    ex = sub.add_parser("example", help="print a complete, commented spec for the digits "
                        "trainer")
    ex.set_defaults(func=cmd_example)
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])
