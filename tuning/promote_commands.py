"""`fleet promote DEPLOYMENT --model-uri …/<n>` and `fleet retrain MODEL …` (see promote.py,
retrain.py). Exit codes: 0 promoted / kept / scheduled; 1 rolled back, lost a race or failed;
2 invalid request (nothing changed)."""

from __future__ import annotations

import argparse
import os
import sys

from fleet.commands import _client, _common, _json, _run, parse_duration
from tuning.commands import _target

WEBHDFS_ENV = "FLEET_WEBHDFS_URL"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_promote(args: argparse.Namespace) -> int:
    from tuning.promote import promote

    client = _client(args)
    if args.bootstrap and args.force:
        print("error: --bootstrap and --force are exclusive", file=sys.stderr)
        return 2
    p = promote(client, client.namespace, args.deployment, args.model_uri,
                min_delta=args.min_delta, bootstrap=args.bootstrap, force=args.force,
                source=args.source or "fleet promote",
                timeout=args.timeout.total_seconds(),
                webhdfs_url=args.webhdfs_url or os.environ.get(WEBHDFS_ENV, ""), say=_say)
    if args.output == "json":
        _json(p.to_dict())
    else:
        print(f"{p.result}: {p.detail}")
    return 0 if p.result in ("promoted", "kept", "bootstrapped") else 1


def cmd_retrain(args: argparse.Namespace) -> int:
    from fleet.errors import FleetError, NotFound
    from tuning import jobs, retrain, train_ops

    client = _client(args)
    ns = client.namespace
    name = retrain.cronjob_name(args.model)
    if args.now:
        try:
            cron = client.get(train_ops.path_of("CronJob", ns, name))
        except NotFound:
            print(f"error: no re-training schedule {name} in {ns}; create it with "
                  f"`fleet retrain {args.model} --deployment D --schedule CRON …`",
                  file=sys.stderr)
            return 1
        job = client.post(train_ops.path_of("Job", ns), retrain.job_from_cronjob(cron))
        jname = job["metadata"]["name"]
        print(f"job.batch/{jname} created")
        if not args.wait:
            return 0
        try:
            run = train_ops.follow(client, ns, jname, timeout=args.timeout.total_seconds(),
                                   on_progress=lambda line: _say(f"  {line}"))
        except train_ops.TrainFailed as exc:
            print(f"error: job {jname} {exc.message}", file=sys.stderr)
            return 1
        fresh = client.get(train_ops.path_of("CronJob", ns, name))
        last = (fresh["metadata"].get("annotations") or {}).get(
            retrain.LAST_PROMOTION_ANNOTATION, "")
        print(f"job {jname} complete; last promotion: {last or 'not recorded'}"
              + (f"; model {run.result}" if run.result else ""))
        return 0
    missing = [f for f, v in (("--deployment", args.deployment), ("--schedule", args.schedule),
                              ("--code", args.code), ("--data", args.data),
                              ("--output", args.output_uri)) if not v]
    if missing:
        print(f"error: {', '.join(missing)} required (or --now to run an existing schedule)",
              file=sys.stderr)
        return 2
    try:
        params = jobs.parse_params(args.param)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = jobs.TrainSpec(
        name=name, namespace=ns, code_uri=args.code, data_uri=args.data,
        output_uri=args.output_uri, gpus=args.gpus, params=params, epochs=args.epochs,
        image=args.image, runtime_class=args.runtime_class
        or os.environ.get("FLEET_RUNTIME_CLASS") or None,
        webhdfs_url=args.webhdfs_url or os.environ.get(WEBHDFS_ENV, ""), model=args.model,
        source=f"retrain {name}", backoff_limit=1)
    problems = jobs.validate(spec)
    if len(args.schedule.split()) not in (1, 5, 6) or (
            len(args.schedule.split()) == 1 and not args.schedule.startswith("@")):
        problems.append(f"--schedule {args.schedule!r} is not a cron expression "
                        "(5 fields, or @hourly/@daily/…)")
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 2
    try:
        client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{args.deployment}")
    except NotFound:
        print(f'error: deployments.apps "{args.deployment}" not found in {ns}; deploy the '
              "first model with `fleet deploy`", file=sys.stderr)
        return 2
    train_ops.ensure_rbac(client, ns, _say)
    cron = retrain.build_cronjob(spec, deployment=args.deployment, schedule=args.schedule,
                                 min_delta=args.min_delta, time_zone=args.time_zone,
                                 suspend=args.suspend)
    try:
        client.post(train_ops.path_of("CronJob", ns), cron, {"dryRun": "All"})
    except FleetError as exc:
        print(f"error: the server rejects cronjob/{name}: {exc.detail or exc}. Nothing was "
              "created.", file=sys.stderr)
        return 2
    try:
        old = client.get(train_ops.path_of("CronJob", ns, name))
    except NotFound:
        client.post(train_ops.path_of("CronJob", ns), cron)
        print(f"cronjob.batch/{name} created")
    else:
        cron["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        cron["metadata"]["annotations"] = {**(old["metadata"].get("annotations") or {}),
                                           **cron["metadata"]["annotations"]}
        client.put(train_ops.path_of("CronJob", ns, name), cron)
        print(f"cronjob.batch/{name} configured")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    help_ = "promote a trained model into a serving Deployment if it beats the live one"
    p = subparsers.add_parser("promote", help=help_, description=help_ + " on the same "
                              "holdout; rolls out, waits for Ready, rolls back if not.")
    _common(p)
    p.add_argument("deployment", metavar="DEPLOYMENT")
    p.add_argument("--model-uri", required=True, help="the candidate version: BASE/<n>")
    p.add_argument("--min-delta", type=float, default=0.0,
                   help="required improvement in the metric's direction (default 0: any)")
    p.add_argument("--bootstrap", action="store_true",
                   help="allow promoting when the Deployment has no readable live model")
    p.add_argument("--force", action="store_true",
                   help="skip the champion comparison (readiness guard and rollback stay)")
    p.add_argument("--source", help="what produced the candidate (job, sweep, trial), for the "
                   "change-cause")
    p.add_argument("--timeout", type=parse_duration, default=parse_duration("5m"),
                   help="how long the new pods may take to be Ready (default 5m)")
    p.add_argument("--webhdfs-url", help=f"WebHDFS base for hdfs:// URIs (default ${WEBHDFS_ENV})")
    p.set_defaults(func=lambda args: _run(cmd_promote, args))

    help_ = "schedule re-training (a CronJob that trains on the newest data, then promotes)"
    r = subparsers.add_parser("retrain", help=help_, description=help_ + ". --now runs the "
                              "schedule once.")
    _target(r)
    r.add_argument("model", metavar="MODEL")
    r.add_argument("--deployment", help="the serving Deployment to promote into")
    r.add_argument("--schedule", help="cron schedule, e.g. '0 3 * * *' or @daily")
    r.add_argument("--time-zone", help="CronJob spec.timeZone, e.g. Europe/Berlin")
    r.add_argument("--code", help="training code wheel/sdist URI")
    r.add_argument("--data", help="dataset base URI (its newest version is used)")
    r.add_argument("--output", dest="output_uri", metavar="URI", help="model store base URI")
    r.add_argument("--param", action="append", default=[], metavar="K=V")
    r.add_argument("--epochs", type=int, default=10)
    r.add_argument("--gpus", type=int, default=0)
    r.add_argument("--min-delta", type=float, default=0.0)
    r.add_argument("--image", default="modelfleet/trainer:0.1.0")
    r.add_argument("--runtime-class")
    r.add_argument("--webhdfs-url")
    r.add_argument("--suspend", action="store_true", help="create the schedule suspended")
    r.add_argument("--now", action="store_true", help="run the existing schedule once now")
    r.add_argument("--wait", action="store_true", help="with --now: follow the run")
    r.add_argument("--timeout", type=parse_duration, default=parse_duration("15m"))
    r.set_defaults(func=lambda args: _run(cmd_retrain, args))
