"""Run a confirmed plan against the backend; one result per target (runs in a worker)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tui.plans import Plan

Key = tuple[str, str]


@dataclass(frozen=True)
class TargetResult:
    key: Key
    ok: bool
    line: str


def _message(result: Any, key: Key, fallback: str) -> str:
    msg = getattr(result, "message", None)
    return msg or f"{key[0]}/{key[1]} {fallback}"


def _one(backend: Any, plan: Plan, key: Key) -> Any:
    ns, name = key
    p = plan.params
    if plan.action == "rollback":
        return backend.rollback(ns, name, p.get("to_revision", 0), p.get("rv"))
    if plan.action == "undo":
        return backend.rollback(ns, name, 0)
    if plan.action == "scale":
        return backend.scale(ns, name, p["replicas"], p.get("current", {}).get(key))
    if plan.action == "restart":
        return backend.restart(ns, name)
    if plan.action == "pause":
        return backend.pause(ns, name)
    if plan.action == "resume":
        return backend.resume(ns, name)
    if plan.action == "rollout":
        return backend.rollout(ns, name, p.get("model_uri"), p.get("image"), p.get("reason"),
                               p.get("rv"))
    raise ValueError(f"unknown action {plan.action}")


def _safe(backend: Any, plan: Plan, key: Key) -> TargetResult:
    try:
        result = _one(backend, plan, key)
    except Exception as exc:  # noqa: BLE001 - every failure is reported per target
        text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return TargetResult(key, False, f"{key[0]}/{key[1]}: {text}")
    return TargetResult(key, True, _message(result, key, plan.action))


def run_plan(backend: Any, plan: Plan, max_workers: int = 16) -> list[TargetResult]:
    """Apply the plan to every target, concurrently but bounded; failures don't stop others."""
    if len(plan.targets) == 1:
        return [_safe(backend, plan, plan.targets[0])]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(plan.targets))) as pool:
        results = list(pool.map(lambda k: _safe(backend, plan, k), plan.targets))
    return sorted(results, key=lambda r: (r.ok, r.key))
