"""Named mutants: each breaks one behaviour the README or the review names; a test must fail.

(id, module, original text, replacement, test files that should kill it). The original text
must occur exactly once in the module, so a refactor that moves it is caught as "stale".
"""

from __future__ import annotations

TUI = ["tests/tui/viewmodel/test_plans.py", "tests/tui/test_app_fake.py",
       "tests/tui/test_backend.py"]
CACHE = ["tests/fleet/test_cache_unit.py", "tests/fleet/test_cache_staged.py",
         "tests/tui/test_backend.py"]
OPS = ["tests/fleet/test_rollback_unit.py", "tests/fleet/test_restart_scale_unit.py",
       "tests/fleet/test_bulk_cli.py", "tests/fleet/test_replicasets.py",
       "tests/fleet/test_status_history_probes.py", "tests/fleet/test_status_watch_errors.py",
       "tests/fleet/test_access_unit.py", "tests/fleet/test_rollout_unit.py"]

MUTANTS: list[tuple[str, str, str, str, list[str]]] = [
    # --- the review's table -------------------------------------------------------------
    ("generation-dropped-single", "tui/viewmodel/plans.py",
     '{"to_revision": target.revision, "generation": generation}',
     '{"to_revision": target.revision}', TUI),
    ("generation-dropped-bulk", "tui/viewmodel/plans.py",
     "generation[d.key] = gen", "generation[d.key] = None", TUI),
    ("generation-not-passed-by-action", "tui/actions.py",
     "rollback_plan(dep, history, to_revision, generation)",
     "rollback_plan(dep, history, to_revision)", TUI),
    ("failed-targets-dropped", "tui/execute.py",
     "for r in bulk.results]", "for r in bulk.results if r.ok]", TUI),
    ("notify-interval-0", "fleet/cache.py",
     "NOTIFY_INTERVAL = 0.2", "NOTIFY_INTERVAL = 0", CACHE),
    ("apply-interval-0", "tui/app.py",
     "MIN_APPLY_INTERVAL = 0.1", "MIN_APPLY_INTERVAL = 0", TUI),
    ("rfc3339-not-local", "fleet/ops/_common.py",
     "(now or datetime.now()).astimezone()", "(now or datetime.now())", OPS),
    # --- this behaviours ---------------------------------------------------------
    ("bulk-target-revision-unnamed", "tui/viewmodel/plans.py",
     "to_revision[d.key] = target.revision", "to_revision[d.key] = 0", TUI),
    ("diff-keeps-pod-template-hash", "tui/viewmodel/plans.py",
     "yaml.safe_dump(replicasets.strip_hash(template)", "yaml.safe_dump((template or {})",
     TUI),
    ("bulk-skips-hidden", "tui/viewmodel/plans.py",
     'lines.append(Text.assemble((_name(d), "bold"), ("  skipped: ", "red"), str(exc)))',
     "pass", TUI),
    ("history-serving-container-first", "fleet/derive.py",
     "        if any(e.get(\"name\") == MODEL_URI_ENV for e in c.get(\"env\") or []):",
     "        if False:", TUI),
    ("history-template-missing", "fleet/ops/history.py",
     "template=replicasets.strip_hash(template),", "template={},", TUI),
    ("cache-drops-probes", "fleet/cache.py",
     "slim.update((k, c[k]) for k in PROBE_FIELDS if c.get(k))", "pass", CACHE),
    ("cache-events-about-empty", "fleet/cache.py",
     "for n in index.get((namespace, name), ())]", "for n in ()]", CACHE),
    ("stop-joins-one-by-one", "fleet/cache.py",
     "t.join(max(0.0, deadline - time.monotonic()))", "t.join(5)", CACHE),
    ("stop-on-ui-loop", "tui/app.py",
     'threading.Thread(target=_stop_quietly, args=(backend,), name="fleet-stop",\n'
     "                             daemon=True).start()", "_stop_quietly(backend)", TUI),
    ("ls-watch-waits-for-threads", "fleet/commands.py",
     "cache.stop(timeout=WATCH_STOP_TIMEOUT)", "cache.stop(timeout=5)",
     ["tests/fleet/test_status_watch_errors.py"]),
    ("failed-access-review-allowed", "tui/app.py",
     '(None, f"unknown, check failed: {error_text(exc)}")', '(True, "")', TUI),
    ("access-denied-ignored", "tui/app.py", "if ok is False:", "if ok is None:", TUI),
    # --- fleet/ops core --------------------------------------------------------------------
    ("undo-wave-without-generation", "fleet/ops/bulk.py",
     "expected_generation=by_key[(ns, name)].generation", "expected_generation=None",
     OPS + TUI),
    ("run-bulk-error-as-success", "fleet/ops/bulk.py",
     "return TargetResult(key[0], key[1], error=exc)\n        except Exception",
     "return TargetResult(key[0], key[1])\n        except Exception", OPS),
    ("generation-check-skipped", "fleet/ops/rollback.py",
     "        if _generation(dep) != expected_generation:",
     "        if False:", OPS),
    ("previous-is-latest", "fleet/replicasets.py",
     "            previous, previous_rev = latest, latest_rev\n",
     "            previous, previous_rev = item, rev\n", OPS),
    ("history-current-flag", "fleet/ops/history.py", "current=rev == current,",
     "current=False,", OPS),
    ("probe-events-oldest-first", "fleet/ops/probes.py",
     "picked.sort(key=lambda e: (e.last_seen or EPOCH, e.name), reverse=True)",
     "picked.sort(key=lambda e: (e.last_seen or EPOCH, e.name))", OPS),
    ("scale-precondition-ignored", "fleet/ops/scale.py",
     "if current_replicas is not None and current_replicas < -1:",
     "if False:", OPS),
]
