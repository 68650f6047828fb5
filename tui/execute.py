"""Run a confirmed plan against the backend; one result per target (runs in a worker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.viewmodel.plans import Key, Plan

if TYPE_CHECKING:
    from tui.backend import Backend


@dataclass(frozen=True)
class TargetResult:
    key: Key
    ok: bool
    line: str


def _per_target(value: Any, key: Key, default: Any) -> Any:
    """A plan parameter for one target: a {key: value} map (bulk plans) or one value."""
    if not isinstance(value, dict):
        return default if value is None else value
    if key not in value:  # never run a bulk target without what it was confirmed with
        raise ValueError(f"{key[0]}/{key[1]}: not in the confirmed plan")
    return value[key]


def _one(backend: Backend, plan: Plan, ns: str, name: str) -> Any:
    p = plan.params
    if plan.action == "rollback":
        key = (ns, name)
        return backend.rollback(ns, name, _per_target(p.get("to_revision", 0), key, 0),
                                _per_target(p.get("generation"), key, None))
    if plan.action == "scale":
        return backend.scale(ns, name, p["replicas"], p.get("current", {}).get((ns, name)))
    if plan.action == "restart":
        return backend.restart(ns, name)
    if plan.action == "pause":
        return backend.pause(ns, name)
    if plan.action == "resume":
        return backend.resume(ns, name)
    if plan.action == "rollout":
        return backend.rollout(ns, name, p.get("model_uri"), p.get("image"), p.get("reason"),
                               p.get("version"))
    raise ValueError(f"unknown action {plan.action}")


def _line(r: Any) -> str:
    """fleet.ops.bulk.TargetResult -> one report line (kubectl's message or the error)."""
    msg = r.message or ("ok" if r.ok else "failed")
    return msg if r.ok and r.name in msg else f"{r.namespace}/{r.name}: {msg}"


def run_plan(backend: Backend, plan: Plan) -> list[TargetResult]:
    """Apply the plan to every target via fleet core's bulk runner; failures don't stop others.

    The undo wave goes through `undo_wave`, which refuses a target whose spec changed after
    it was listed."""
    if plan.action == "undo":
        bulk = backend.undo_wave(plan.params["candidates"])
    else:
        bulk = backend.run_bulk(lambda ns, name: _one(backend, plan, ns, name), plan.targets)
    results = [TargetResult((r.namespace, r.name), r.ok, _line(r)) for r in bulk.results]
    return sorted(results, key=lambda r: (r.ok, r.key))
